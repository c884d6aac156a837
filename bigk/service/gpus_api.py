"""`GET /api/v1/gpus/idle` and `/api/v1/gpus/findings`: what the GPU watch found (bigk.service.gpu_watch).

Only the leader samples; another replica answers with what it last found (usually nothing). Over
several clusters every cluster's watch is merged, each row with its `cluster` (`?cluster=NAME`: one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query

from bigk.service.gpu_watches import findings
from bigk.service.parts import Parts

CLUSTER = Annotated[str | None, Query(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                                      description="Only this cluster (`bigk get clusters`); default: every cluster")]


def gpus_router(parts: Parts, read: Sequence[Any]) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["cluster"])

    @router.get("/gpus/idle", dependencies=list(read))
    def idle_gpus(cluster: CLUSTER = None) -> dict[str, Any]:
        """GPUs held by bigk runs and idle for the whole window: cluster, node, GPU, pods, runs, jobs, queues, since
        when."""
        report = findings(parts, cluster)
        return {k: report[k] for k in ("sampled_at", "clusters", "idle_minutes", "threshold_pct", "idle", "foreign")}

    @router.get("/gpus/findings", dependencies=list(read))
    def gpu_findings(cluster: CLUSTER = None) -> dict[str, Any]:
        """Everything the GPU watch found: idle, busy without bigk, over a share, device conflicts (each row with its
        cluster)."""
        return findings(parts, cluster)

    return router
