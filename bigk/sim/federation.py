"""The cost of federation: the inflation protocol over several clusters, each pod dispatched to one of them.

`bigk simulate --split N` (issue 18). The trace's GPU nodes are spread over N clusters
(`split_nodes`): `model` gives each cluster whole GPU models (the largest model first, each to the
cluster with the fewest GPUs so far), so clusters differ in shape as an on-premises cluster and cloud
clusters do; `even` deals the nodes round robin (same shapes: the cost of the partition alone). Per
seed, node order and pod sequence are exactly those of the single-cluster run (`run_inflation`, same
random draws), then each pod, in order, is dispatched by `bigk.scheduler.dispatch` (a gang of one pod:
the trace has no gangs) and placed, in the chosen cluster, by that cluster's own policy through the
dispatcher's trial (the scheduler's `Placer`); a pod that fits in no cluster fails, as in the protocol.
The baseline is the same code with one cluster holding every node, so the difference is the
federation's cost alone (tests check the one-cluster run equals `run_inflation`).

Gangs of several pods and cost tiers are not exercised by this trace (it has lone pods, and every cluster
here has cost tier 0); the protocol has no queue (a pod that does not fit is dropped): queue waits across
clusters are `bigk.sim.federated_timeline`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from bigk.cluster.model import MILLI_GPU, Gang, Node, PodRequest
from bigk.cluster.state import ClusterState
from bigk.scheduler.dispatch import ClusterView, Fill, dispatch
from bigk.sim.inflation import INFLATION_RATIO, inflated_workload, seeded_policy, unallocated_curve

SPLITS = ("model", "even")


@dataclass
class ClusterShare:
    """One cluster of a federated run: its shape, and what it held at the end and when 100 % had arrived."""

    name: str
    nodes: int
    gpus: int
    models: dict[str, int]  # GPUs per model
    pods: int = 0  # pods dispatched there
    unallocated_gpu_pct_at_100: float = float("nan")  # of this cluster's GPUs


@dataclass
class FederatedRun:
    """One policy on one seed, single cluster vs federated."""

    policy: str
    seed: int
    clusters: int
    split: str
    fill: str
    single_pct_at_100: float
    federated_pct_at_100: float
    single_failed: int
    federated_failed: int
    pods: int
    shares: list[ClusterShare] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def cost_points(self) -> float:
        """Unallocated GPU % of the federation minus that of one cluster of the same nodes."""
        return self.federated_pct_at_100 - self.single_pct_at_100


def split_nodes(nodes: Sequence[Node], count: int, how: str = "model") -> list[list[Node]]:
    """Spread nodes over `count` clusters (module docstring): GPU nodes keep their order within each cluster;
    nodes without GPUs (the timeline protocol keeps them) are dealt round robin after them."""
    if count < 1:
        raise ValueError("a federation needs at least one cluster")
    gpu_nodes = [n for n in nodes if n.gpus]
    cpu_nodes = [n for n in nodes if not n.gpus]
    parts = _split_gpu_nodes(gpu_nodes, count, how)
    for k, part in enumerate(parts):
        part.extend(cpu_nodes[k::count])
    return parts


def _split_gpu_nodes(gpu_nodes: list[Node], count: int, how: str) -> list[list[Node]]:
    if how == "even":
        if count > len(gpu_nodes):
            raise ValueError(f"{count} clusters but only {len(gpu_nodes)} GPU nodes")
        return [gpu_nodes[k::count] for k in range(count)]
    if how != "model":
        raise ValueError(f"unknown split {how!r}; use {' or '.join(SPLITS)}")
    gpus: dict[str, int] = {}
    for n in gpu_nodes:
        gpus[n.gpu_model] = gpus.get(n.gpu_model, 0) + len(n.gpus)
    if count > len(gpus):
        raise ValueError(f"{count} clusters but only {len(gpus)} GPU models ({', '.join(sorted(gpus))}): "
                         "split by model gives each cluster whole models; use fewer clusters or --split-by even")
    owner: dict[str, int] = {}
    load = [0] * count
    for model in sorted(gpus, key=lambda m: (-gpus[m], m)):
        k = min(range(count), key=lambda c: (load[c], c))
        owner[model] = k
        load[k] += gpus[model]
    return [[n for n in gpu_nodes if owner[n.gpu_model] == k] for k in range(count)]


Progress = Callable[[int, int], None]


def _play(parts: list[list[Node]], seq: Sequence[PodRequest], requests: Sequence[PodRequest], policy_name: str,
          seed: int, fill: Fill, progress: Progress | None, offset: int, total: int
          ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[int], int]:
    """Dispatch and place `seq` over the clusters `parts`: arrived and allocated milli-GPU after every pod, in all
    and per cluster (allocated only), the pods each cluster took, and the pods that fit nowhere."""
    views = []
    for k, part in enumerate(parts):
        policy = seeded_policy(policy_name, seed)
        policy.observe_workload(list(requests))
        views.append(ClusterView(f"c{k}", ClusterState(part), policy=policy))
    arrived = np.zeros(len(seq), dtype=np.int64)
    used = np.zeros(len(seq), dtype=np.int64)
    per = [np.zeros(len(seq), dtype=np.int64) for _ in parts]
    taken = [0] * len(parts)
    index = {v.name: k for k, v in enumerate(views)}
    total_arrived = total_used = failed = 0
    mine = [0] * len(parts)
    for i, req in enumerate(seq):
        total_arrived += req.total_gpu_milli
        gang = Gang(f"p{i}", "default", 0, req, req, 0)
        choice = dispatch(gang, views, fill=fill, keep=True)
        if choice.how == "fits-now" and choice.cluster is not None:
            k = index[choice.cluster]
            taken[k] += 1
            mine[k] += req.total_gpu_milli
            total_used += req.total_gpu_milli
        else:
            failed += 1
        arrived[i], used[i] = total_arrived, total_used
        for k in range(len(parts)):
            per[k][i] = mine[k]
        if progress is not None and (i + 1) % 500 == 0:
            progress(offset + i + 1, total)
    return arrived, used, per, taken, failed


def run_federated(nodes: Sequence[Node], requests: Sequence[PodRequest], policy_name: str, seed: int,
                  clusters: int, split: str = "model", fill: Fill = "spread", ratio: float = INFLATION_RATIO,
                  progress: Progress | None = None) -> FederatedRun:
    """One policy on one seed: the inflation protocol on one cluster of all GPU nodes, then on `clusters`
    clusters of the same nodes (the same node order and pod sequence), each pod dispatched."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    gpu_nodes = [n for n in nodes if n.gpus]
    order = rng.permutation(len(gpu_nodes))
    ordered = [gpu_nodes[i] for i in order]
    capacity = sum(len(n.gpus) for n in ordered) * MILLI_GPU
    if capacity == 0:
        raise ValueError("the inflation protocol needs GPU nodes")
    seq = inflated_workload(requests, capacity, rng, ratio)
    parts = split_nodes(ordered, clusters, split)
    a1, u1, _, _, failed1 = _play([ordered], seq, requests, policy_name, seed, fill, progress, 0, 2 * len(seq))
    a2, u2, per, taken, failed2 = _play(parts, seq, requests, policy_name, seed, fill, progress, len(seq),
                                        2 * len(seq))
    if progress is not None:
        progress(2 * len(seq), 2 * len(seq))
    single = unallocated_curve(a1, u1, capacity)[100]
    federated = unallocated_curve(a2, u2, capacity)[100]
    at_100 = _index_at_100(a2, capacity)
    shares = []
    for k, part in enumerate(parts):
        cap = sum(len(n.gpus) for n in part) * MILLI_GPU
        models: dict[str, int] = {}
        for n in part:
            models[n.gpu_model] = models.get(n.gpu_model, 0) + len(n.gpus)
        left = 100.0 - 100.0 * float(per[k][at_100]) / cap if at_100 is not None and cap else float("nan")
        shares.append(ClusterShare(f"c{k}", len(part), cap // MILLI_GPU, dict(sorted(models.items())), taken[k],
                                   round(left, 2)))
    return FederatedRun(policy_name, seed, clusters, split, fill, _num(single), _num(federated), failed1, failed2,
                        len(seq), shares, time.perf_counter() - started)


def _num(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _index_at_100(arrived: np.ndarray, capacity: int) -> int | None:
    """The pod after which arrived GPU requests first reach 100 % of capacity."""
    hits = np.flatnonzero(arrived >= capacity)
    return int(hits[0]) if len(hits) else None


def federation_report(runs: Sequence[FederatedRun], meta: dict[str, object]) -> dict[str, object]:
    """JSON-ready: per policy the medians (single, federated, cost in points) and every seed's run."""
    out: dict[str, object] = {"meta": meta, "policies": {}}
    policies: dict[str, list[FederatedRun]] = {}
    for run in runs:
        policies.setdefault(run.policy, []).append(run)
    table = {}
    for name, rs in policies.items():
        table[name] = {
            "single_median": round(float(np.median([r.single_pct_at_100 for r in rs])), 2),
            "federated_median": round(float(np.median([r.federated_pct_at_100 for r in rs])), 2),
            "cost_points_median": round(float(np.median([r.cost_points for r in rs])), 2),
            "runs": [{"seed": r.seed, "single": r.single_pct_at_100, "federated": r.federated_pct_at_100,
                      "cost_points": round(r.cost_points, 2), "single_failed": r.single_failed,
                      "federated_failed": r.federated_failed, "pods": r.pods, "seconds": round(r.seconds, 1),
                      "clusters": [vars(s) for s in r.shares]} for r in rs],
        }
    out["policies"] = table
    return out


def print_federation(report: dict[str, object]) -> None:
    """The table on stdout: per policy, single vs federated unallocated GPU % at 100 % arrived (medians)."""
    from rich.console import Console
    from rich.table import Table

    meta = report["meta"]
    assert isinstance(meta, dict)
    table = Table(title=f"unallocated GPU % at 100 % arrived: one cluster vs {meta['clusters']} clusters "
                        f"(split by {meta['split']}, fill {meta['fill']}), median of seeds {meta['seeds']}")
    for column in ("policy", "one cluster", "federated", "cost (points)", "seeds: federated - one"):
        table.add_column(column)
    policies = report["policies"]
    assert isinstance(policies, dict)
    for name, row in policies.items():
        per_seed = ", ".join(f"{r['cost_points']:+.2f}" for r in row["runs"])
        table.add_row(name, f"{row['single_median']:.2f}", f"{row['federated_median']:.2f}",
                      f"{row['cost_points_median']:+.2f}", per_seed)
    console = Console()
    console.print(table)
    first = next(iter(policies.values()), None)
    if first:
        for share in first["runs"][0]["clusters"]:
            models = ", ".join(f"{m} {n}" for m, n in share["models"].items())
            console.print(f"  {share['name']}: {share['nodes']} nodes, {share['gpus']} GPUs ({models})")
