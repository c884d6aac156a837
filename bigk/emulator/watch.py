"""Watch streams: replay from the store's event window, then follow changes live.

A watch sends the current objects first (no resourceVersion, or "0"), or every
change after the given version (410 Gone as an ERROR event when that version has
left the window), then each new change, BOOKMARK events when asked, and ends at
`timeoutSeconds`, when the client leaves, or when a fault drops it. Objects that
leave a selector's selection are sent as DELETED, entering ones as ADDED.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from aiohttp import web

from bigk.emulator import tables
from bigk.emulator.errors import ApiError, bad_request
from bigk.emulator.eventconv import from_core
from bigk.emulator.resources import ResourceType
from bigk.emulator.selection import Matcher
from bigk.emulator.store import Obj, Store, WatchEvent

log = logging.getLogger("bigk.emulator")

_JSON = "application/json"


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes")


async def serve_watch(
    request: web.Request,
    store: Store,
    rt: ResourceType,
    ns: str | None,
    match: Matcher | None,
    bookmark_interval: float,
    registry: dict[int, web.Request],
) -> web.StreamResponse:
    """Stream watch events for one request; `registry` holds open watches (so faults can drop them)."""
    q = request.query
    rv_param = q.get("resourceVersion", "")
    timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else None
    bookmarks = _truthy(q.get("allowWatchBookmarks"))
    table_kind = rt.kind if "as=Table" in request.headers.get("Accept", "") else ""
    key = rt.store_key
    if rt.view_of:  # events.k8s.io Events: stored as core Events, shown converted
        shown = match
        match = (lambda o: shown(from_core(o))) if shown is not None else None
    last: int
    initial: list[Obj] = []
    if rv_param in ("", "0"):
        initial, last = store.objects(key, ns if rt.namespaced else None, match)
    else:
        try:
            last = int(rv_param)
        except ValueError:
            raise bad_request(f"invalid resource version {rv_param!r}") from None

    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    stream = await _WatchStream.open(request, wake)

    def waker() -> None:
        loop.call_soon_threadsafe(wake.set)

    store.add_waker(key, waker)
    registry[id(request)] = request
    deadline = time.monotonic() + timeout if timeout is not None else None
    next_bookmark = time.monotonic() + bookmark_interval
    try:
        if rt.view_of:
            initial = [from_core(obj) for obj in initial]
        if initial:
            if table_kind:
                meta = {"resourceVersion": str(last)}
                await stream.send([_line("ADDED", tables.table(table_kind, [obj], meta)) for obj in initial])
            else:
                await stream.send([_line("ADDED", obj) for obj in initial])
        while not stream.closed:
            wake.clear()
            try:
                events, current = store_events(store, key, last)
                if rt.view_of:
                    events = [_converted(ev) for ev in events]
            except ApiError as exc:
                await stream.send([_line("ERROR", exc.status())])
                break
            out = [_encode(ev, kind, table_kind) for ev in events if (kind := _filtered(ev, match)) is not None]
            if out:
                await stream.send(out)
            last = max(last, current)
            now = time.monotonic()
            if bookmarks and now >= next_bookmark:
                mark = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": {"resourceVersion": str(last)}}
                await stream.send([_line("BOOKMARK", mark)])
                next_bookmark = now + bookmark_interval
            wait = max(0.0, next_bookmark - now) if bookmarks else 30.0
            if deadline is not None:
                if now >= deadline:
                    break
                wait = min(wait, deadline - now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=max(wait, 0.001))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    except Exception:  # headers are sent: log and end the stream
        log.exception("event=watch_error path=%s", request.path)
    finally:
        store.remove_waker(key, waker)
        registry.pop(id(request), None)
    return await stream.close()


class _WatchStream:
    """Where watch events go: a chunked HTTP response (JSON lines) or a WebSocket (one event per message).

    fabric8 (inside spark-submit) watches over WebSocket; the Python client and kubectl use chunked HTTP.
    """

    def __init__(self, request: web.Request, http: web.StreamResponse | None, ws: web.WebSocketResponse | None,
                 reader: asyncio.Task[None] | None) -> None:
        self.request = request
        self.http = http
        self.ws = ws
        self.reader = reader

    @classmethod
    async def open(cls, request: web.Request, wake: asyncio.Event) -> _WatchStream:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            ws = web.WebSocketResponse(autoping=True)
            await ws.prepare(request)

            async def drain() -> None:  # answers pings, notices the client closing
                async for _ in ws:
                    pass
                wake.set()

            return cls(request, None, ws, asyncio.get_running_loop().create_task(drain()))
        http = web.StreamResponse(status=200, headers={"Content-Type": _JSON, "Cache-Control": "no-cache"})
        http.enable_chunked_encoding()
        await http.prepare(request)
        return cls(request, http, None, None)

    @property
    def closed(self) -> bool:
        if self.ws is not None and self.ws.closed:
            return True
        transport = self.request.transport
        return transport is None or transport.is_closing()

    async def send(self, lines: list[bytes]) -> None:
        if self.ws is not None:
            for line in lines:
                await self.ws.send_str(line.decode().rstrip("\n"))
        elif self.http is not None:
            await self.http.write(b"".join(lines))

    async def close(self) -> web.StreamResponse:
        if self.ws is not None:
            with contextlib.suppress(ConnectionResetError, RuntimeError):
                await self.ws.close()
            if self.reader is not None:
                self.reader.cancel()
            return self.ws
        assert self.http is not None
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await self.http.write_eof()
        return self.http


def store_events(store: Any, key: str, last: int) -> tuple[list[WatchEvent], int]:
    """Events after `last` plus the version they bring a watcher up to (atomically)."""
    with store._lock:
        return store.events_since(key, last), store.resource_version


def _converted(ev: WatchEvent) -> WatchEvent:
    """A core Event change as seen through events.k8s.io/v1."""
    return WatchEvent(ev.rv, ev.type, from_core(ev.obj), from_core(ev.old) if ev.old is not None else None)


def _line(type_: str, obj: Obj) -> bytes:
    return json.dumps({"type": type_, "object": obj}, separators=(",", ":")).encode() + b"\n"


def _filtered(ev: WatchEvent, match: Matcher | None) -> str | None:
    """The event type a selective watcher sees for `ev` (objects leaving the selection read as DELETED), or None."""
    if match is None:
        return ev.type
    new_match = match(ev.obj)
    if ev.type in ("ADDED", "DELETED"):
        return ev.type if new_match else None
    old_match = ev.old is not None and match(ev.old)
    if new_match and old_match:
        return ev.type
    if new_match:
        return "ADDED"
    if old_match:
        return "DELETED"
    return None


def _encode(ev: WatchEvent, type_: str, table_kind: str) -> bytes:
    """One watch line; plain events reuse the line cached on the event."""
    if table_kind:
        meta = {"resourceVersion": ev.obj["metadata"].get("resourceVersion", "")}
        return _line(type_, tables.table(table_kind, [ev.obj], meta))
    return ev.line() if type_ == ev.type else ev.line(type_=type_)
