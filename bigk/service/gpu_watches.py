"""The GPU watch of every cluster `bigk serve` runs (issue 18): each sampled from the run ticker, findings merged.

Each cluster has its own `GpuWatch` (`ClusterRuntime.gpu_watch`): its own window of readings, its
own findings and its own `cluster`-labelled series. `sample_all` samples every reachable cluster's
(one judged unreachable is skipped: its last findings stand until it answers; each listing is
bounded by `runtime.LIST_TIMEOUT_S`), and `findings` merges them for `/api/v1/gpus/idle` and
`/api/v1/gpus/findings`: every row carries its `cluster`, `clusters` says when each was sampled.
"""

from __future__ import annotations

from typing import Any

from bigk.service.node_clusters import chosen
from bigk.service.parts import Parts

KINDS = ("idle", "foreign", "over_share", "conflicts")


def sample_all(parts: Parts) -> None:
    """Every reachable cluster's GPU watch samples, when its `sample_s` has passed (called on each run tick)."""
    if not parts.clusters:
        parts.gpu_watch.maybe_sample()
        return
    for runtime in parts.clusters.values():
        if runtime.gpu_watch is not None and runtime.reachable:
            runtime.gpu_watch.maybe_sample()


def findings(parts: Parts, cluster: str | None = None) -> dict[str, Any]:
    """The findings of every cluster (or of `cluster` alone; an unknown name is `UnknownCluster`), each row with its
    `cluster`; `sampled_at` is the latest sample, `clusters` each cluster's (0: not sampled yet)."""
    out: dict[str, Any] = {"sampled_at": 0.0, "clusters": {}, **{kind: [] for kind in KINDS}}
    for member in chosen(parts, cluster):
        if member.gpu_watch is None:
            continue
        report = member.gpu_watch.report()
        out["clusters"][member.name] = report["sampled_at"]
        out["sampled_at"] = max(out["sampled_at"], report["sampled_at"])
        out["idle_minutes"], out["threshold_pct"] = report["idle_minutes"], report["threshold_pct"]
        for kind in KINDS:
            out[kind] += [{**row, "cluster": member.name} for row in report[kind]]
    out.setdefault("idle_minutes", parts.gpu_watch.settings.idle_minutes)
    out.setdefault("threshold_pct", parts.gpu_watch.settings.threshold_pct)
    return out
