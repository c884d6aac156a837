"""The inflation protocol of the FGD paper (and its artifact), driving bigk's own policies.

GPU nodes only. Per seed: the node order and the trace's pods are shuffled,
then pods sampled with replacement from the trace are appended until the
requested GPUs would pass `ratio` (130%) of the cluster's GPU capacity. Each
pod is scheduled once, in order: no retries, no departures. After every pod
we record arrived and allocated GPU; the headline metric is the unallocated
GPU % of capacity when arrived GPU requests reach 100% of capacity, computed
as the artifact's analysis does (mean allocation over the pods whose arrived
workload rounds to 100%).

Placement goes through `policy.select` on a `ClusterState` and
`ClusterState.allocate`, exactly as in the scheduler; the fast path only skips
building Pod objects.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from bigk.cluster.model import MILLI_GPU, Node, PodRequest
from bigk.cluster.state import ClusterState
from bigk.scheduler.policies.base import Policy, make_policy
from bigk.scheduler.policies.frag import FragModel, RowCache, typical_pods

INFLATION_RATIO = 1.3
CURVE_POINTS = 131  # arrived workload 0..130 %

Progress = Callable[[int, int], None]  # (pods done, pods in this run)


@dataclass
class SeedRun:
    """One policy on one seed."""

    policy: str
    seed: int
    unallocated_gpu_pct_at_100: float
    unallocated_gpu_pct: list[float | None]  # index = arrived workload % (0..130)
    frag_gpu_pct: list[float | None]  # fragmented GPU, % of capacity, same index
    frag_ratio_pct: list[float | None]  # fragmented share of idle GPU, same index
    pods: int
    failed: int
    seconds: float
    extra: dict[str, float] = field(default_factory=dict)


def inflated_workload(requests: Sequence[PodRequest], capacity_milli: int, rng: np.random.Generator,
                      ratio: float = INFLATION_RATIO) -> list[PodRequest]:
    """The trace's pods shuffled, plus pods sampled with replacement until GPU requests would pass `ratio`.

    A trace that already asks for more is thinned instead, dropping random pods
    until it fits (as the artifact's workload tuning does).
    """
    seq = [requests[i] for i in rng.permutation(len(requests))]
    total = sum(r.total_gpu_milli for r in seq)
    target = ratio * capacity_milli
    while total > target and seq:
        gone = seq.pop(int(rng.integers(len(seq))))
        total -= gone.total_gpu_milli
    if total > target or not requests:
        return seq
    while True:
        r = requests[int(rng.integers(len(requests)))]
        if total + r.total_gpu_milli > target:
            return seq
        seq.append(r)
        total += r.total_gpu_milli


def seeded_policy(name: str, seed: int) -> Policy:
    """A fresh policy whose tie-breaking (and randomness) comes from `seed`."""
    policy = make_policy(name)
    seed_fn = getattr(policy, "seed", None)
    if callable(seed_fn):
        seed_fn(seed)
    return policy


def run_inflation(nodes: Sequence[Node], requests: Sequence[PodRequest], policy_name: str, seed: int,
                  ratio: float = INFLATION_RATIO, progress: Progress | None = None) -> SeedRun:
    """Run one policy on one seed; see the module docstring for the protocol."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    gpu_nodes = [n for n in nodes if n.gpus]
    order = rng.permutation(len(gpu_nodes))
    state = ClusterState([gpu_nodes[i] for i in order])
    capacity = int(state.gpu_count.sum()) * MILLI_GPU
    if capacity == 0:
        raise ValueError("the inflation protocol needs GPU nodes")
    seq = inflated_workload(requests, capacity, rng, ratio)
    policy = seeded_policy(policy_name, seed)
    policy.observe_workload(list(requests))
    frag = _ClusterFrag(FragModel(typical_pods(requests)))

    feasible = FeasibleCache(state)
    arrived = np.zeros(len(seq), dtype=np.int64)
    used = np.zeros(len(seq), dtype=np.int64)
    frag_pct: list[float | None] = [None] * CURVE_POINTS
    ratio_pct: list[float | None] = [None] * CURVE_POINTS
    total_arrived = total_used = failed = 0
    next_point = 0
    for i, req in enumerate(seq):
        total_arrived += req.total_gpu_milli
        placement = policy.select(state, req, feasible.get(req), None)
        if placement is None:
            failed += 1
        else:
            state.allocate(f"p{i}", req, placement)
            total_used += req.total_gpu_milli
        arrived[i], used[i] = total_arrived, total_used
        point = int(100 * total_arrived / capacity)
        while next_point <= min(point, CURVE_POINTS - 1):
            amount, share = frag.measure(state)
            frag_pct[next_point], ratio_pct[next_point] = 100 * amount / capacity, share
            next_point += 1
        if progress is not None and (i + 1) % 500 == 0:
            progress(i + 1, len(seq))
    if progress is not None:
        progress(len(seq), len(seq))
    curve = unallocated_curve(arrived, used, capacity)
    at_100 = curve[100]
    return SeedRun(policy_name, seed, float("nan") if at_100 is None else at_100, curve, frag_pct, ratio_pct,
                   len(seq), failed, time.perf_counter() - started)


def unallocated_curve(arrived: np.ndarray, used: np.ndarray, capacity_milli: int) -> list[float | None]:
    """Unallocated GPU % at each arrived workload % (0..130), as the artifact's analysis computes it.

    For each integer percentage, the mean allocation (rounded to 0.01%) over the
    pods whose arrived workload rounds to it, falling back to +-1 point. Where
    single pods are so large that arrivals jump over a percentage (small
    clusters), the value is the allocation just before the jump.
    """
    exact = arrived / capacity_milli * 100
    arrive_pct = np.round(exact, 0)
    alloc_pct = np.round(used / capacity_milli * 100, 2)
    out: list[float | None] = []
    for pct in range(CURVE_POINTS):
        sel = arrive_pct == pct
        if not sel.any():
            sel = (arrive_pct >= pct - 1) & (arrive_pct <= pct + 1)
        if not sel.any():
            before = np.flatnonzero(exact <= pct)
            sel = np.zeros(len(exact), dtype=bool)
            if len(before) and exact[-1] > pct:
                sel[before[-1]] = True
        out.append(None if not sel.any() else round(100.0 - round(float(alloc_pct[sel].mean()), 2), 2))
    return out


class FeasibleCache:
    """`state.feasible(req, base_mask=state.static_mask({}, (), req.gpu_models))`, kept per request.

    The protocol changes nodes only through `allocate` (no clock, readings, cordons or
    releases), so a node's feasibility for a request changes only when the node does:
    each call recomputes just the nodes allocated to since that request was last asked,
    with `state.feasible`'s rules (tests/sim/test_inflation.py checks they agree).
    """

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self._masks: dict[frozenset[str], np.ndarray] = {}
        self._known: dict[PodRequest, tuple[np.ndarray, int]] = {}

    def get(self, req: PodRequest) -> np.ndarray:
        """Feasible nodes for `req` (read-only)."""
        state = self.state
        base = self._masks.get(req.gpu_models)
        if base is None:
            base = self._masks[req.gpu_models] = state.static_mask({}, (), req.gpu_models)
        known = self._known.get(req)
        if known is None:
            ok = state.feasible(req, base_mask=base)
        else:
            ok, seen = known
            rows = state.rows_changed_since(seen)
            if len(rows):
                ok = ok.copy()
                ok[rows] = self._rows(req, base, rows)
            else:
                return ok
        ok.flags.writeable = False
        self._known[req] = (ok, state.version)
        return ok

    def _rows(self, req: PodRequest, base: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """`state.feasible(req, base)[rows]`, computed on those rows only (no clock: every reading counts)."""
        s = self.state
        ok = s.schedulable[rows] & base[rows] & (s.pods_used[rows] < s.pods_cap[rows])
        ok &= s.cpu_cap[rows] - s.cpu_used[rows] >= req.cpu_milli
        ok &= s.mem_cap[rows] - s.mem_used[rows] >= req.memory_mib
        if req.is_gpu:
            ok &= (s.owner_share_ok if req.is_fractional else s.owner_whole_ok)[rows]
            usable = s.usable_gpus(None)[rows]
            used = s.gpu_milli_used[rows]
            if not req.is_fractional:
                slots = usable & (used == 0)
            else:
                slots = usable & (MILLI_GPU - used >= req.gpu_milli)
                if req.gpu_memory_mib:
                    slots &= (s.gpu_mem_cap[rows] - s.gpu_mem_used[rows]) >= req.gpu_memory_mib
            ok &= slots.sum(axis=1) >= req.gpu_count
        return ok


class _ClusterFrag:
    """Cluster fragmentation (milli-GPU, and share of idle GPU) with per-node caching."""

    def __init__(self, model: FragModel) -> None:
        self.model = model
        self.cache = RowCache()

    def measure(self, state: ClusterState) -> tuple[float, float | None]:
        cpu_left, left = state.cpu_free, state.gpu_milli_free

        def compute(rows: np.ndarray) -> np.ndarray:
            return self.model.node_frag(cpu_left[rows], left[rows], state.gpu_model[rows], state.models)

        per_node = self.cache.get([cpu_left, left, state.gpu_model], compute)
        amount = float(per_node.sum())
        idle = float(left.sum())
        return amount, (100 * amount / idle if idle > 0 else None)
