"""Aggregate per-seed runs into the `bigk simulate` reports (JSON), tables (terminal) and plots (PNG)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bigk.sim.inflation import CURVE_POINTS, SeedRun
from bigk.sim.timeline import TimelineRun

# Unallocated GPU % at 100% arrived on the default trace (and only that trace), FGD paper (ATC '23), Fig. 7.
PUBLISHED = {"random": 13.75, "dotprod": 9.45, "gpuclustering": 8.42, "gpupacking": 8.20, "bestfit": 7.09,
             "fgd": 4.77}


def _median_curve(curves: Sequence[Sequence[float | None]]) -> list[float | None]:
    out: list[float | None] = []
    for i in range(CURVE_POINTS):
        values = [float(v) for c in curves if (v := c[i]) is not None]
        out.append(round(statistics.median(values), 3) if values else None)
    return out


def inflation_report(runs: dict[str, list[SeedRun]], meta: dict[str, Any], published: bool = False) -> dict[str, Any]:
    """The JSON report: `summary` (median and per seed), `curves` (median and per seed), `meta`.

    `published`: the runs are of the FGD paper's default trace, so each policy's published
    figure is shown beside it (it belongs to no other trace).
    """
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
        if published and policy in PUBLISHED:
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


def pyplot() -> Any:
    """matplotlib.pyplot drawing to files only (the Agg backend), imported when a plot is asked for."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, axes: Sequence[Any], path: str | Path, grid_axis: str = "both") -> None:
    """The reports' finish: a dashed grid (on `grid_axis`) and a legend on each of `axes`, then the figure
    written to `path` (PNG, 110 dpi) and closed."""
    for ax in axes:
        ax.grid(axis=grid_axis, linestyle="-.", alpha=0.6)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)


def plot_inflation(report: dict[str, Any], path: str | Path) -> None:
    """Unallocated GPU % and fragmented GPU % against arrived workload, median over seeds."""
    plt = pyplot()
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
    save_figure(fig, (ax1, ax2), path)


def print_inflation(report: dict[str, Any]) -> None:
    """The summary table on the terminal."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Unallocated GPU % at 100% arrived workload (median over seeds)")
    for col in ("policy", "median %", "published %", "min..max %", "seconds"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for name, s in report["summary"].items():
        per = [p["unallocated_gpu_pct_at_100"] for p in s["per_seed"]]
        pub = s.get("published")
        table.add_row(name, f"{s['unallocated_gpu_pct_at_100']:.2f}", "" if pub is None else f"{pub:.2f}",
                      f"{min(per):.2f}..{max(per):.2f}", f"{s['seconds_total']:.1f}")
    Console().print(table)


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def timeline_report(runs: dict[str, list[TimelineRun]], meta: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    series: dict[str, Any] = {}
    for policy, rs in runs.items():
        per_seed = [{"seed": r.seed, "pods": r.pods, "ran": r.ran, "never_ran": r.never_ran,
                     "wait_mean_s": round(statistics.fmean(r.waits_s), 3) if r.waits_s else 0.0,
                     "wait_p50_s": round(_pct(r.waits_s, 50), 3), "wait_p95_s": round(_pct(r.waits_s, 95), 3),
                     "wait_max_s": round(max(r.waits_s, default=0.0), 3),
                     "waited": sum(1 for w in r.waits_s if w > 0),
                     "gpu_alloc_mean_pct": round(statistics.fmean(r.gpu_alloc_pct), 3) if r.gpu_alloc_pct else 0.0,
                     "cycles": r.cycles, "seconds": round(r.seconds, 2)} for r in rs]
        summary[policy] = {key: statistics.median([float(s[key]) for s in per_seed])
                           for key in ("never_ran", "wait_mean_s", "wait_p95_s", "wait_max_s", "waited",
                                       "gpu_alloc_mean_pct")}
        summary[policy]["per_seed"] = per_seed
        first = rs[0]
        series[policy] = {"time_s": first.times, "gpu_alloc_pct": [round(v, 3) for v in first.gpu_alloc_pct],
                          "pending_pods": first.pending, "seed": first.seed}
    return {"protocol": "timeline", "meta": meta, "summary": summary, "series": series}


def print_timeline(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Timeline replay (median over seeds)")
    cols = ("policy", "never ran", "pods that waited", "mean wait s", "p95 wait s", "max wait s", "mean GPU alloc %")
    for col in cols:
        table.add_column(col, justify="left" if col == "policy" else "right")
    for name, s in report["summary"].items():
        table.add_row(name, f"{s['never_ran']:.0f}", f"{s['waited']:.0f}", f"{s['wait_mean_s']:.1f}",
                      f"{s['wait_p95_s']:.1f}", f"{s['wait_max_s']:.1f}", f"{s['gpu_alloc_mean_pct']:.2f}")
    Console().print(table)


def plot_timeline(report: dict[str, Any], path: str | Path) -> None:
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 6.5), sharex=True)
    for policy, s in report["series"].items():
        hours = [(t - s["time_s"][0]) / 3600 for t in s["time_s"]] if s["time_s"] else []
        ax1.plot(hours, s["gpu_alloc_pct"], label=policy, linewidth=1)
        ax2.plot(hours, s["pending_pods"], label=policy, linewidth=1)
    ax1.set(ylabel="allocated GPU (% of capacity)", title="GPU allocation over time")
    ax2.set(xlabel="hours since first event", ylabel="pods waiting", title="Queue length")
    save_figure(fig, (ax1, ax2), path)
