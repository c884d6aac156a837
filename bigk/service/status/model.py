"""What the status page shows, gathered from the service's read side (no HTML here).

Runs with state and wait, the queue tree with each queue's share of the GPUs, a GPU map by node,
and one run's gang with its explanation and events. Every function only reads.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

TERMINAL = ("Succeeded", "Failed", "Cancelled", "TimedOut")


def span(seconds: float | None) -> str:
    """45s, 3m, 2h, 4d: the CLI's way of saying how long."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:.0f}s"


def run_row(run: dict[str, Any], now: float) -> dict[str, Any]:
    start, sub, fin = run.get("running_at"), run.get("submitted_at"), run.get("finished_at")
    wait = None if sub is None else (start or fin or now) - sub
    duration = None if start is None else (fin or now) - start
    return {**run, "age": span(now - run["created_at"]), "wait": span(wait), "duration": span(duration),
            "gpus": sum(1 for p in run.get("pods", []) if p.get("gpus"))}


@dataclass
class QueueNode:
    """One queue in the tree: its own runs and GPU share, and its children's summed in."""

    name: str
    path: str
    running: int = 0
    pending: int = 0
    gpu_milli: int = 0
    share: float = 0.0
    children: list[QueueNode] = field(default_factory=list)
    guarantee: Any = None
    maximum: Any = None


def queue_tree(runs: list[dict[str, Any]], gpus: list[dict[str, Any]], queues: list[dict[str, Any]] | None
               ) -> tuple[list[QueueNode], int]:
    """Queues as a tree (dots or `parent` make the hierarchy) with running/pending runs and GPU shares.

    The share is the queue's allocated GPUs over the cluster's GPUs, children counted in their parents.
    """
    by_pod: dict[str, str] = {}
    for run in runs:
        for pod in run.get("pods", []):
            by_pod[pod["name"]] = run["queue"]
    alloc: dict[str, int] = defaultdict(int)
    for gpu in gpus:
        for key in gpu.get("pods", []):
            queue = by_pod.get(key.split("/")[-1])
            if queue:
                alloc[queue] += gpu["allocated_milli"] // max(1, len(gpu["pods"]))
    total = 1000 * len(gpus)
    parent_of: dict[str, str | None] = {}
    extra: dict[str, dict[str, Any]] = {}
    for q in queues or []:
        parent_of[q["name"]] = q.get("parent")
        extra[q["name"]] = q
    for run in runs:
        parent_of.setdefault(run["queue"], None)
    todo = list(parent_of)
    while todo:  # root.team.sub without declared parents: the dots are the tree
        name = todo.pop()
        if parent_of[name] is None and "." in name:
            parent = name.rsplit(".", 1)[0]
            parent_of[name] = parent
            if parent not in parent_of:
                parent_of[parent] = None
                todo.append(parent)
    nodes = {name: QueueNode(name.rsplit(".", 1)[-1] if "." in name else name, name) for name in parent_of}
    for name, node in nodes.items():
        node.guarantee = extra.get(name, {}).get("guarantee")
        node.maximum = extra.get(name, {}).get("max") or extra.get(name, {}).get("maximum")
    for run in runs:
        node = nodes[run["queue"]]
        if run["state"] == "Running":
            node.running += 1
        elif run["state"] not in TERMINAL:
            node.pending += 1
    for name, milli in alloc.items():
        if name in nodes:
            nodes[name].gpu_milli += milli
    roots = []
    for name in sorted(nodes):
        up = parent_of.get(name)
        if up and up in nodes and up != name:
            nodes[up].children.append(nodes[name])
        else:
            roots.append(nodes[name])

    def total_up(node: QueueNode) -> None:
        for child in node.children:
            total_up(child)
            node.running += child.running
            node.pending += child.pending
            node.gpu_milli += child.gpu_milli
        node.share = node.gpu_milli / total if total else 0.0

    for root in roots:
        total_up(root)
    return roots, total


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


def now() -> float:
    return time.time()
