"""What the status page shows, gathered from the service's read side (no HTML here).

Runs with state and wait, a waiting run's place in line and estimated start (the ETA board of
`bigk.service.eta`), the queue tree with each queue's share of the GPUs, a GPU map by node, and one
run's gang with its explanation and events. Over several clusters (issue 18): a summary row per
cluster and the GPU map grouped by cluster. Every function only reads.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bigk.durations import span


def run_row(run: dict[str, Any], now: float) -> dict[str, Any]:
    start, sub, fin = run.get("running_at"), run.get("submitted_at"), run.get("finished_at")
    wait = None if sub is None else (start or fin or now) - sub
    duration = None if start is None else (fin or now) - start
    return {**run, "age": span(now - run["created_at"]), "wait": span(wait), "duration": span(duration),
            "gpus": sum(1 for p in run.get("pods", []) if p.get("gpus")), "eta_shown": eta_view(run.get("eta"), now)}


def clock(ts: float | None) -> str:
    """'2026-12-02 14:05:10 UTC' ('-' for None)."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts)) if ts else "-"


def relative(ts: float, now: float) -> str:
    """'in 3m', or 'now' when `ts` is less than a second away (or past)."""
    delta = ts - now
    return "now" if delta < 1 else f"in {span(delta)}"


def eta_view(eta: dict[str, Any] | None, now: float) -> dict[str, Any] | None:
    """A waiting run's ETA (a `RunEta` dict of the API) as the page shows it, None when it has none.

    position: '2 of 5' overall, in_queue: '1 of 3 in ml.training'; eta: 'in 3m' (or 'unknown' when no
    start falls within the forecast's horizon), at: its clock time; range: 'in 2m .. in 5m' (p10..p90),
    range_at: the same as clock times; waits_for: what it waits for, in the forecast's words.
    """
    if not eta:
        return None
    start, lo, hi = eta.get("eta"), eta.get("eta_low"), eta.get("eta_high")
    has_range = start is not None and lo is not None and hi is not None
    return {
        "position": f"{eta['position']} of {eta['waiting']}",
        "in_queue": f"{eta['queue_position']} of {eta['queue_waiting']} in {eta['queue']}",
        "eta": "unknown" if start is None else relative(start, now),
        "at": clock(start),
        "range": f"{relative(lo, now)} .. {relative(hi, now)}" if has_range and lo is not None and hi is not None
        else "-",
        "range_at": f"{clock(lo)} .. {clock(hi)}" if has_range else "-",
        "waits_for": eta.get("waits_for") or "",
        "computed": span(now - eta["computed_at"]) if eta.get("computed_at") else "-",
    }


@dataclass
class QueueNode:
    """One queue of the tree as the scheduler sees it, with its children."""

    name: str
    row: dict[str, Any]
    children: list[QueueNode] = field(default_factory=list)

    @property
    def gpu_share(self) -> float:
        """Allocated GPUs (its whole subtree) over the cluster's GPUs."""
        total = (self.row.get("cluster") or {}).get("gpu") or 0
        return (self.row["allocated"].get("gpu") or 0) / total if total else 0.0


def queue_tree(rows: list[dict[str, Any]]) -> list[QueueNode]:
    """The service's queue rows (parents first, each with `parent`) as a tree of QueueNodes."""
    nodes = {row["name"]: QueueNode(row["name"].rsplit(".", 1)[-1], row) for row in rows}
    roots = []
    for row in rows:
        parent = nodes.get(row.get("parent") or "")
        if parent is not None and parent is not nodes[row["name"]]:
            parent.children.append(nodes[row["name"]])
        else:
            roots.append(nodes[row["name"]])
    return roots


def resources(values: dict[str, Any] | None) -> str:
    """{'cpu': 4, 'memory': 16, 'gpu': 2} -> '4 CPU · 16 GiB · 2 GPU' ('-' when empty)."""
    if not values:
        return "-"
    units = {"cpu": "CPU", "memory": "GiB", "gpu": "GPU"}
    return " · ".join(f"{values[k]:g} {units.get(k, k)}" for k in ("cpu", "memory", "gpu") if values.get(k) is not None)


def gpu_map(gpus: list[dict[str, Any]], nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per node: its GPUs in index order, each with a state the page colours (free, partly, full, idle, sick)."""
    by_node: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for gpu in gpus:
        notes = set(gpu.get("notes", []))
        if gpu.get("healthy") is False or "unhealthy" in notes:
            state = "sick"
        elif "allocated-idle" in notes:
            state = "idle"
        elif gpu["allocated_milli"] >= 1000:
            state = "full"
        elif gpu["allocated_milli"] > 0:
            state = "partly"
        else:
            state = "free"
        by_node[gpu["node"]].append({**gpu, "state": state})
    info = {n["name"]: n for n in nodes}
    out = []
    for name in sorted(by_node):
        node = info.get(name, {})
        out.append({"name": name, "pool": node.get("pool") or by_node[name][0].get("pool") or "-",
                    "ready": node.get("ready", True), "cordoned": node.get("unschedulable", False),
                    "gpus": sorted(by_node[name], key=lambda g: g["index"])})
    return out


def cluster_summary(row: dict[str, Any]) -> dict[str, Any]:
    """A row of `bigk get clusters` (`bigk.service.clusters_api.cluster_rows`) as the page's cluster summary shows it:
    health (up, unreachable), cordon, GPUs allocated of capacity, waiting gangs, active runs by state."""
    capacity, allocated = row.get("capacity") or {}, row.get("allocated") or {}
    total, used = capacity.get("gpus"), allocated.get("gpus")
    return {"name": row["name"], "health": "up" if row.get("reachable") else "unreachable",
            "cordoned": bool(row.get("cordoned")), "cordon_by": row.get("cordon_by") or "",
            "gpus": "-" if total is None else f"{used or 0:g}/{total}", "nodes": capacity.get("nodes"),
            "waiting_gangs": row.get("waiting_gangs", 0), "leader": bool(row.get("leader")),
            "runs": ", ".join(f"{n} {state}" for state, n in sorted((row.get("runs") or {}).items())) or "-"}


def gpu_counts(maps: list[dict[str, Any]]) -> tuple[dict[str, int], int]:
    """GPUs by state over every cluster's map, and how many GPUs the maps show."""
    counts: dict[str, int] = {}
    total = 0
    for group in maps:
        for node in group["nodes"]:
            for g in node["gpus"]:
                counts[g["state"]] = counts.get(g["state"], 0) + 1
                total += 1
    return counts, total


def now() -> float:
    return time.time()
