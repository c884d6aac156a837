"""HTTP endpoints for queues: `GET /api/v1/queues` (the tree) and `GET /api/v1/queues/{name}` (one queue).

With several clusters each row sums every cluster and breaks the figures down under `clusters`
(bigk.service.queue_views); `?cluster=NAME` restricts them to one cluster (an unknown name: 404).

Read-only on purpose: the queues' one source of truth is the spec repo (or
`--queues`, which the Helm chart writes from its values); the API serves what
the running service uses, with live usage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from bigk.service.eta import WAITING
from bigk.service.parts import Parts
from bigk.service.queue_views import queue_detail, queue_rows, queue_scope

QUEUE = Annotated[str, Path(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
CLUSTER = Annotated[str | None, Query(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                                      description="Only this cluster's figures (bigk serve over several clusters).")]


def queues_router(parts: Parts, read: Sequence[Any]) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["scheduling"])

    @router.get("/queues", dependencies=list(read))
    def queues(cluster: CLUSTER = None) -> list[dict[str, Any]]:
        """Every queue (parents first): guarantee, maximum, allocated, borrowed, dominant share, runs, and
        `next_eta`: the earliest estimated start among its waiting runs (bigk.service.eta). Several clusters:
        the sums, and `clusters` per cluster (`?cluster=NAME`: that cluster's figures alone)."""
        scope = queue_scope(parts, cluster)
        rows = queue_rows(parts.catalog, parts.store, scope)
        eta = parts.eta
        # the board is as of its last refresh: a run that has started since is no longer waiting
        waiting = {run for (run,) in parts.store.run_fields(WAITING, "id")}
        shown = {c.name for c in scope.clusters}
        # the earliest start per (cluster, queue) in one pass over the board (thousands of rows), then per subtree
        soonest: dict[tuple[str, str], float] = {}
        for c, r in (eta.rows() if eta is not None else []):
            if r.eta is not None and r.run in waiting and (not scope.several or c in shown):
                key = (c, r.queue)
                soonest[key] = min(r.eta, soonest.get(key, r.eta))
        for row in rows:
            name = row["name"]
            starts = [(c, e) for (c, q), e in soonest.items() if q == name or q.startswith(name + ".")]
            row["next_eta"] = min(e for _, e in starts) if starts else None
            for c, part in row.get("clusters", {}).items():
                part["next_eta"] = min((e for on, e in starts if on == c), default=None)
        return rows

    @router.get("/queues/{name}", dependencies=list(read))
    def queue(name: QUEUE, cluster: CLUSTER = None) -> dict[str, Any]:
        """One queue, its priority range and children, and the gangs waiting in it in scheduling order (several
        clusters: per cluster, each with its `cluster`; `?cluster=NAME`: that cluster's alone)."""
        return queue_detail(parts.catalog, parts.store, queue_scope(parts, cluster), name)

    return router
