"""Several traces (the default and its variants) through the inflation protocol, with the offline best beside them.

`bigk simulate --variant all --offline` runs this: every policy on every trace
and seed, then, per trace, the offline placement and bound of `offline.py` for
the pods that arrived on the first seed. The report keeps each trace's full
single-trace report (`traces`) and a flat `table` for the docs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bigk.cluster.model import Node
from bigk.sim.inflation import INFLATION_RATIO
from bigk.sim.report import inflation_report, pyplot, save_figure
from bigk.sim.runner import RunProgress, run_inflation_sweep
from bigk.sim.trace import TracePod, load_pods
from bigk.sim.variants import ARTIFACT_VARIANTS, make_variant, parse_variant, published_file, variant_name

DEFAULT_PODS_NAME = "openb_pod_list_default.csv"
DEFAULT_NODE_NAMES = ("openb_node_list_all_node.csv", "openb_node_list_gpu_node.csv")


@dataclass(frozen=True)
class Trace:
    """One pod list to replay: its name, pods, and where it came from."""

    name: str
    pods: list[TracePod]
    source: str  # "base", "published FILE" or "generated (variant seed N)"


def is_published_trace(nodes_file: str | Path, pods_file: str | Path) -> bool:
    """True for the FGD paper's default trace, the only one its published figures belong to."""
    return Path(pods_file).name == DEFAULT_PODS_NAME and Path(nodes_file).name in DEFAULT_NODE_NAMES


def variant_traces(spec: str, pods_file: str | Path, base: list[TracePod], nodes: Sequence[Node],
                   seed: int) -> list[Trace]:
    """The traces named by `--variant`: "all", or a comma-separated list of variants and "default".

    A variant whose artifact file is published beside the base pod list is loaded from it;
    any other is generated with `make_variant` and `seed`.
    """
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if names == ["all"]:
        names = ["default", *ARTIFACT_VARIANTS]
    if not names:
        raise ValueError("no variant given")
    out: list[Trace] = []
    for name in names:
        if name == "default":
            out.append(Trace("default", base, "base"))
            continue
        kind, share = parse_variant(name)
        found = published_file(pods_file, kind, share)
        label = variant_name(kind, share)
        if found is not None:
            out.append(Trace(label, load_pods(found), f"published {found.name}"))
        else:
            out.append(Trace(label, make_variant(base, kind, share, seed=seed, nodes=nodes),
                             f"generated (variant seed {seed})"))
    return out


def run_suite(nodes: Sequence[Node], traces: Sequence[Trace], policies: Sequence[str], seeds: Sequence[int],
              published: bool, ratio: float = INFLATION_RATIO, offline: bool = False,
              offline_time_s: float = 60.0, progress: RunProgress | None = None,
              note: Callable[[str], None] | None = None, jobs: int = 1) -> dict[str, Any]:
    """Every policy on every trace and seed (`jobs` runs at once); with `offline`, the offline best of the
    first seed's arrivals."""
    from bigk.sim.offline import offline_best, seed_arrivals

    reports: dict[str, Any] = {}
    table: list[dict[str, Any]] = []
    for tr in traces:
        runs = run_inflation_sweep(nodes, tr.pods, policies, seeds, ratio, progress, jobs)
        rep = inflation_report(runs, {"source": tr.source, "trace_pods": len(tr.pods)},
                               published=published and tr.source == "base")
        row: dict[str, Any] = {"trace": tr.name, "source": tr.source}
        for policy, s in rep["summary"].items():
            row[policy] = s["unallocated_gpu_pct_at_100"]
            row[f"{policy}_first_seed"] = s["per_seed"][0]["unallocated_gpu_pct_at_100"]
            if "published" in s:
                row[f"{policy}_published"] = s["published"]
        if offline:
            if note is not None:
                note(f"offline best for {tr.name}, seed {seeds[0]} (time limit {offline_time_s:.0f} s)")
            arrived, _ = seed_arrivals(nodes, [p.request for p in tr.pods], seeds[0], ratio)
            result = offline_best(nodes, arrived, offline_time_s)
            rep["offline"] = {"seed": seeds[0], **asdict(result)}
            row["offline_seed"] = seeds[0]
            row["offline"] = result.offline_unallocated_pct
            row["bound"] = result.bound_unallocated_pct
            row["bound_optimal"] = result.optimal
        reports[tr.name] = rep
        table.append(row)
    return {"protocol": "inflation", "policies": list(policies), "traces": reports, "table": table}


def print_suite(report: dict[str, Any]) -> None:
    """One row per trace: median per policy; the offline best and bound (first seed) when computed."""
    from rich.console import Console
    from rich.table import Table

    rows, policies = report["table"], report["policies"]
    offline = any("offline" in r for r in rows)
    table = Table(title="Unallocated GPU % at 100% arrived (median over seeds)")
    cols = ["trace", *policies]
    if offline:
        cols += [f"{p} (seed)" for p in policies] + ["offline (seed)", "bound (seed)"]
    cols.append("published fgd")
    for col in cols:
        table.add_column(col, justify="left" if col == "trace" else "right")
    for r in rows:
        cells = [r["trace"], *(f"{r[p]:.2f}" for p in policies)]
        if offline:
            cells += [f"{r[f'{p}_first_seed']:.2f}" for p in policies]
            cells += [f"{r['offline']:.2f}", f"{r['bound']:.2f}" + ("" if r["bound_optimal"] else "*")]
        pub = r.get("fgd_published")
        cells.append("" if pub is None else f"{pub:.2f}")
        table.add_row(*cells)
    Console().print(table)
    if offline:
        seed = rows[0].get("offline_seed")
        Console().print(f"(seed) columns: seed {seed} alone; offline = a real placement found knowing every "
                        "arrived pod; bound = no placement can leave less unallocated (* = time limit hit).")


def plot_suite(report: dict[str, Any], path: str | Path) -> None:
    """Bars: median unallocated GPU % per trace and policy (and the offline best when computed)."""
    import numpy as np

    plt = pyplot()

    rows = report["table"]
    series = list(report["policies"]) + (["offline"] if any("offline" in r for r in rows) else [])
    x = np.arange(len(rows))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(8, len(rows) * 0.9), 4.5))
    for i, name in enumerate(series):
        ax.bar(x + i * width, [r[name] for r in rows], width, label=name)
    ax.set_xticks(x + width * (len(series) - 1) / 2, [r["trace"] for r in rows], rotation=45, ha="right")
    ax.set(ylabel="unallocated GPU % at 100% arrived", title="Median over seeds (offline: first seed)")
    save_figure(fig, (ax,), path, grid_axis="y")

