"""The `bigk` command: one Typer app; each area registers its own commands.

Area modules expose `register(app)`. Errors from any command are caught here and
printed as one line (the traceback only with `--debug`).
"""

from __future__ import annotations

import sys

import typer

from bigk.cli import agent_cmd, emulator_cmd, ops_cmds, serve_cmd, sim_cmds, spec_cmds
from bigk.errors import BigkError

app = typer.Typer(
    name="bigk",
    help="GPU-aware gang scheduler for Apache Spark on Kubernetes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_state = {"debug": False}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")) -> None:
    _state["debug"] = debug


for _module in (spec_cmds, sim_cmds, emulator_cmd, serve_cmd, ops_cmds, agent_cmd):
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BigkError as exc:
        if _state["debug"]:
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
