"""`GET /api/v1/gpus/idle` and `/api/v1/gpus/findings`: what the GPU watch found (bigk.service.gpu_watch).

Only the leader samples; another replica answers with what it last found (usually nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter

from bigk.service.gpu_watch import GpuWatch


def _report(watch: GpuWatch) -> dict[str, Any]:
    report: dict[str, Any] = watch.report()
    return report


def annotate_gpus(rows: list[dict[str, Any]], watch: GpuWatch) -> list[dict[str, Any]]:
    """Add the watch's notes (idle-12m, busy-without-bigk, over-share, device-conflict) to `/gpus` rows."""
    notes: dict[Any, list[str]] = dict(watch.notes())
    for row in rows:
        extra = notes.get((row.get("node"), row.get("index")), [])
        if extra:
            row["notes"] = [*row.get("notes", []), *extra]
    return rows


def gpus_router(watch: GpuWatch, read: Sequence[Any]) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["cluster"])

    @router.get("/gpus/idle", dependencies=list(read))
    def idle_gpus() -> dict[str, Any]:
        """GPUs held by bigk runs and idle for the whole window: node, GPU, pods, runs, jobs, queues, since when."""
        report = _report(watch)
        return {k: report[k] for k in ("sampled_at", "idle_minutes", "threshold_pct", "idle", "foreign")}

    @router.get("/gpus/findings", dependencies=list(read))
    def gpu_findings() -> dict[str, Any]:
        """Everything the GPU watch found: idle, busy without bigk, over a share, device conflicts."""
        return _report(watch)

    return router
