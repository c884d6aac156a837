"""Aggregate per-seed runs into the `bigk simulate` report (JSON) and plot it (PNG)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bigk.sim.inflation import CURVE_POINTS, SeedRun

# Unallocated GPU % at 100% arrived on the default trace, FGD paper (ATC '23), Fig. 7.
PUBLISHED = {"random": 13.75, "dotprod": 9.45, "gpuclustering": 8.42, "gpupacking": 8.20, "bestfit": 7.09,
             "fgd": 4.77}


def _median_curve(curves: Sequence[Sequence[float | None]]) -> list[float | None]:
    out: list[float | None] = []
    for i in range(CURVE_POINTS):
        values = [float(v) for c in curves if (v := c[i]) is not None]
        out.append(round(statistics.median(values), 3) if values else None)
    return out


def inflation_report(runs: dict[str, list[SeedRun]], meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON report: `summary` (median and per seed), `curves` (median and per seed), `meta`."""
    summary: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    for policy, seeds in runs.items():
        values = [r.unallocated_gpu_pct_at_100 for r in seeds]
        summary[policy] = {
            "unallocated_gpu_pct_at_100": round(statistics.median(values), 3),
            "per_seed": [{"seed": r.seed, "unallocated_gpu_pct_at_100": r.unallocated_gpu_pct_at_100,
                          "pods": r.pods, "failed_pods": r.failed, "seconds": round(r.seconds, 2)} for r in seeds],
            "seconds_total": round(sum(r.seconds for r in seeds), 2),
        }
        if policy in PUBLISHED:
            summary[policy]["published"] = PUBLISHED[policy]
        curves[policy] = {
            "unallocated_gpu_pct": _median_curve([r.unallocated_gpu_pct for r in seeds]),
            "frag_gpu_pct": _median_curve([r.frag_gpu_pct for r in seeds]),
            "frag_ratio_pct": _median_curve([r.frag_ratio_pct for r in seeds]),
            "per_seed": [{"seed": r.seed, "unallocated_gpu_pct": r.unallocated_gpu_pct,
                          "frag_gpu_pct": [None if v is None else round(v, 3) for v in r.frag_gpu_pct]}
                         for r in seeds],
        }
    return {"protocol": "inflation", "meta": meta, "summary": summary,
            "curves": {"arrived_workload_pct": list(range(CURVE_POINTS)), **curves}}


def write_json(report: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(report, indent=1) + "\n")


def plot_inflation(report: dict[str, Any], path: str | Path) -> None:
    """Unallocated GPU % and fragmented GPU % against arrived workload, median over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = report["curves"]["arrived_workload_pct"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5))
    for policy in report["summary"]:
        c = report["curves"][policy]
        med = report["summary"][policy]["unallocated_gpu_pct_at_100"]
        ax1.plot(x, [float("nan") if v is None else v for v in c["unallocated_gpu_pct"]],
                 label=f"{policy} ({med:.2f}% at 100%)")
        ax2.plot(x, [float("nan") if v is None else v for v in c["frag_gpu_pct"]], label=policy)
    ax1.plot([0, 100], [100, 0], linestyle=":", color="grey", label="ideal")
    ax1.axvline(100, color="grey", linewidth=0.8)
    ax1.set(xlim=(75, 130), ylim=(0, 30), xlabel="arrived workload (% of cluster GPU capacity)",
            ylabel="unallocated GPU (%)", title="Unallocated GPU (median over seeds)")
    ax2.set(xlim=(0, 130), xlabel="arrived workload (% of cluster GPU capacity)",
            ylabel="fragmented GPU (% of capacity)", title="GPU fragmentation (FGD definition)")
    for ax in (ax1, ax2):
        ax.grid(linestyle="-.", alpha=0.6)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
