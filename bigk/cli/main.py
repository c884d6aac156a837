"""The `bigk` command: one Typer app; each area registers its own commands.

Area modules expose `register(app)`. Errors from any command are caught here and
printed as one line (the traceback only with `--debug`).
"""

from __future__ import annotations

import sys

import typer
from typer.core import TyperOption

import bigk.cli.runio_cmds as runio_cmds
from bigk.cli import (
    agent_cmd,
    emulator_cmd,
    meta_cmds,
    ops_cmds,
    queue_cmds,
    serve_cmd,
    sim_cmds,
    spec_cmds,
    whatif_cmd,
)
from bigk.errors import BigkError

EXIT_CODES = ("Exit codes: 0 ok, 1 error (a failed run with --wait, a refused action), 2 usage, 3 not found, "
              "4 unauthorized, 5 server unreachable.")
_type_of = TyperOption.display_type_rich


def _no_flag_type(self: TyperOption, ctx: typer.Context) -> str | None:
    """Help shows `--wait`, not `--wait <bool>`: a flag takes no value."""
    return None if self.is_flag else _type_of(self, ctx)


TyperOption.display_type_rich = _no_flag_type  # type: ignore[method-assign,assignment]

app = typer.Typer(
    name="bigk",
    help="GPU-aware gang scheduler for Apache Spark on Kubernetes.",
    epilog=EXIT_CODES + " Shell completion: `source <(bigk completion bash)`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_state = {"debug": False}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")) -> None:
    _state["debug"] = debug


for _module in (spec_cmds, sim_cmds, emulator_cmd, serve_cmd, ops_cmds, queue_cmds, agent_cmd, meta_cmds, runio_cmds,
                whatif_cmd):
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    meta_cmds.enable_completion()
    try:
        app()
    except BigkError as exc:
        if _state["debug"]:
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
