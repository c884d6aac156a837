"""The fit rule: does a pod fit a node, written once for every caller.

kube-scheduler, Volcano and KAI-Scheduler judge a pod by one ordered list of
filters handed through the scheduling session; bigk does the same. `Fit` holds
that list over a `ClusterState` at one moment (`now` and the state's configured
`stale_after_s` decide which GPU readings count) and answers every question the
scheduler, the policies, preemption, the dispatcher and the spec check ask:

- `slots`: which GPU slots can take the pod's per-GPU share (policies pick among them);
- `nodes`: where the pod fits now (the cycle's feasibility, `ClusterState.feasible`);
- `nodes(..., usage=...)`: where it would fit under another usage — an empty cluster
  (`could_ever_fit`, `bigk validate`) or one with preemption victims gone;
- `reasons`: for every node, the label of its first failing filter, from the same terms.

Each filter is a (label, mask) term; `nodes` is their conjunction and `reasons`
reports the first that fails, so an explanation can never disagree with a decision.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from bigk.cluster.affinity import PodConstraints
from bigk.cluster.model import MILLI_GPU, PodRequest, Toleration

if TYPE_CHECKING:
    from bigk.cluster.state import ClusterState

ATTACH_PREFIX = "attachable-volumes-csi-"
ANY_TAINT = (Toleration(operator="Exists"),)  # tolerates every taint: isolates the other filters
_BYTE_SUM = np.uint64(0x0101010101010101)
_SHIFT = np.uint64(56)
Rows = int | slice
Term = tuple[str, np.ndarray]  # a mask over nodes (or slots); a bare bool for one node's host ports


def row_count(mask: np.ndarray) -> np.ndarray:
    """True values per row of a bool (N, G) mask, much faster than count_nonzero(axis=1).

    With 8 slots a row is one uint64 whose bytes are 0 or 1; multiplying by
    0x0101..01 sums the bytes into the top byte. Otherwise a uint8 matrix product.
    """
    n, g = mask.shape
    if g == 8 and mask.flags.c_contiguous:
        return (mask.view(np.uint64).reshape(n) * _BYTE_SUM) >> _SHIFT
    return mask.view(np.uint8) @ np.ones(g, dtype=np.uint8)


class NodeUsage(NamedTuple):
    """What is taken on every node, as the fit rule reads it.

    `held_extras` says whether scalar resources and host ports already held count:
    false for an empty cluster and for a trial with preemption victims gone (their
    scalars and ports leave with them; the exact trial after eviction decides).
    """

    cpu: np.ndarray
    memory: np.ndarray
    pods: np.ndarray
    gpu_milli: np.ndarray
    gpu_memory: np.ndarray
    held_extras: bool = True


class Fit:
    """The fit rule over `state` at `now` (GPU health and freshness computed once)."""

    def __init__(self, state: ClusterState, now: float | None, stale_after_s: float | None = None) -> None:
        self.state = state
        self.now = now
        stale = state.stale_after_s if stale_after_s is None else stale_after_s
        self.stale_after_s = stale
        self.usable = state.usable_gpus(now, stale)
        self.fresh = state.fresh_readings(now, stale)
        self.any_fresh = bool(self.fresh.any())
        self._empty: NodeUsage | None = None

    # ---- usage -----------------------------------------------------------------------------
    def current(self) -> NodeUsage:
        s = self.state
        return NodeUsage(s.cpu_used, s.mem_used, s.pods_used, s.gpu_milli_used, s.gpu_mem_used)

    def empty(self) -> NodeUsage:
        """Nothing taken anywhere: what could fit if the nodes were empty."""
        if self._empty is None:
            s = self.state
            self._empty = NodeUsage(np.zeros_like(s.cpu_used), np.zeros_like(s.mem_used), np.zeros_like(s.pods_used),
                                    np.zeros_like(s.gpu_milli_used), np.zeros_like(s.gpu_mem_used), False)
        return self._empty

    # ---- the terms ---------------------------------------------------------------------------
    def slot_terms(self, req: PodRequest, rows: Rows = slice(None), usage: NodeUsage | None = None,
                   live: bool = True) -> list[Term]:
        """Per GPU slot, in order: room for the share, GPU memory, health, live free memory.

        `live=False` leaves out the live-memory term: readings cannot show memory that
        victims or an empty node would free.
        """
        s = self.state
        u = self.current() if usage is None else usage
        share = req.gpu_milli if req.is_fractional else MILLI_GPU
        room = s.gpu_present[rows] & (u.gpu_milli[rows] <= MILLI_GPU - share)
        terms: list[Term] = [("insufficient nvidia.com/gpu", room)]
        memory = req.gpu_memory_mib if req.is_fractional else 0
        if memory:
            terms.append(("insufficient GPU memory", (s.gpu_mem_cap[rows] - u.gpu_memory[rows]) >= memory))
        terms.append(("unhealthy GPU", self.usable[rows]))
        if memory and live and self.any_fresh:
            terms.append(("insufficient live GPU memory", ~(self.fresh[rows] & (s.live_free_mem[rows] < memory))))
        return terms

    def resource_terms(self, req: PodRequest, rows: Rows = slice(None), usage: NodeUsage | None = None
                       ) -> Iterator[Term]:
        """Per node, in kube-scheduler's order: host ports, GPU owner, pod count, CPU, memory, other resources.

        A generator, so that a one-node check stops at the first failing term.
        """
        s = self.state
        u = self.current() if usage is None else usage
        if req.host_ports and s.ports_used and u.held_extras:
            if isinstance(rows, int):
                held = s.ports_used.get(rows, ())
                yield "host port conflict", np.array(not any(p.conflicts(h) for p in req.host_ports for h in held))
            else:
                yield "host port conflict", ~s.port_conflicts(req.host_ports)[rows]
        if req.is_gpu:  # one owner per GPU (docs/gpus.md)
            yield ("GPUs assigned by the device plugin" if req.is_fractional else "GPUs shared by bigk",
                   (s.owner_share_ok if req.is_fractional else s.owner_whole_ok)[rows])
        yield "too many pods", u.pods[rows] < s.pods_cap[rows]
        yield "insufficient cpu", u.cpu[rows] <= s.cpu_cap[rows] - req.cpu_milli
        yield "insufficient memory", u.memory[rows] <= s.mem_cap[rows] - req.memory_mib
        for name, amount in req.scalars:
            free = s.scalar_free(name) if u.held_extras else s.scalar_cap(name)
            yield ("too many volumes" if name.startswith(ATTACH_PREFIX) else f"insufficient {name}",
                   free[rows] >= amount)

    # ---- answers -----------------------------------------------------------------------------
    def slots(self, req: PodRequest, node: int | None = None, usage: NodeUsage | None = None,
              live: bool = True) -> np.ndarray:
        """Per GPU slot: can it take the pod's per-GPU share? Shape (N, G), or (G,) for one `node`."""
        terms = self.slot_terms(req, slice(None) if node is None else node, usage, live)
        fit = terms[0][1]
        for _, mask in terms[1:]:
            fit = fit & mask
        return fit

    def nodes(self, req: PodRequest, static: np.ndarray | None = None, usage: NodeUsage | None = None,
              live: bool = True, cordon: bool = True) -> np.ndarray:
        """Nodes where the pod fits under `usage` (now, by default): `static` (labels, taints, model,
        constraints; all nodes if None), not cordoned (unless `cordon=False`), and every resource term."""
        s = self.state
        ok = np.ones(s.size, dtype=bool) if static is None else static
        if cordon:
            ok = ok & s.schedulable
        for _, mask in self.resource_terms(req, slice(None), usage):
            ok = ok & mask
        if req.is_gpu:
            ok = ok & (row_count(self.slots(req, None, usage, live)) >= req.gpu_count)
        return ok

    def fits_row(self, req: PodRequest, static: np.ndarray, i: int) -> bool:
        """`nodes(req, static)[i]`, computed on node `i` alone (stops at the first failing term)."""
        s = self.state
        if not (static[i] and s.schedulable[i]):
            return False
        if not all(mask for _, mask in self.resource_terms(req, i)):
            return False
        return not req.is_gpu or int(np.count_nonzero(self.slots(req, i))) >= req.gpu_count

    def could_ever_fit(self, req: PodRequest, static: np.ndarray) -> np.ndarray:
        """Nodes that could hold the pod if they were empty (capacity, filters, healthy GPUs)."""
        return self.nodes(req, static, self.empty(), live=False)

    def reasons(self, req: PodRequest, selector: dict[str, str], tolerations: Sequence[Toleration],
                constraints: PodConstraints | None = None, usage: NodeUsage | None = None,
                live: bool = True, cordon: bool = True) -> tuple[int, dict[str, int]]:
        """(nodes that fit, {reason: nodes}) using each node's first failing term.

        A pod whose constraints carry a refusal (a kube-scheduler filter bigk does not
        implement, or a volume that is not ready) is refused by every node for that reason.
        `usage=self.empty(), live=False, cordon=False` asks why a node could never hold the pod.
        """
        s = self.state
        n = s.size
        if constraints is not None and constraints.refusal:
            return 0, ({constraints.refusal: n} if n else {})
        reason = np.full(n, -1, dtype=np.int64)
        labels: list[str] = []

        def mark(name: str, ok: np.ndarray) -> None:
            labels.append(name)
            reason[(reason < 0) & ~ok] = len(labels) - 1

        if cordon:
            mark("node cordoned", s.schedulable)
        mark("node selector mismatch", s.static_mask(selector, ANY_TAINT, frozenset()))
        mark("untolerated taint", s.static_mask({}, tuple(tolerations), frozenset()))
        for clause in constraints.clauses if constraints is not None else ():
            mark(clause.reason, s.static_mask({}, ANY_TAINT, frozenset(), PodConstraints((clause,))))
        if req.gpu_models:
            mark("GPU model mismatch", s.static_mask({}, ANY_TAINT, req.gpu_models))
        for name, ok in self.resource_terms(req, slice(None), usage):
            mark(name, ok)
        if req.is_gpu:
            slots = None
            for name, ok in self.slot_terms(req, slice(None), usage, live):
                slots = ok if slots is None else slots & ok
                mark(name, row_count(slots) >= req.gpu_count)
        counts = np.bincount(reason[reason >= 0], minlength=len(labels))
        out: dict[str, int] = {}
        for i, c in enumerate(counts):
            if c:
                out[labels[i]] = out.get(labels[i], 0) + int(c)  # several clauses may share a reason
        return int(np.count_nonzero(reason < 0)), dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))
