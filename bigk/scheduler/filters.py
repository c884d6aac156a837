"""Feasibility of a pod on every node at once, and why nodes refuse it.

`Filters` wraps a `ClusterState` for one cycle: the GPU health and freshness
masks depend only on the readings and `now`, so they are computed once per
cycle instead of once per pod. `reasons()` counts, for a pod that fits nowhere,
the first failing filter of every node, in the order kube-scheduler reports
them, so that an explanation can say e.g. "31 insufficient nvidia.com/gpu".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bigk.cluster.affinity import PodConstraints
from bigk.cluster.model import MILLI_GPU, PodRequest, Toleration
from bigk.cluster.state import ATTACH_PREFIX, ClusterState

_ANY = (Toleration(operator="Exists"),)  # tolerates every taint: isolates the other filters
_BYTE_SUM = np.uint64(0x0101010101010101)
_SHIFT = np.uint64(56)


def row_count(mask: np.ndarray) -> np.ndarray:
    """True values per row of a bool (N, G) mask, much faster than count_nonzero(axis=1).

    With 8 slots a row is one uint64 whose bytes are 0 or 1; multiplying by
    0x0101..01 sums the bytes into the top byte. Otherwise a uint8 matrix product.
    """
    n, g = mask.shape
    if g == 8 and mask.flags.c_contiguous:
        return (mask.view(np.uint64).reshape(n) * _BYTE_SUM) >> _SHIFT
    return mask.view(np.uint8) @ np.ones(g, dtype=np.uint8)


class Filters:
    """Vectorised filters over all nodes of a `ClusterState`, for one cycle's `now`."""

    def __init__(self, state: ClusterState, now: float, stale_after_s: float) -> None:
        self.state = state
        self.now = now
        self.usable = state.usable_gpus(now, stale_after_s)
        self.fresh = state.fresh_readings(now, stale_after_s)
        self.any_fresh = bool(self.fresh.any())
        self._pool_masks: dict[tuple[str, ...], np.ndarray] = {}

    def static(self, selector: dict[str, str], tolerations: Sequence[Toleration],
               gpu_models: frozenset[str], constraints: PodConstraints | None = None) -> np.ndarray:
        """Nodes whose labels, taints, GPU model and node constraints admit the pod (cached by the state)."""
        return self.state.static_mask(selector, tuple(tolerations), gpu_models, constraints)

    def pools(self, pools: tuple[str, ...]) -> np.ndarray:
        """Nodes in any of `pools`."""
        mask = self._pool_masks.get(pools)
        if mask is None:
            ids = [i for i, p in enumerate(self.state.pools) if p in pools]
            mask = np.isin(self.state.pool, ids)
            self._pool_masks[pools] = mask
        return mask

    def gpu_slots(self, req: PodRequest) -> np.ndarray:
        """Per GPU slot (N, G): can it take the pod's per-GPU share now?"""
        s = self.state
        if not req.is_fractional:
            return self.usable & (s.gpu_milli_used == 0)
        fit = self.usable & (s.gpu_milli_used <= MILLI_GPU - req.gpu_milli)
        if req.gpu_memory_mib:
            fit &= (s.gpu_mem_cap - s.gpu_mem_used) >= req.gpu_memory_mib
            if self.any_fresh:
                fit &= ~(self.fresh & (s.live_free_mem < req.gpu_memory_mib))
        return fit

    def feasible(self, req: PodRequest, static: np.ndarray) -> np.ndarray:
        """Nodes where the pod fits right now."""
        s = self.state
        ok = static & s.schedulable
        ok &= s.cpu_used <= s.cpu_cap - req.cpu_milli
        ok &= s.mem_used <= s.mem_cap - req.memory_mib
        ok &= s.pods_used < s.pods_cap
        if req.is_gpu:
            ok &= s.owner_share_ok if req.is_fractional else s.owner_whole_ok  # one owner per GPU
            ok &= row_count(self.gpu_slots(req)) >= req.gpu_count
        if req.scalars:
            ok &= s.scalars_fit(req)
        if req.host_ports and s.ports_used:
            ok &= ~s.port_conflicts(req.host_ports)
        return ok

    def fits_row(self, req: PodRequest, static: np.ndarray, i: int) -> bool:
        """`feasible(req, static)[i]`, computed on node `i` alone."""
        s = self.state
        if not (static[i] and s.schedulable[i] and s.pods_used[i] < s.pods_cap[i]
                and s.cpu_used[i] + req.cpu_milli <= s.cpu_cap[i] and s.mem_used[i] + req.memory_mib <= s.mem_cap[i]):
            return False
        owner = s.owner_ok(req)
        if owner is not None and not owner[i]:
            return False
        if (req.scalars or req.host_ports) and not s.fits_extras_row(req, i):
            return False
        return not req.is_gpu or int(np.count_nonzero(self.slots_row(req, i))) >= req.gpu_count

    def slots_row(self, req: PodRequest, i: int) -> np.ndarray:
        """`gpu_slots(req)[i]`: which GPU slots of node `i` can take the pod's per-GPU share."""
        s = self.state
        used = s.gpu_milli_used[i]
        if not req.is_fractional:
            return self.usable[i] & (used == 0)
        fit = self.usable[i] & (used <= MILLI_GPU - req.gpu_milli)
        if req.gpu_memory_mib:
            fit &= (s.gpu_mem_cap[i] - s.gpu_mem_used[i]) >= req.gpu_memory_mib
            fit &= ~(self.fresh[i] & (s.live_free_mem[i] < req.gpu_memory_mib))
        return fit

    def could_ever_fit(self, req: PodRequest, static: np.ndarray) -> np.ndarray:
        """Nodes that could hold the pod if they were empty (capacity, filters, healthy GPUs)."""
        s = self.state
        ok = static & s.schedulable & (s.cpu_cap >= req.cpu_milli) & (s.mem_cap >= req.memory_mib)
        for name, amount in req.scalars:
            ok &= s.scalar_cap(name) >= amount
        if req.is_gpu:
            ok &= s.owner_share_ok if req.is_fractional else s.owner_whole_ok  # one owner per GPU
            slots = self.usable
            if req.gpu_memory_mib:
                slots = slots & (s.gpu_mem_cap >= req.gpu_memory_mib)
            ok &= np.count_nonzero(slots, axis=1) >= req.gpu_count
        return ok

    def reasons(self, req: PodRequest, selector: dict[str, str], tolerations: Sequence[Toleration],
                constraints: PodConstraints | None = None) -> tuple[int, dict[str, int]]:
        """(nodes that fit, {reason: nodes}) using each node's first failing filter.

        A pod whose constraints carry a refusal (a kube-scheduler filter bigk does not
        implement, or a volume that is not ready) is refused by every node for that reason.
        """
        s = self.state
        n = s.size
        if constraints is not None and constraints.refusal:
            return 0, ({constraints.refusal: n} if n else {})
        reason = np.full(n, -1, dtype=np.int64)
        labels: list[str] = []

        def mark(name: str, fails: np.ndarray) -> None:
            labels.append(name)
            reason[(reason < 0) & fails] = len(labels) - 1

        mark("node cordoned", ~s.schedulable)
        mark("node selector mismatch", ~s.static_mask(selector, _ANY, frozenset()))
        mark("untolerated taint", ~s.static_mask({}, tuple(tolerations), frozenset()))
        for clause in constraints.clauses if constraints is not None else ():
            mark(clause.reason, ~s.static_mask({}, _ANY, frozenset(), PodConstraints((clause,))))
        if req.host_ports and s.ports_used:
            mark("host port conflict", s.port_conflicts(req.host_ports))
        if req.gpu_models:
            mark("GPU model mismatch", ~s.static_mask({}, _ANY, req.gpu_models))
        owner = s.owner_ok(req)
        if owner is not None:
            mark("GPUs assigned by the device plugin" if req.is_fractional else "GPUs shared by bigk", ~owner)
        mark("too many pods", s.pods_used >= s.pods_cap)
        mark("insufficient cpu", s.cpu_used > s.cpu_cap - req.cpu_milli)
        mark("insufficient memory", s.mem_used > s.mem_cap - req.memory_mib)
        for name, amount in req.scalars:
            mark("too many volumes" if name.startswith(ATTACH_PREFIX) else f"insufficient {name}",
                 s.scalar_free(name) < amount)
        if req.is_gpu:
            k = req.gpu_count
            share = s.gpu_present & (s.gpu_milli_used <= MILLI_GPU - (req.gpu_milli if req.is_fractional
                                                                          else MILLI_GPU))
            mark("insufficient nvidia.com/gpu", np.count_nonzero(share, axis=1) < k)
            if req.is_fractional and req.gpu_memory_mib:
                share &= (s.gpu_mem_cap - s.gpu_mem_used) >= req.gpu_memory_mib
                mark("insufficient GPU memory", np.count_nonzero(share, axis=1) < k)
            share &= self.usable
            mark("unhealthy GPU", np.count_nonzero(share, axis=1) < k)
            if req.is_fractional and req.gpu_memory_mib:
                share &= ~(self.fresh & (s.live_free_mem < req.gpu_memory_mib))
                mark("insufficient live GPU memory", np.count_nonzero(share, axis=1) < k)
        counts = np.bincount(reason[reason >= 0], minlength=len(labels))
        out: dict[str, int] = {}
        for i, c in enumerate(counts):
            if c:
                out[labels[i]] = out.get(labels[i], 0) + int(c)  # several clauses may share a reason
        return int(np.count_nonzero(reason < 0)), dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def describe_request(req: PodRequest) -> str:
    """A short human phrase for what one pod needs, e.g. "2 free GPUs" or "0.5 GPU + 8192 MiB GPU memory"."""
    if req.is_fractional:
        text = f"{req.gpu_milli / MILLI_GPU:g} GPU"
        if req.gpu_memory_mib:
            text += f" + {req.gpu_memory_mib} MiB GPU memory"
        return text + " free"
    if req.is_gpu:
        return f"{req.gpu_count} free GPU" + ("s" if req.gpu_count > 1 else "")
    return f"{req.cpu_milli / 1000:g} CPU + {req.memory_mib} MiB free"
