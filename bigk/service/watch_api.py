"""`GET /api/v1/watch`: server-sent events of runs, jobs, waiting runs, queues, nodes and GPUs as they change.

The stream starts with the current objects (`ADDED`, then one `SYNCED`), then sends every change
(`ADDED`, `MODIFIED`, `DELETED`), each with an SSE `id:` (the feed's sequence number). A client that
loses the connection reconnects with `Last-Event-ID` (or `?since=`) and receives exactly what it missed;
if the server can no longer replay that far (or restarted) the stream says `RESET` and starts over with
a fresh listing. `bigk get ... --watch`, `bigk run --wait` and the status page read this stream.

Over several clusters (issue 18) nodes and GPUs are every cluster's, each with its `cluster`, named
`CLUSTER/NODE` and `CLUSTER/NODE/INDEX` (`?name=` matches either form); a cluster that does not answer
keeps its last rows and does not hold the others (`bigk.service.watch_clusters`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, HTTPException, Query, Request
from sse_starlette.sse import EventSourceResponse, ServerSentEvent

from bigk.service.parts import Parts
from bigk.service.runtime import DEFAULT_CLUSTER
from bigk.service.watch import Change, ChangeFeed, Source
from bigk.service.watch_clusters import EveryCluster

KINDS = ("runs", "jobs", "queue", "queues", "nodes", "gpus")
RECENT_RUNS = 200  # the runs a watcher sees: the newest this many, plus every active one
# Runs, jobs and waiting runs are listed every 0.5 s; nodes and GPUs (every pod of the cluster, ~0.1 s on the
# example cluster) every 2 s, about as often as GPU readings change; queues every 1 s.
SLOWER = {"nodes": 2.0, "gpus": 2.0, "queues": 1.0}


def sources(parts: Parts) -> dict[str, Source]:
    """How each kind is listed, keyed by the name the CLI prints (`run/ID`, `gpu/NODE/INDEX`)."""

    home = next(iter(parts.clusters), DEFAULT_CLUSTER)

    def runs() -> dict[str, dict[str, Any]]:
        store = parts.store
        found = {r.id: r.to_dict() for r in store.list_runs(limit=RECENT_RUNS)}
        found.update({r.id: r.to_dict() for r in store.active_runs()})
        return found

    def jobs() -> dict[str, dict[str, Any]]:
        out = {}
        for name in parts.views.job_names():
            try:
                out[name] = parts.views.job_summary(name)
            except Exception:  # removed between the two calls
                continue
        return out

    def queues() -> dict[str, dict[str, Any]]:
        from bigk.service.queue_views import queue_rows, queue_scope

        return {row["name"]: row for row in queue_rows(parts.catalog, parts.store, queue_scope(parts))}

    found: dict[str, Source] = {
        "runs": runs,
        "queues": queues,
        "jobs": jobs,
        "queue": lambda: {q["run"]: q for q in parts.views.queue()[0]},
        # one cluster: its nodes and GPUs by name, with its name (as they always were)
        "nodes": lambda: {n["name"]: {"cluster": home, **n} for n in parts.cluster.nodes()},
        "gpus": lambda: {f"{g['node']}/{g['index']}": {"cluster": home, **g} for g in parts.cluster.gpus()},
    }
    if several(parts):  # every cluster's, keyed CLUSTER/NAME, none waiting on a silent one
        found["nodes"], found["gpus"] = EveryCluster(parts, "nodes"), EveryCluster(parts, "gpus")
    return found


def several(parts: Parts) -> bool:
    return len(parts.clusters) > 1


def matcher(parts: Parts, names: set[str]) -> Callable[[str, str], bool]:
    """Whether a change of (kind, name) is one the watcher asked for by `?name=`; over several clusters a node or
    GPU is named `CLUSTER/NAME`, and `NAME` alone matches it on every cluster."""
    prefixed = several(parts)

    def match(kind: str, name: str) -> bool:
        if not names or name in names:
            return True
        return prefixed and kind in ("nodes", "gpus") and name.partition("/")[2] in names

    return match


def _event(change: Change) -> ServerSentEvent:
    data = {"kind": change.kind, "name": change.name, "object": change.object}
    return ServerSentEvent(data=json.dumps(data, default=str), event=change.type, id=str(change.seq))


def watch_router(parts: Parts, read: Sequence[Any], feed: ChangeFeed | None = None,
                 ping_s: float = 15.0) -> APIRouter:
    """The watch endpoint over `parts`; `read` are the API's read dependencies (who may look)."""
    stop = parts.stopping
    changes = feed or ChangeFeed(sources(parts), alive=lambda: not stop.is_set(),
                                 every_s=SLOWER)
    router = APIRouter(prefix="/api/v1", tags=["watch"])
    router.feed = changes  # type: ignore[attr-defined]  # tests and the status page reach the feed through it

    @router.get("/watch", dependencies=list(read), response_class=EventSourceResponse,
                responses={200: {"content": {"text/event-stream": {}}}})
    async def watch(request: Request,
                    kind: Annotated[list[str] | None, Query(description="runs, jobs, queue, queues, nodes, gpus "
                                                                        "(repeatable; default runs)")] = None,
                    name: Annotated[list[str] | None, Query(max_length=300, description="Only these objects.")] = None,
                    since: Annotated[int | None, Query(ge=0, description="Resume after this event id.")] = None,
                    last_event_id: Annotated[str | None, Header()] = None) -> EventSourceResponse:
        """Server-sent events: the current objects, then every change; resumable with Last-Event-ID."""
        kinds = list(dict.fromkeys(kind or ["runs"]))
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise HTTPException(400, f"kind {unknown[0]!r} cannot be watched; use one of {', '.join(KINDS)}")
        if last_event_id is not None and last_event_id.strip().isdigit():
            since = int(last_event_id.strip())
        wanted = matcher(parts, set(name or []))
        return EventSourceResponse(_stream(request, changes, kinds, wanted, since), ping=max(1, int(ping_s)))

    return router


async def _listing(feed: ChangeFeed, kinds: list[str], wanted: Callable[[str, str], bool],
                   out: list[ServerSentEvent]) -> int:
    """The current objects as ADDED events then SYNCED, into `out`; returns the sequence number they are at."""
    seq, snap = await anyio.to_thread.run_sync(feed.snapshot, kinds)
    for kind, objects in snap.items():
        for obj_name, obj in sorted(objects.items()):
            if wanted(kind, obj_name):
                out.append(_event(Change(seq, kind, "ADDED", obj_name, obj)))
    out.append(ServerSentEvent(data=json.dumps({"kinds": kinds}), event="SYNCED", id=str(seq)))
    return seq


async def _stream(request: Request, feed: ChangeFeed, kinds: list[str], wanted: Callable[[str, str], bool],
                  since: int | None) -> AsyncIterator[ServerSentEvent]:
    feed.watch(kinds)
    try:
        last = since if since is not None else 0
        replay = feed.since(last, kinds) if since is not None else None
        while True:
            if replay is None:  # first connection, or the log no longer reaches back: a fresh listing
                if since is not None:
                    yield ServerSentEvent(data=json.dumps({"since": last}), event="RESET")
                since = last
                batch: list[ServerSentEvent] = []
                last = await _listing(feed, kinds, wanted, batch)
                for event in batch:
                    yield event
                replay = feed.since(last, kinds) or []
            for change in replay:
                last = change.seq
                if wanted(change.kind, change.name):
                    yield _event(change)
            if await request.is_disconnected():
                return
            await anyio.to_thread.run_sync(feed.wait, last, 1.0)
            replay = feed.since(last, kinds)
    finally:
        feed.unwatch(kinds)
