"""The offline best is a real placement, the bound is never beaten, and both see what an online policy misses."""

from __future__ import annotations

from pathlib import Path

from bigk.cluster.model import Gpu, Node, PodRequest
from bigk.sim.inflation import run_inflation
from bigk.sim.offline import arrived_at_100, offline_best, seed_arrivals
from bigk.sim.trace import load_nodes, load_pods


def _node(name: str, gpus: int, cpu: int = 64_000, model: str = "G2") -> Node:
    return Node(name, cpu, 256_000, pods=100, gpus=[Gpu(i, model, 16_000) for i in range(gpus)])


def test_order_matters_online_but_not_offline() -> None:
    # Two 4-GPU nodes; two 1-GPU pods arrive before a 4-GPU pod and a 3-GPU pod. Spread online,
    # the small pods can block the large ones; offline they share one node with the 3-GPU pod.
    nodes = [_node("a", 4), _node("b", 4)]
    arrived = [PodRequest(1000, 1000, 1, 1000), PodRequest(1000, 1000, 4, 1000), PodRequest(1000, 1000, 3, 1000)]
    result = offline_best(nodes, arrived, time_limit_s=5)
    assert result.offline_unallocated_pct == 0.0 and result.bound_unallocated_pct == 0.0 and result.optimal
    assert result.placed == 3


def test_bound_sees_per_gpu_shares() -> None:
    # Three 0.6-GPU shares cannot use two GPUs fully: at most two fit, one per GPU.
    nodes = [_node("a", 2)]
    arrived = [PodRequest(1000, 1000, 1, 600)] * 3
    result = offline_best(nodes, arrived, time_limit_s=5)
    assert result.bound_unallocated_pct == 40.0 and result.offline_unallocated_pct == 40.0


def test_model_constraints_and_cpu_only_pods_are_respected() -> None:
    nodes = [_node("t4", 2, model="T4"), _node("g2", 2, cpu=8_000)]
    arrived = [PodRequest(1000, 1000, 2, 1000, gpu_models=frozenset({"T4"})),
               PodRequest(1000, 1000, 2, 1000, gpu_models=frozenset({"T4"})),  # only one T4 node
               PodRequest(8_000, 1000)]  # CPU-only: must be placed, and fits only on t4
    result = offline_best(nodes, arrived, time_limit_s=5)
    assert result.cpu_only_unplaced == 0 and result.placed == 2
    assert result.offline_unallocated_pct == 50.0 and result.bound_unallocated_pct == 50.0


def test_offline_is_between_the_bound_and_the_online_policies(small_trace: tuple[Path, Path]) -> None:
    nodes, pods = load_nodes(small_trace[0]), load_pods(small_trace[1])
    requests = [p.request for p in pods]
    arrived, capacity = seed_arrivals(nodes, requests, seed=3)
    assert sum(r.total_gpu_milli for r in arrived) <= capacity
    result = offline_best(nodes, arrived, time_limit_s=10)
    assert result.bound_unallocated_pct <= result.offline_unallocated_pct + 1e-9
    online = run_inflation(nodes, requests, "fgd", 3)
    # the online figure averages a few pods around 100%; allow that much slack
    assert result.offline_unallocated_pct <= online.unallocated_gpu_pct_at_100 + 1.0


def test_arrived_at_100_stops_before_capacity() -> None:
    seq = [PodRequest(0, 0, 1, 1000)] * 5
    assert len(arrived_at_100(seq, 3000)) == 3
