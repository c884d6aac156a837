"""`bigk`: bigk's default placement policy, fragmentation-aware and live-GPU-aware.

It scores a placement by how much it reduces the GPU capacity that future pods
will not be able to use, in milli-GPU, as the sum of three estimates (see
`frag.py`):

- FGD's one-step fragmentation (does one more pod of each typical kind fit?),
  weighted 4x;
- fill fragmentation (how many pods of each typical kind would still fit,
  limited by free GPU shares *and* free CPU);
- CPU starvation: idle GPU that the node's free CPU cannot feed at the
  workload's CPU-per-GPU ratio, weighted 3x. This keeps CPU-heavy and
  CPU-only pods on CPU-rich nodes, so CPU-poor 8-GPU nodes keep CPU for their GPUs.

When part of the workload may run only on some GPU models, a pod without such a
constraint pays for using a model in proportion to how much constrained demand
that model must serve and how full it already is, so it leaves scarce models to
the pods that need them. A GPU pod pays for the GPU it takes; a CPU-only pod
only for the GPUs its CPU would leave unfed there (spare CPU of a contended
model's nodes is free to use). Pods allowed several models (`A|B|C`) count on
each in proportion to the capacity it has left after single-model demand.
Likewise a placement pays for taking away one of the few nodes that can still
host a large multi-GPU pod of the workload (GPUs, CPU and memory together):
the fewer such nodes remain, the more it costs.

Scores are rounded to 0.1 GPU; within a step the node left with less free GPU
wins (packing), then the lowest node index (a fixed order concentrates load,
which keeps whole nodes free for large pods).

Operational rules: CPU-only pods go to nodes without GPUs while any of those
has room (tightest CPU fit first). Unhealthy GPUs, and GPUs a fresh reading
says lack memory, are never chosen (the state's filters) and do not count as
free capacity here; stale readings count as unknown. Among GPUs of a node that
score the same, a GPU share prefers the cooler, less utilised one by its fresh
reading.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bigk.cluster.gpu_labels import model_allowed, model_matches
from bigk.cluster.model import MILLI_GPU, PodRequest
from bigk.cluster.state import ClusterState, Placement
from bigk.scheduler.policies._common import MAX_SPEC_CPU_MILLI, MAX_SPEC_GPU_MILLI
from bigk.scheduler.policies.base import register
from bigk.scheduler.policies.fgd import FragAwarePolicy, shape_cache
from bigk.scheduler.policies.frag import (
    FillModel,
    FragModel,
    Shape,
    cpu_per_gpu,
    cpu_starved_gpu,
    typical_pods,
)
from bigk.scheduler.policies.nodeview import NodeView, ViewCache
from bigk.scheduler.policies.rows import row_max
from bigk.scheduler.policies.terms import NodeTerms

ONE_STEP_WEIGHT = 4.0
CPU_STARVATION_WEIGHT = 3.0
STEP_MILLI = 100.0  # score resolution: 0.1 GPU
LIVE_WEIGHT = 0.05  # at most this share of a step, for cooler / idler GPUs
MODEL_PRESSURE_WEIGHT = 10.0
LAST_NODES_WEIGHT = 0.5  # x the large pod's milli-GPU, divided by the nodes that can still host it
MIN_LAST_NODES_STEPS = 0.02  # ignore large shapes that still have plenty of hosts


class HostCounter:
    """Which nodes can host each large shape, and how many, updated only for the view's refreshed rows."""

    def __init__(self) -> None:
        self._cache = ViewCache()
        self.can = np.zeros((0, 0), dtype=bool)
        self.any = np.zeros(0, dtype=bool)  # per node: can host at least one large shape
        self.hosts = np.zeros(0, dtype=np.int64)

    def update(self, view: NodeView, compute: Callable[[np.ndarray], np.ndarray]) -> None:
        fresh = self._cache.get_rows(view)
        if fresh is None:
            self.can = compute(np.arange(view.n))
            self.any = np.asarray(self.can.any(axis=1))
            self.hosts = self.can.sum(axis=0)
            return
        if len(fresh) == 0:
            return
        new = compute(fresh)
        self.hosts = self.hosts + (new.sum(axis=0) - self.can[fresh].sum(axis=0))
        self.can[fresh] = new
        self.any[fresh] = new.any(axis=1)


@register("bigk")
class BigkPolicy(FragAwarePolicy):
    """Least future-unusable GPU first; see the module docstring."""

    name = "bigk"

    def __init__(self) -> None:
        super().__init__()
        self.fill = FillModel([])
        self.ratio = 0.0
        self.constrained: dict[frozenset[str], float] = {}  # allowed models -> milli-GPU asked by such pods
        self._need: dict[tuple[tuple[str, ...], bytes], np.ndarray] = {}
        self.large: list[PodRequest] = []  # distinct multi-GPU shapes of the workload
        self._large_shape = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
        self._large_access: dict[tuple[str, ...], np.ndarray] = {}
        self._hosts = HostCounter()
        self.view = NodeView()
        self._scores: dict[tuple[Shape, tuple[str, ...]], ViewCache] = {}
        self._terms: dict[tuple[str, ...], NodeTerms] = {}  # per GPU model list, for self.model and self.ratio

    def observe_workload(self, requests: list[PodRequest]) -> None:
        pods = typical_pods(requests)
        ratio = self.ratio
        self._stats(requests)
        self._observed = True
        if pods != self.model.pods or abs(self.ratio - ratio) > 1e-9 * max(ratio, 1.0):
            self.model, self.fill = FragModel(pods), FillModel(pods)
            self._caches.clear()  # (model pressure is computed per decision, never cached)
            self._scores.clear()
        self._terms.clear()

    def _learn(self, req: PodRequest) -> None:
        was = self.model
        super()._learn(req)
        if self.model is not was:
            self.fill = FillModel(self.model.pods)
            self._scores.clear()
            self._stats(self._online)
            self._terms.clear()

    def _stats(self, requests: list[PodRequest]) -> None:
        self.large = sorted({PodRequest(r.cpu_milli, r.memory_mib, r.gpu_count, MILLI_GPU, 0, r.gpu_models)
                             for r in requests if r.gpu_count > 1},
                            key=lambda r: (r.gpu_count, r.cpu_milli, r.memory_mib, sorted(r.gpu_models)))
        self._large_shape = (np.array([r.cpu_milli for r in self.large], dtype=np.int64),
                             np.array([r.memory_mib for r in self.large], dtype=np.int64),
                             np.array([r.gpu_count for r in self.large], dtype=np.int64))
        self._large_access = {}
        self._hosts = HostCounter()
        self.ratio = cpu_per_gpu(requests)
        self.constrained = {}
        self._need = {}
        for r in requests:
            if r.is_gpu and r.gpu_models:
                self.constrained[r.gpu_models] = self.constrained.get(r.gpu_models, 0.0) + r.total_gpu_milli

    def last_nodes(self, state: ClusterState, req: PodRequest, best: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The cost, in score steps, of taking away scarce hosts of large pods.

        `best` holds every node's score so far (-inf where the pod cannot go); only nodes that
        the cost could still let win are evaluated. Returns those nodes, the cost when `req`
        takes whole or fresh GPUs there, and the cost when it shares a used GPU.
        Expects `self.view` in step with `state`.
        """
        if not self.large:
            return None
        view = self.view
        key = tuple(state.models)
        access = self._large_access.get(key)
        if access is None:
            access = self._large_access[key] = np.array(
                [[model_allowed(m, r.gpu_models) for r in self.large] for m in state.models]
                + [[False] * len(self.large)], dtype=bool)
        cpu, mem, gpus = self._large_shape
        full = view.full

        def compute(rows: np.ndarray) -> np.ndarray:
            return (access[view.gpu_model[rows]] & (view.cpu_free[rows, None] >= cpu)
                    & (view.mem_free[rows, None] >= mem) & (full[rows, None] >= gpus))

        hosts = self._hosts
        hosts.update(view, compute)
        can = hosts.can
        weight = LAST_NODES_WEIGHT * gpus * MILLI_GPU / np.maximum(hosts.hosts, 1) / STEP_MILLI
        active = np.flatnonzero(weight >= MIN_LAST_NODES_STEPS)
        if len(active) == 0:
            return None
        if len(active) < len(weight):
            cpu, mem, gpus, weight = cpu[active], mem[active], gpus[active], weight[active]
        # Only nodes that can host a large shape pay, at most weight.sum(): a node scoring below
        # best.max() - weight.sum(), or below a node that pays nothing, cannot win either way.
        floor = best.max() - weight.sum()
        if not hosts.any.all():
            floor = max(floor, float(np.where(hosts.any, -np.inf, best).max()))
        rows = np.flatnonzero(hosts.any & (best >= floor))
        if len(rows) == 0:
            return None
        c = can[rows] if len(active) == can.shape[1] else can[np.ix_(rows, active)]
        ok = view.cpu_free[rows, None] - req.cpu_milli >= cpu
        ok &= view.mem_free[rows, None] - req.memory_mib >= mem
        fresh = req.gpu_count if req.is_gpu else 0
        free = full[rows, None]
        lost_fresh = (c & ~(ok & ((free - fresh) >= gpus))) @ weight
        lost_shared = (c & ~(ok & (free >= gpus))) @ weight
        return rows, lost_fresh, lost_shared

    def constrained_need(self, models: list[str], cap: np.ndarray) -> np.ndarray:
        """Per GPU model: the constrained demand it must serve, as a share of its capacity.

        Pods restricted to one model count there in full. Pods with alternatives (`A|B|C`) are
        spread over their models in proportion to the capacity those have left after the
        single-model demand, so an alternative that includes a large model does not make a
        small, already contended one look busier than it will be.
        """
        key = (tuple(models), cap.tobytes())
        need = self._need.get(key)
        if need is not None:
            return need
        demand = np.zeros(len(models))
        split: list[tuple[np.ndarray, float]] = []
        for wanted, milli in self.constrained.items():
            allowed = np.array([any(model_matches(m, w) for w in wanted) for m in models], dtype=bool)
            if allowed.sum() == 1:
                demand[allowed] += milli
            elif allowed.any():
                split.append((allowed, milli))
        spare = np.maximum(cap - demand, 0.0)
        for allowed, milli in split:
            weight = np.where(allowed, spare, 0.0)
            if weight.sum() <= 0:
                weight = np.where(allowed, cap, 0.0)
            demand += milli * weight / max(weight.sum(), 1.0)
        need = self._need[key] = demand / np.maximum(cap, 1.0)
        return need

    def model_pressure(self, state: ClusterState, req: PodRequest) -> np.ndarray | None:
        """Per node, in score steps: the cost of an unconstrained pod using that node's GPU model.

        Expects `self.view` in step with `state`.
        """
        if not self.constrained or req.gpu_models:
            return None
        cap = self.view.model_cap
        free = self.view.model_free.astype(np.float64)
        need = self.constrained_need(state.models, cap)
        fill = 1.0 - free / np.maximum(cap, 1.0)
        per_model = np.append(MODEL_PRESSURE_WEIGHT * need * fill / STEP_MILLI, 0.0)[self.view.gpu_model]
        if req.is_gpu:
            return per_model * req.total_gpu_milli
        # A CPU-only pod takes no GPU: it costs only the GPUs its CPU would leave unfed on that node.
        view = self.view
        starved = (cpu_starved_gpu(view.cpu_free - req.cpu_milli, view.idle, self.ratio)
                   - cpu_starved_gpu(view.cpu_free, view.idle, self.ratio))
        return per_model * starved

    def scores(self, state: ClusterState, req: PodRequest, now: float | None) -> np.ndarray:
        """Score per node (N,), or per node and GPU (N, G) for a GPU share; higher is better."""
        self.view.sync(state, now)
        view = self.view
        ratio = self.ratio
        terms = self._node_terms(state.models)
        terms.update(view)
        model, fill = self.model, self.fill

        def compute(rows: np.ndarray) -> np.ndarray:
            c = view.cpu_free[rows]
            if not req.is_fractional:
                gain = terms.whole_gain(req, c, rows)
                packed = 1.0 - (terms.total[rows] - req.total_gpu_milli) / MAX_SPEC_GPU_MILLI  # 1 = node left full
                return np.rint(gain / STEP_MILLI) + 0.9 * np.minimum(np.maximum(packed, 0.0), 1.0)
            total, access, g = terms.total[rows], terms.access[rows], view.left[rows]
            a1 = model.after(req, c, g, total, terms.fits[rows], terms.small[rows], access)
            a2 = fill.after_copies(req, c, g, total, terms.copies[rows], access)
            a3 = cpu_starved_gpu((c - req.cpu_milli)[:, None], (total - req.gpu_milli)[:, None], ratio)
            gain = terms.before[rows][:, None] - (ONE_STEP_WEIGHT * a1 + a2 + CPU_STARVATION_WEIGHT * a3)
            packed = 1.0 - (total - req.total_gpu_milli) / MAX_SPEC_GPU_MILLI
            return np.rint(gain / STEP_MILLI) + 0.9 * np.minimum(np.maximum(packed, 0.0), 1.0)[:, None]

        return shape_cache(self._scores, req, state, ViewCache).get(view, compute)

    def _node_terms(self, models: list[str]) -> NodeTerms:
        key = tuple(models)
        terms = self._terms.get(key)
        if terms is None:
            weights = (ONE_STEP_WEIGHT, 1.0, CPU_STARVATION_WEIGHT)
            terms = self._terms[key] = NodeTerms(self.model, self.fill, models, self.ratio, weights)
        return terms

    def select(self, state: ClusterState, req: PodRequest, feasible: np.ndarray,
               now: float | None = None) -> Placement | None:
        self._learn(req)
        if not req.is_gpu:
            cpu_nodes = feasible & (state.gpu_count == 0)
            if cpu_nodes.any():
                return self._cpu_node(state, req, cpu_nodes)
        if not feasible.any():
            return None
        scores = self.scores(state, req, now)  # also brings self.view in step
        view = self.view
        pressure = self.model_pressure(state, req)
        if pressure is not None:
            scores = scores - (pressure[:, None] if scores.ndim == 2 else pressure)
        if req.is_fractional:
            fit = state.gpu_slot_fit(req, now) & feasible[:, None]
            cool = _coolness(state, now) if view.any_fresh(now, state.stale_after_s) else None
            shown = scores if cool is None else scores + LIVE_WEIGHT * cool
            per_gpu = np.where(fit, shown, -np.inf)
            best = row_max(per_gpu)
            lost = self.last_nodes(state, req, best)
            if lost is not None:
                rows, fresh, shared = lost
                per_gpu[rows] -= np.where(view.left[rows] >= MILLI_GPU, fresh[:, None], shared[:, None])
                best[rows] = row_max(per_gpu[rows])
            pick = int(np.argmax(best))  # the chooser's rule (first best), on scores already -inf where unfit
            if best[pick] == -np.inf:
                return None
            return state.placement_for(pick, req, (int(np.argmax(per_gpu[pick])),))
        shown = np.where(feasible, scores, -np.inf)
        lost = self.last_nodes(state, req, shown)
        if lost is not None:
            shown[lost[0]] -= lost[1]
        node = int(np.argmax(shown))  # feasible.any(), and shown is -inf elsewhere
        if not req.is_gpu:
            return state.placement_for(node, req, ())
        slots = np.flatnonzero(state.gpu_slot_fit(req, now, node=node))
        if len(slots) < req.gpu_count:
            return None
        cool = _coolness(state, now) if view.any_fresh(now, state.stale_after_s) else None
        if cool is not None:  # coolest first; otherwise the lowest indices
            slots = slots[np.argsort(-cool[node, slots], kind="stable")]
        return state.placement_for(node, req, tuple(sorted(int(s) for s in slots[: req.gpu_count])))

    def _cpu_node(self, state: ClusterState, req: PodRequest, mask: np.ndarray) -> Placement | None:
        """Tightest CPU node (CPU and memory left, normalised), lowest index on ties."""
        nodes = np.flatnonzero(mask)  # scored alone: CPU nodes are a small part of a GPU cluster
        if len(nodes) == 0:
            return None
        cpu_left = (state.cpu_cap[nodes] - state.cpu_used[nodes] - req.cpu_milli) / MAX_SPEC_CPU_MILLI
        mem_cap = state.mem_cap[nodes]
        mem_left = (mem_cap - state.mem_used[nodes] - req.memory_mib) / np.maximum(mem_cap, 1)
        pick = int(np.argmax(-(cpu_left + mem_left)))  # the chooser's rule: first best
        return state.placement_for(int(nodes[pick]), req, ())


def _coolness(state: ClusterState, now: float | None) -> np.ndarray | None:
    """Per GPU slot in [0, 1]: 1 = idle and cool by a fresh reading, 0.5 when unknown; None if nothing is fresh."""
    if now is None:
        return None
    fresh = state.fresh_readings(now)
    if not fresh.any():
        return None
    util = np.where(fresh & ~np.isnan(state.live_util), state.live_util, 50.0)
    temp = np.where(fresh & ~np.isnan(state.live_temp), state.live_temp, 60.0)
    cool = 0.7 * (1.0 - np.clip(util, 0, 100) / 100.0) + 0.3 * (1.0 - np.clip((temp - 30.0) / 60.0, 0, 1))
    return np.asarray(cool, dtype=np.float64)


