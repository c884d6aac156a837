"""`bigk version` (client and server) and `bigk completion bash|zsh|fish` (the script to source)."""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Any

import typer

from bigk.cli import output as out
from bigk.errors import BigkError, UsageError

COMPLETE_VAR = "_BIGK_COMPLETE"


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def enable_completion() -> None:
    """Let `_BIGK_COMPLETE=complete_bash bigk ...` answer (Typer registers its shells lazily)."""
    if os.environ.get(COMPLETE_VAR):
        from typer._completion_classes import completion_init

        completion_init()


def register(app: typer.Typer) -> None:
    """Add `version` and `completion`."""

    @app.command("version")
    def version(client_only: bool = typer.Option(False, "--client", help="Only this CLI's version."),
                server: str | None = typer.Option(None, "--server", "-s", envvar="BIGK_SERVER",
                                                  help="bigk serve URL."),
                output: str = out.output_option()) -> None:
        """This CLI's version and the server's (exit 5 when the server cannot be reached)."""
        from bigk.service.about_api import bigk_version

        fmt = out.parse_output(output)
        if not (fmt.structured or fmt.tabular):
            raise UsageError("version: -o table, json or yaml")
        data: dict[str, Any] = {"clientVersion": {"version": bigk_version(), "api": "bigk.io/v1"}}
        failure: BigkError | None = None
        if not client_only:
            from bigk.service.client import Client

            try:
                client = Client(server)
                answer = client.get("/version")
                data["serverVersion"] = {**out.with_rfc3339(answer), "url": client.server}
            except BigkError as exc:
                failure = exc
        if fmt.structured:
            out.dump(data, fmt.style)
        else:
            typer.echo(f"Client Version: {data['clientVersion']['version']}")
            srv = data.get("serverVersion")
            if srv:
                where = "embedded emulated cluster" if srv.get("embedded") else srv.get("cluster") or "-"
                typer.echo(f"Server Version: {srv['version']} at {srv['url']} (cluster: {where}, "
                           f"policy: {srv.get('policy') or '-'})")
        if failure is not None:
            raise failure

    @app.command("completion")
    def completion(shell: Shell = typer.Argument(..., help="bash, zsh or fish.")) -> None:
        """Print the shell completion script: `source <(bigk completion bash)` (zsh alike; fish: `| source`)."""
        from typer._completion_classes import completion_init
        from typer._completion_shared import get_completion_script

        completion_init()
        typer.echo(get_completion_script(prog_name="bigk", complete_var=COMPLETE_VAR, shell=shell.value))
