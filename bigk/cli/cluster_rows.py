"""`bigk get clusters`: the clusters `bigk serve` runs (one, `default`, unless it runs several: issue 18).

Columns: health (reachable, cordoned, whether this replica leads it), capacity and allocation (CPU, GPUs, from
its scheduler's last published copy), the gangs its scheduler has waiting, and its runs by state.
"""

from __future__ import annotations

from typing import Any

from bigk.cli.output import KindInfo


def _status(c: dict[str, Any]) -> str:
    status = "Ready" if c["reachable"] else "Unreachable"
    if c["cordoned"]:
        status += ",Cordoned"
    return status


def _share(used: Any, total: Any, scale: float = 1.0, unit: str = "") -> str:
    if used is None or total is None:
        return "-"
    return f"{used / scale:g}/{total / scale:g}{unit}"


def _runs(c: dict[str, Any], *states: str) -> int:
    return sum(int(c["runs"].get(s, 0)) for s in states)


def clusters_rows(items: list[dict[str, Any]], wide: bool, tty: bool) -> tuple[list[str], list[list[Any]]]:
    cols = ["NAME", "STATUS", "COST", "NODES", "CPU", "GPUS", "WAITING", "SUBMITTED", "RUNNING", "UNKNOWN"]
    if wide:
        cols += ["LEADER", "SERVER", "LABELS", "MEMORY"]
    rows = []
    for c in items:
        cap, alloc = c["capacity"], c["allocated"]
        row = [c["name"], _status(c), c["cost_tier"], "-" if cap["nodes"] is None else cap["nodes"],
               _share(alloc["cpu_milli"], cap["cpu_milli"], 1000), _share(alloc["gpus"], cap["gpus"]),
               c["waiting_gangs"], _runs(c, "Submitted"), _runs(c, "Admitted", "Running"), _runs(c, "Unknown")]
        if wide:
            row += ["yes" if c["leader"] else "no", c["server"],
                    ",".join(f"{k}={v}" for k, v in sorted(c["labels"].items())),
                    _share(alloc["memory_mib"], cap["memory_mib"], 1024, "Gi")]
        rows.append(row)
    return cols, rows


CLUSTERS = KindInfo("clusters", "cluster", "Cluster", "/clusters", clusters_rows, lambda c: c["name"],
                    labels=lambda c: {**c["labels"], "cordoned": str(c["cordoned"]).lower(),
                                      "reachable": str(c["reachable"]).lower()},
                    detail_path="/clusters/{name}")  # registered by bigk.cli.ops_cmds, after its own kinds
