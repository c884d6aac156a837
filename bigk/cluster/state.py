"""The cluster as numpy arrays: what the scheduler searches and updates.

Every placement decision is a handful of vectorised operations over all nodes,
so the cost of a decision depends on the number of nodes, never on how many
pods are already bound. `ClusterState` is pure (no clock, no I/O): callers pass
`now` when live GPU readings matter.

Shapes: N nodes, G = the largest GPU count of any node. GPU slots a node does
not have are masked out by `gpu_present`.

Change usage and readings only through allocate/release/set_reading: they stamp
the node in a change journal (`version`, `row_version`, `rows_changed_since`)
that policies use to refresh their per-node caches without comparing arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from bigk.cluster.affinity import PodConstraints
from bigk.cluster.fit import ATTACH_PREFIX, Fit
from bigk.cluster.gpu_labels import OWNER_BIGK, OWNER_DEVICE_PLUGIN, model_allowed
from bigk.cluster.model import MILLI_GPU, HostPort, Node, PodRequest, Taint, Toleration

DEFAULT_STALE_AFTER_S = 60.0
# Per-node CSI attach limits are scalar resources named ATTACH_PREFIX + driver; a node that
# publishes no limit for a driver has no limit (kube-scheduler's NodeVolumeLimits), unlike
# other scalar resources, of which a node that does not advertise them has none.
UNLIMITED = 1 << 62


class OvercommitError(RuntimeError):
    """An allocation that would exceed a node's or a GPU's capacity."""


@dataclass(frozen=True)
class Placement:
    """Where one pod goes: a node and, for GPU pods, the GPU slots and share per GPU."""

    node: int
    gpus: tuple[int, ...] = ()
    gpu_milli: int = 0  # per GPU
    gpu_memory_mib: int = 0  # per GPU, accounted for fractional pods


class Allocation(NamedTuple):
    """What one accounted pod (or reservation, or hold) takes, and where."""

    request: PodRequest
    placement: Placement


class ClusterState:
    """Capacity and usage of every node and GPU, as arrays."""

    def __init__(self, nodes: Sequence[Node]) -> None:
        self.nodes: list[Node] = list(nodes)
        n = len(self.nodes)
        g = max((len(node.gpus) for node in self.nodes), default=0)
        g = max(g, 1)
        self.index: dict[str, int] = {node.name: i for i, node in enumerate(self.nodes)}
        self.cpu_cap = np.array([nd.cpu_milli for nd in self.nodes], dtype=np.int64)
        self.mem_cap = np.array([nd.memory_mib for nd in self.nodes], dtype=np.int64)
        self.pods_cap = np.array([nd.pods for nd in self.nodes], dtype=np.int64)
        self.cpu_used = np.zeros(n, dtype=np.int64)
        self.mem_used = np.zeros(n, dtype=np.int64)
        self.pods_used = np.zeros(n, dtype=np.int64)
        self.gpu_count = np.array([len(nd.gpus) for nd in self.nodes], dtype=np.int64)
        self.gpu_present = np.arange(g)[None, :] < self.gpu_count[:, None]
        self.gpu_milli_used = np.zeros((n, g), dtype=np.int64)
        self.gpu_mem_cap = np.zeros((n, g), dtype=np.int64)
        self.gpu_mem_used = np.zeros((n, g), dtype=np.int64)
        self.models: list[str] = sorted({gpu.model for nd in self.nodes for gpu in nd.gpus})
        model_id = {m: i for i, m in enumerate(self.models)}
        self.gpu_model = np.full(n, -1, dtype=np.int64)
        for i, nd in enumerate(self.nodes):
            for gpu in nd.gpus:
                self.gpu_mem_cap[i, gpu.index] = gpu.memory_mib
            if nd.gpus:
                self.gpu_model[i] = model_id[nd.gpus[0].model]
        self.pools: list[str] = sorted({nd.pool for nd in self.nodes})
        pool_id = {p: i for i, p in enumerate(self.pools)}
        self.pool = np.array([pool_id[nd.pool] for nd in self.nodes], dtype=np.int64)
        self.schedulable = np.array([not nd.unschedulable for nd in self.nodes], dtype=bool)
        # One owner per GPU (docs/gpus.md): whole-GPU pods go where the device plugin assigns, shares where bigk does.
        self.owner_whole_ok = np.array([nd.gpu_owner != OWNER_BIGK for nd in self.nodes], dtype=bool)
        self.owner_share_ok = np.array([nd.gpu_owner != OWNER_DEVICE_PLUGIN for nd in self.nodes], dtype=bool)
        self._gpu_milli_cap = np.where(self.gpu_present, MILLI_GPU, 0)  # 0 on absent slots
        # How old a GPU reading may be and still count; the scheduler sets its configured value.
        self.stale_after_s = DEFAULT_STALE_AFTER_S
        self._usable_cache: dict[tuple[float | None, float], np.ndarray] = {}  # cleared by set_reading
        self._fits: dict[tuple[float | None, float], Fit] = {}  # cleared with _usable_cache
        # Live readings; NaN = unknown. Health defaults to healthy until told otherwise.
        self.gpu_healthy = self.gpu_present.copy()
        self.live_free_mem = np.full((n, g), np.nan)
        self.live_util = np.full((n, g), np.nan)
        self.live_temp = np.full((n, g), np.nan)
        self.live_at = np.full((n, g), -np.inf)
        # Change journal: allocate/release/set_reading stamp the node's row with a new version, so
        # per-node caches can find the rows changed since they last looked without comparing arrays.
        self.version = 0
        self.row_version = np.zeros(n, dtype=np.int64)
        for i, nd in enumerate(self.nodes):
            for gpu in nd.gpus:
                if gpu.reading is not None:
                    self.set_reading(i, gpu.index, gpu.reading.free_memory_mib, gpu.reading.utilization_pct,
                                     gpu.reading.temperature_c, gpu.reading.healthy, gpu.reading.observed_at)
        self._mask_cache: dict[tuple[object, ...], np.ndarray] = {}
        self.allocations: dict[str, Allocation] = {}
        # Other resources and host ports: only pods that ask for them pay for them.
        self.scalar_used: dict[str, np.ndarray] = {}
        self._scalar_cap: dict[str, np.ndarray] = {}
        self.ports_used: dict[int, list[HostPort]] = {}  # node -> host ports of its pods
        # PreferNoSchedule taints are a preference: nodes a pod's tolerations leave them on are used last.
        self.soft_taints = any(t.effect == "PreferNoSchedule" for nd in self.nodes for t in nd.taints)

    # ---- derived views -------------------------------------------------------------
    @property
    def size(self) -> int:
        return len(self.nodes)

    @property
    def cpu_free(self) -> np.ndarray:
        return self.cpu_cap - self.cpu_used

    @property
    def mem_free(self) -> np.ndarray:
        return self.mem_cap - self.mem_used

    @property
    def gpu_milli_free(self) -> np.ndarray:
        """Free milli-GPU per GPU slot; 0 for slots a node does not have."""
        return self._gpu_milli_cap - self.gpu_milli_used  # allocate() never touches absent slots

    def has_gpus(self) -> np.ndarray:
        return self.gpu_count > 0

    def owner_ok(self, req: PodRequest) -> np.ndarray | None:
        """Nodes whose GPU owner admits this kind of GPU pod; None for pods without GPUs (every node)."""
        if not req.is_gpu:
            return None
        return self.owner_share_ok if req.is_fractional else self.owner_whole_ok

    # ---- live readings --------------------------------------------------------------
    def set_reading(self, node: int, gpu: int, free_memory_mib: float, utilization_pct: float,
                    temperature_c: float, healthy: bool, observed_at: float) -> None:
        """Record a live GPU sample (from the agent or DCGM)."""
        self.live_free_mem[node, gpu] = free_memory_mib
        self.live_util[node, gpu] = utilization_pct
        self.live_temp[node, gpu] = temperature_c
        self.live_at[node, gpu] = observed_at
        self.gpu_healthy[node, gpu] = bool(healthy) and bool(self.gpu_present[node, gpu])
        self._usable_cache.clear()
        self._fits.clear()
        self._touch(node)

    def _touch(self, node: int) -> None:
        """Record that `node`'s usage or readings changed (see `rows_changed_since`)."""
        self.version += 1
        self.row_version[node] = self.version

    def rows_changed_since(self, version: int) -> np.ndarray:
        """Nodes whose usage or readings changed through allocate/release/set_reading after `version`."""
        return np.flatnonzero(self.row_version > version)

    def fresh_readings(self, now: float | None, stale_after_s: float | None = None) -> np.ndarray:
        """Mask of GPU slots whose live reading is recent enough to trust (by default `self.stale_after_s`)."""
        if now is None:
            return np.zeros_like(self.gpu_present)
        return (now - self.live_at) <= (self.stale_after_s if stale_after_s is None else stale_after_s)

    def usable_gpus(self, now: float | None = None, stale_after_s: float | None = None) -> np.ndarray:
        """GPU slots that exist and are not known to be unhealthy.

        A stale reading is treated as unknown, so a GPU last reported unhealthy
        long ago is judged by accounting alone again.
        """
        if stale_after_s is None:
            stale_after_s = self.stale_after_s
        key = (now, stale_after_s)
        cached = self._usable_cache.get(key)
        if cached is not None:
            return cached  # read-only: policies call this many times per decision with the same `now`
        # Without a clock (the simulator) every reading counts; with one, only fresh readings do.
        known_bad = ~self.gpu_healthy if now is None else ~self.gpu_healthy & self.fresh_readings(now, stale_after_s)
        usable = self.gpu_present & ~known_bad
        usable.flags.writeable = False
        if len(self._usable_cache) > 8:
            self._usable_cache.clear()
        self._usable_cache[key] = usable
        return usable

    # ---- filters ---------------------------------------------------------------------
    def static_mask(self, node_selector: dict[str, str], tolerations: Sequence[Toleration],
                    gpu_models: frozenset[str], constraints: PodConstraints | None = None) -> np.ndarray:
        """Nodes whose labels, taints, GPU model and node constraints admit a pod (cached per shape)."""
        key = (tuple(sorted(node_selector.items())), tuple(tolerations), gpu_models, constraints)
        cached = self._mask_cache.get(key)
        if cached is not None:
            return cached
        ok = np.ones(self.size, dtype=bool)
        for i, node in enumerate(self.nodes):
            selected = all(node.labels.get(k) == v for k, v in node_selector.items())
            ok[i] = selected and _tolerates_all(node.taints, tolerations) and (
                constraints is None or constraints.admits(node.name, node.labels))
        if gpu_models:
            allowed = np.array([model_allowed(m, gpu_models) for m in self.models] + [False], dtype=bool)
            ok &= allowed[self.gpu_model]  # -1 indexes the trailing False: no GPU, no model
        self._mask_cache[key] = ok
        return ok

    def preferred_mask(self, tolerations: Sequence[Toleration]) -> np.ndarray:
        """Nodes without a PreferNoSchedule taint these tolerations leave untolerated (cached)."""
        key = ("~prefer", tuple(tolerations))
        cached = self._mask_cache.get(key)
        if cached is None:
            cached = np.array([all(t.effect != "PreferNoSchedule" or any(x.tolerates(t) for x in tolerations)
                                   for t in nd.taints) for nd in self.nodes], dtype=bool)
            self._mask_cache[key] = cached
        return cached

    # ---- other resources and host ports ---------------------------------------------------
    def scalar_cap(self, name: str) -> np.ndarray:
        """Allocatable `name` per node (0 where not advertised; no limit for CSI attach limits)."""
        cap = self._scalar_cap.get(name)
        if cap is None:
            default = UNLIMITED if name.startswith(ATTACH_PREFIX) else 0
            cap = np.array([nd.scalars.get(name, default) for nd in self.nodes], dtype=np.int64)
            self._scalar_cap[name] = cap
        return cap

    def scalar_free(self, name: str) -> np.ndarray:
        used = self.scalar_used.get(name)
        return self.scalar_cap(name) if used is None else self.scalar_cap(name) - used

    def scalars_fit(self, req: PodRequest) -> np.ndarray:
        """Nodes with room for every scalar request of the pod."""
        ok = np.ones(self.size, dtype=bool)
        for name, amount in req.scalars:
            ok &= self.scalar_free(name) >= amount
        return ok

    def port_conflicts(self, ports: Sequence[HostPort]) -> np.ndarray:
        """Nodes where a pod already holds a host port that conflicts with one of `ports`."""
        bad = np.zeros(self.size, dtype=bool)
        for node, held in self.ports_used.items():
            bad[node] = any(p.conflicts(h) for p in ports for h in held)
        return bad

    def fits_extras_row(self, req: PodRequest, i: int) -> bool:
        """Scalar resources and host ports of `req` on node `i` alone."""
        for name, amount in req.scalars:
            if self.scalar_free(name)[i] < amount:
                return False
        held = self.ports_used.get(i)
        return not (held and any(p.conflicts(h) for p in req.host_ports for h in held))

    def invalidate_masks(self) -> None:
        """Forget cached label/taint masks (call after a node's labels or taints change)."""
        self._mask_cache.clear()

    def fit(self, now: float | None) -> Fit:
        """The fit rule at `now` with the configured staleness (one per moment, until a reading changes)."""
        key = (now, self.stale_after_s)
        fit = self._fits.get(key)
        if fit is None:
            if len(self._fits) > 8:
                self._fits.clear()
            fit = self._fits[key] = Fit(self, now)
        return fit

    def gpu_slot_fit(self, req: PodRequest, now: float | None = None, node: int | None = None) -> np.ndarray:
        """Per GPU slot: can this slot take the pod's per-GPU share? Shape (N, G), or (G,) for one `node`."""
        return self.fit(now).slots(req, node)

    def feasible(self, req: PodRequest, base_mask: np.ndarray | None = None, now: float | None = None) -> np.ndarray:
        """Nodes where the pod fits right now (resources, GPUs, cordon, and `base_mask`)."""
        return self.fit(now).nodes(req, base_mask)

    # ---- bookkeeping ----------------------------------------------------------------
    def allocate(self, key: str, req: PodRequest, placement: Placement) -> None:
        """Account a pod on a node; raises OvercommitError rather than overcommit."""
        if key in self.allocations:
            raise OvercommitError(f"pod {key} is already placed")
        i = placement.node
        if self.cpu_used[i] + req.cpu_milli > self.cpu_cap[i] or self.mem_used[i] + req.memory_mib > self.mem_cap[i]:
            raise OvercommitError(f"pod {key} does not fit CPU/memory of {self.nodes[i].name}")
        if self.pods_used[i] >= self.pods_cap[i]:
            raise OvercommitError(f"pod {key}: {self.nodes[i].name} is at its pod limit")
        if (req.scalars or req.host_ports) and not self.fits_extras_row(req, i):
            raise OvercommitError(f"pod {key}: {self.nodes[i].name} lacks a resource or a host port it asks for")
        if req.is_gpu:
            if len(placement.gpus) != req.gpu_count or len(set(placement.gpus)) != req.gpu_count:
                raise OvercommitError(f"pod {key} needs {req.gpu_count} distinct GPUs, got {placement.gpus}")
            for g in placement.gpus:
                if not self.gpu_present[i, g]:
                    raise OvercommitError(f"pod {key}: {self.nodes[i].name} has no GPU {g}")
                if self.gpu_milli_used[i, g] + req.gpu_milli > MILLI_GPU:
                    raise OvercommitError(f"pod {key}: GPU {g} of {self.nodes[i].name} is full")
                if self.gpu_mem_used[i, g] + placement.gpu_memory_mib > self.gpu_mem_cap[i, g]:
                    raise OvercommitError(f"pod {key}: GPU {g} of {self.nodes[i].name} lacks memory")
        self.cpu_used[i] += req.cpu_milli
        self.mem_used[i] += req.memory_mib
        self.pods_used[i] += 1
        for g in placement.gpus:
            self.gpu_milli_used[i, g] += req.gpu_milli
            self.gpu_mem_used[i, g] += placement.gpu_memory_mib
        if req.scalars or req.host_ports:
            self._account_extras(i, req, 1)
        self.allocations[key] = Allocation(req, placement)
        self._touch(i)

    def _account_extras(self, i: int, req: PodRequest, sign: int) -> None:
        for name, amount in req.scalars:
            used = self.scalar_used.get(name)
            if used is None:
                used = self.scalar_used[name] = np.zeros(self.size, dtype=np.int64)
            used[i] += sign * amount
        if req.host_ports:
            held = self.ports_used.setdefault(i, [])
            for port in req.host_ports:
                if sign > 0:
                    held.append(port)
                else:
                    held.remove(port)
            if not held:
                del self.ports_used[i]

    def release(self, key: str) -> Placement | None:
        """Give back what a pod held; unknown keys are ignored (idempotent)."""
        entry = self.allocations.pop(key, None)
        if entry is None:
            return None
        req, placement = entry
        i = placement.node
        self.cpu_used[i] -= req.cpu_milli
        self.mem_used[i] -= req.memory_mib
        self.pods_used[i] -= 1
        for g in placement.gpus:
            self.gpu_milli_used[i, g] -= req.gpu_milli
            self.gpu_mem_used[i, g] -= placement.gpu_memory_mib
        if req.scalars or req.host_ports:
            self._account_extras(i, req, -1)
        self._touch(i)
        return placement

    def default_gpus(self, node: int, req: PodRequest, now: float | None = None) -> tuple[int, ...] | None:
        """Pick GPU slots on a node: best fit (least room left) for a fraction, lowest indices for whole GPUs."""
        if not req.is_gpu:
            return ()
        fit = self.gpu_slot_fit(req, now, node=node)
        slots = np.flatnonzero(fit)
        if len(slots) < req.gpu_count:
            return None
        if req.is_fractional:
            room = MILLI_GPU - self.gpu_milli_used[node, slots]
            return (int(slots[int(np.argmin(room))]),)
        return tuple(int(s) for s in slots[: req.gpu_count])

    def placement_for(self, node: int, req: PodRequest, gpus: tuple[int, ...]) -> Placement:
        return Placement(node, gpus, req.gpu_milli if req.is_gpu else 0,
                         req.gpu_memory_mib if req.is_fractional else 0)

    def snapshot(self) -> ClusterState:
        """An independent copy for what-if planning (gang trials, preemption)."""
        clone = object.__new__(ClusterState)
        clone.__dict__.update(self.__dict__)
        for name, value in self.__dict__.items():
            if isinstance(value, np.ndarray):
                setattr(clone, name, value.copy())
        clone.allocations = dict(self.allocations)
        clone.scalar_used = {name: used.copy() for name, used in self.scalar_used.items()}
        clone.ports_used = {node: list(held) for node, held in self.ports_used.items()}
        clone._usable_cache = dict(self._usable_cache)  # read-only arrays; the clone's set_reading clears its own
        clone._fits = {}  # a Fit reads its state's usage
        clone._mask_cache = self._mask_cache  # masks depend on nodes only, safe to share
        return clone


def _tolerates_all(taints: Sequence[Taint], tolerations: Sequence[Toleration]) -> bool:
    for taint in taints:
        if taint.effect == "PreferNoSchedule":
            continue
        if not any(t.tolerates(taint) for t in tolerations):
            return False
    return True
