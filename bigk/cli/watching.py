"""Reading the API's watch stream (server-sent events) from the CLI, reconnecting where the connection drops.

`events()` yields `WatchEvent`s until the caller stops or the deadline passes. When the connection breaks
it reconnects with `Last-Event-ID`, so nothing in between is lost; when the server answers `RESET` (it
can no longer replay that far, or it restarted) the caller is told, and gets a fresh listing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from bigk.errors import BigkError
from bigk.service.client import Client, Unreachable

RETRY_S = 1.0


@dataclass(frozen=True)
class WatchEvent:
    """ADDED, MODIFIED, DELETED (with kind, name and object), SYNCED (listing done) or RESET (start over)."""

    type: str
    kind: str = ""
    name: str = ""
    object: dict[str, Any] | None = None
    id: str | None = None


def _parse(lines: Iterator[str]) -> Iterator[WatchEvent]:
    """SSE framing: `id:`, `event:`, `data:` lines, a blank line ends an event; `:` lines are pings."""
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in lines:
        if line == "":
            if data or fields.get("event"):
                yield _event(fields, "\n".join(data))
            fields, data = {}, []
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if key == "data":
            data.append(value)
        elif key in ("id", "event"):
            fields[key] = value


def _event(fields: dict[str, str], data: str) -> WatchEvent:
    kind = fields.get("event") or "message"
    body = json.loads(data) if data else {}
    if kind in ("ADDED", "MODIFIED", "DELETED"):
        return WatchEvent(kind, body.get("kind", ""), body.get("name", ""), body.get("object"), fields.get("id"))
    return WatchEvent(kind, id=fields.get("id"))


def events(client: Client, kinds: list[str], names: list[str] | None = None,
           deadline: float | None = None) -> Iterator[WatchEvent]:
    """Follow the watch stream of `kinds` (optionally only `names`) until `deadline` (time.monotonic())."""
    last_id: str | None = None
    failures = 0
    params: dict[str, list[str]] = {"kind": list(kinds), "name": list(names or [])}
    while deadline is None or time.monotonic() < deadline:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        left = None if deadline is None else max(0.1, deadline - time.monotonic())
        timeout = httpx.Timeout(10.0, read=min(left, 30.0) if left is not None else 30.0)
        try:
            with client.http.stream("GET", "/api/v1/watch", params=params, headers=headers,
                                    timeout=timeout) as resp:
                if resp.status_code != 200:
                    resp.read()
                    client.check(resp, "/watch")
                failures = 0
                for event in _parse(resp.iter_lines()):
                    if event.id:
                        last_id = event.id
                    yield event
                    if deadline is not None and time.monotonic() >= deadline:
                        return
        except httpx.ReadTimeout:
            continue  # quiet for a while (pings keep it open); reconnect from where we were
        except httpx.TransportError as exc:
            failures += 1
            if last_id is None and failures > 3:
                raise Unreachable(f"cannot reach bigk at {client.server} ({type(exc).__name__}); start it with "
                                  "`bigk serve` or set --server / $BIGK_SERVER") from None
            time.sleep(min(RETRY_S * failures, 5.0))
        except BigkError:
            raise


def deadline_after(seconds: float | None) -> float | None:
    return None if seconds is None else time.monotonic() + seconds
