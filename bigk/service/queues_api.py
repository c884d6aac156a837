"""HTTP endpoints for queues: `GET /api/v1/queues` (the tree) and `GET /api/v1/queues/{name}` (one queue).

Read-only on purpose: the queues' one source of truth is the spec repo (or
`--queues`, which the Helm chart writes from its values); the API serves what
the running service uses, with live usage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Path

from bigk.service.eta import WAITING
from bigk.service.parts import Parts
from bigk.service.queue_views import queue_detail, queue_rows

QUEUE = Annotated[str, Path(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


def queues_router(parts: Parts, read: Sequence[Any]) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["scheduling"])

    @router.get("/queues", dependencies=list(read))
    def queues() -> list[dict[str, Any]]:
        """Every queue (parents first): guarantee, maximum, allocated, borrowed, dominant share, runs, and
        `next_eta`: the earliest estimated start among its waiting runs (bigk.service.eta)."""
        rows = queue_rows(parts.catalog, parts.store, parts.loop_view())
        eta = parts.eta
        # the board is as of its last refresh: a run that has started since is no longer waiting
        waiting = {r.id for r in parts.store.active_runs() if r.state in WAITING}
        board = [r for _, r in eta.rows() if r.run in waiting] if eta is not None else []
        for row in rows:
            name = row["name"]
            starts = [r.eta for r in board if r.eta is not None and (r.queue == name or
                                                                     r.queue.startswith(name + "."))]
            row["next_eta"] = min(starts) if starts else None
        return rows

    @router.get("/queues/{name}", dependencies=list(read))
    def queue(name: QUEUE) -> dict[str, Any]:
        """One queue, its priority range and children, and the gangs waiting in it in scheduling order."""
        return queue_detail(parts.catalog, parts.store, parts.loop_view(), name)

    return router
