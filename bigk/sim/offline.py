"""How far from the best possible: an offline placement of the same arrived pods, and a bound on any placement.

The inflation protocol stops being interesting at 100% arrived: the question is
how much of the cluster's GPU the arrived pods could occupy if one knew them all
in advance and could choose which to run. This module answers it twice:

- **bound** (upper bound on allocated GPU, so a *lower* bound on the unallocated
  %): a mixed-integer program solved with HiGHS, where nodes of the same kind
  (CPU, memory, GPU count, GPU model) are pooled and pods of the same shape are
  counted. Per node kind, the pods placed there must fit the pooled CPU, memory
  and GPU milli, the whole GPUs plus the GPU shares weighted by dual-feasible
  functions (Fekete and Schepers) must fit the pooled GPU count, and at most one pod per node may take more than half of
  a node's GPUs, CPU or memory. Every real placement satisfies these, so no
  placement can allocate more than the program's optimum; with a time limit the
  solver's dual bound is used, which is still valid.
- **offline** (a feasible placement): the program's pod counts per node kind are
  packed into the actual nodes, largest pods first (whole GPUs on the lowest free
  indices, a share on the fullest GPU it fits), and any pod the program left out
  or that did not fit is then tried on every node. This is a real placement,
  checked slot by slot.

CPU-only pods must all be placed in both (the online policies place them when
they fit at all); if that is impossible they become optional.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bigk.cluster.model import MILLI_GPU, Node, PodRequest

DEFAULT_TIME_LIMIT_S = 60.0

_Shape = tuple[int, int, int, int, frozenset[str]]  # cpu, memory, GPU count, milli per GPU, models
_Kind = tuple[int, int, int, str]  # cpu, memory, GPUs, model


@dataclass(frozen=True)
class OfflineResult:
    """Unallocated GPU % of capacity: a feasible offline placement, and the bound no placement can beat."""

    offline_unallocated_pct: float
    bound_unallocated_pct: float
    optimal: bool  # the program was solved to optimality within the time limit
    pods: int
    placed: int
    cpu_only_unplaced: int
    seconds: float


def arrived_at_100(seq: Sequence[PodRequest], capacity_milli: int) -> list[PodRequest]:
    """The prefix of an arrival sequence whose GPU requests stay within 100% of capacity."""
    out: list[PodRequest] = []
    total = 0
    for r in seq:
        if total + r.total_gpu_milli > capacity_milli:
            break
        total += r.total_gpu_milli
        out.append(r)
    return out


def _shape(r: PodRequest) -> _Shape:
    return (r.cpu_milli, r.memory_mib, r.gpu_count, r.gpu_milli if r.is_gpu else 0, r.gpu_models)


def _kind(n: Node) -> _Kind:
    return (n.cpu_milli, n.memory_mib, len(n.gpus), n.gpu_model)


def _fits(s: _Shape, k: _Kind) -> bool:
    cpu, mem, count, _, models = s
    return cpu <= k[0] and mem <= k[1] and count <= k[2] and (count == 0 or not models or k[3] in models)


def _dff(milli: int, k: int) -> float:
    """Fekete and Schepers' dual-feasible function f_k of a GPU share milli/1000 (0 for no GPU)."""
    scaled = (k + 1) * milli
    return milli / MILLI_GPU if scaled % MILLI_GPU == 0 else (scaled // MILLI_GPU) / k


def solve_bound(shapes: list[_Shape], counts: list[int], kinds: list[_Kind], nodes_of: list[int],
                time_limit_s: float, cpu_only_required: bool = True) -> tuple[np.ndarray, float, bool]:
    """The pooled program: pods of each shape per node kind, its GPU-milli bound, and whether it is optimal."""
    import highspy

    cols = [(s, k) for s in range(len(shapes)) for k in range(len(kinds)) if _fits(shapes[s], kinds[k])]
    rows: list[tuple[list[int], list[float], float, float]] = []
    by_kind: dict[int, list[int]] = {}
    by_shape: dict[int, list[int]] = {}
    for j, (s, k) in enumerate(cols):
        by_kind.setdefault(k, []).append(j)
        by_shape.setdefault(s, []).append(j)
    for k, js in by_kind.items():
        cpu, mem, gpus, _ = kinds[k]
        m = nodes_of[k]
        sh = [shapes[cols[j][0]] for j in js]
        rows.append((js, [float(s[0]) for s in sh], 0.0, float(m * cpu)))
        rows.append((js, [float(s[1]) for s in sh], 0.0, float(m * mem)))
        rows.append((js, [float(s[2] * s[3]) for s in sh], 0.0, float(m * gpus * MILLI_GPU)))
        # GPU slots: whole GPUs count 1 each, a share x counts f_k(x), a dual-feasible function
        # (shares on one GPU sum to at most 1, so their f_k values do too)
        for k in (1, 2, 3, 4):
            slots = [float(s[2]) if s[3] >= MILLI_GPU else _dff(s[3], k) for s in sh]
            rows.append((js, slots, 0.0, float(m * gpus)))
        for big in ([s[2] * 2 > gpus > 0 for s in sh], [s[0] * 2 > cpu for s in sh], [s[1] * 2 > mem for s in sh]):
            if any(big):
                rows.append((js, [1.0 if b else 0.0 for b in big], 0.0, float(m)))
    for s, js in by_shape.items():
        low = float(counts[s]) if cpu_only_required and shapes[s][2] == 0 else 0.0
        rows.append((js, [1.0] * len(js), low, float(counts[s])))

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("threads", 1)
    lp = highspy.HighsLp()
    n = len(cols)
    lp.num_col_ = n
    lp.num_row_ = len(rows)
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.col_cost_ = np.array([float(shapes[s][2] * shapes[s][3]) for s, _ in cols])
    lp.col_lower_ = np.zeros(n)
    lp.col_upper_ = np.array([float(counts[s]) for s, _ in cols])
    lp.row_lower_ = np.array([r[2] for r in rows])
    lp.row_upper_ = np.array([r[3] for r in rows])
    starts, index, value = [0], [], []
    for idx, vals, _, _ in rows:
        index.extend(idx)
        value.extend(vals)
        starts.append(len(index))
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.array(starts, dtype=np.int32)
    lp.a_matrix_.index_ = np.array(index, dtype=np.int32)
    lp.a_matrix_.value_ = np.array(value)
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n
    h.passModel(lp)
    h.run()
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kInfeasible:
        if cpu_only_required:
            return solve_bound(shapes, counts, kinds, nodes_of, time_limit_s, cpu_only_required=False)
        raise RuntimeError("the offline program is infeasible")
    info = h.getInfo()
    values = np.array(h.getSolution().col_value) if info.primal_solution_status else np.zeros(n)
    x = np.zeros((len(shapes), len(kinds)))
    for j, (s, k) in enumerate(cols):
        x[s, k] = round(values[j])
    optimal = status == highspy.HighsModelStatus.kOptimal
    bound = float(info.objective_function_value) if optimal else float(info.mip_dual_bound)
    return x, bound, optimal


def _order(r: PodRequest) -> tuple[int, int, int, int]:
    """Largest first: GPUs, then a GPU share, then CPU; CPU-only pods last."""
    return (-r.gpu_count, -r.gpu_milli, -r.cpu_milli, -r.memory_mib)


def _pack(nodes: Sequence[Node], items: Sequence[tuple[PodRequest, int | None]], kinds_of: np.ndarray,
          workload: list[PodRequest], policy_name: str) -> tuple[int, int, int]:
    """Place (pod, node kind or None) items in order with a policy, each on its kind's nodes first, then anywhere.

    Returns GPU milli placed, pods placed, CPU-only pods left out. Placement goes through
    `ClusterState`, so it is a real one (CPU, memory, per-GPU shares).
    """
    from bigk.cluster.state import ClusterState
    from bigk.sim.inflation import seeded_policy

    state = ClusterState(list(nodes))
    policy = seeded_policy(policy_name, 0)
    policy.observe_workload(workload)
    masks: dict[frozenset[str], np.ndarray] = {}
    milli = placed = cpu_left = 0
    for i, (r, kind) in enumerate(items):
        mask = masks.get(r.gpu_models)
        if mask is None:
            mask = masks[r.gpu_models] = state.static_mask({}, (), r.gpu_models)
        placement = None
        if kind is not None:
            placement = policy.select(state, r, state.feasible(r, base_mask=mask & (kinds_of == kind)), None)
        if placement is None:
            placement = policy.select(state, r, state.feasible(r, base_mask=mask), None)
        if placement is None:
            cpu_left += 0 if r.is_gpu else 1
            continue
        state.allocate(f"o{i}", r, placement)
        milli += r.total_gpu_milli
        placed += 1
    return milli, placed, cpu_left


def offline_best(nodes: Sequence[Node], arrived: Sequence[PodRequest],
                 time_limit_s: float = DEFAULT_TIME_LIMIT_S, policy_name: str = "bigk") -> OfflineResult:
    """The bound and a feasible offline placement of `arrived` on the GPU nodes of `nodes`."""
    started = time.perf_counter()
    gpu_nodes = [n for n in nodes if n.gpus]
    capacity = sum(len(n.gpus) for n in gpu_nodes) * MILLI_GPU
    if capacity == 0:
        raise ValueError("the offline placement needs GPU nodes")
    shape_count = Counter(_shape(r) for r in arrived)
    shapes = sorted(shape_count, key=lambda s: (s[2] * s[3], s[2], s[0], s[1], sorted(s[4])), reverse=True)
    kind_count = Counter(_kind(n) for n in gpu_nodes)
    kinds = sorted(kind_count, key=lambda k: (k[2], k[0], k[1], k[3]))
    x, bound, optimal = solve_bound(shapes, [shape_count[s] for s in shapes], kinds,
                                    [kind_count[k] for k in kinds], time_limit_s)

    kind_of = np.array([kinds.index(_kind(n)) for n in gpu_nodes])
    example = {_shape(r): r for r in arrived}
    planned: list[tuple[PodRequest, int | None]] = []
    left = Counter(shape_count)
    for s, k in zip(*np.nonzero(x), strict=True):
        planned += [(example[shapes[s]], int(k))] * int(x[s, k])
        left[shapes[s]] -= int(x[s, k])
    planned += [(example[s], None) for s, n in left.items() for _ in range(n)]
    planned.sort(key=lambda item: _order(item[0]))
    workload = list(arrived)
    best = max(
        _pack(gpu_nodes, planned, kind_of, workload, policy_name),  # the program's choice of node kinds
        _pack(gpu_nodes, [(r, None) for r in sorted(arrived, key=_order)], kind_of, workload, policy_name),
    )
    placed_milli, placed, cpu_only_left = best
    return OfflineResult(
        offline_unallocated_pct=round(100.0 * (1 - placed_milli / capacity), 3),
        bound_unallocated_pct=round(100.0 * (1 - min(bound, capacity) / capacity), 3),
        optimal=optimal, pods=len(arrived), placed=placed, cpu_only_unplaced=cpu_only_left,
        seconds=round(time.perf_counter() - started, 2))


def seed_arrivals(nodes: Sequence[Node], requests: Sequence[PodRequest], seed: int,
                  ratio: float = 1.3) -> tuple[list[PodRequest], int]:
    """The pods that arrive up to 100% in the inflation protocol's run for `seed`, and the GPU capacity (milli).

    Draws from the random generator exactly as `run_inflation` does, so these are the
    pods the online policies saw on that seed.
    """
    from bigk.sim.inflation import inflated_workload

    rng = np.random.default_rng(seed)
    gpu_nodes = [n for n in nodes if n.gpus]
    rng.permutation(len(gpu_nodes))  # the node order, as run_inflation draws it
    capacity = sum(len(n.gpus) for n in gpu_nodes) * MILLI_GPU
    seq = inflated_workload(requests, capacity, rng, ratio)
    return arrived_at_100(seq, capacity), capacity
