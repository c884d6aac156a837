"""How a command reaches `bigk serve`: the --server option, the API client, and names as URL path segments.

Shared by every command module that talks to the API, so none of them imports another for it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import typer

from bigk.errors import NotFound

SERVER_OPT = typer.Option(None, "--server", "-s", envvar="BIGK_SERVER",
                          help="bigk serve URL (default: the state dir's, else http://127.0.0.1:8080).")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")  # what the API accepts as a job, run, node or pool


class NoSuchName(NotFound):
    """A name the API could never accept, refused before asking it."""


def path_segment(name: str | None) -> str:
    """A name as one URL path segment; `a/b` or `a?b` must not reach another endpoint, and cannot name anything."""
    if not _NAME.match(name or ""):
        raise NoSuchName(f"nothing is named {name!r}: names are letters, digits, '.', '_' and '-' "
                         "(list them with `bigk get jobs|runs|nodes`)")
    return quote(name or "", safe="")


def client(server: str | None) -> Any:
    """The API client for `server` (imported late: httpx and the token lookup are not free)."""
    from bigk.service.client import Client

    return Client(server)
