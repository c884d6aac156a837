"""Keeping one `ClusterState` in step with successive snapshots.

Rebuilding the arrays and re-accounting every bound pod each cycle would make a
cycle cost grow with the pods already running. Instead the state is rebuilt only
when the node set itself changes (names, capacity, labels, taints, GPUs); from
one cycle to the next only the difference in bound pods is applied, plus cordon
flags and live GPU readings.

Allocations whose key starts with "~" belong to the scheduler (reservations,
holds) and are never touched by the diff.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from bigk.cluster.model import MILLI_GPU, Node, Pod, PodRequest
from bigk.cluster.state import ClusterState, OvercommitError, Placement

log = logging.getLogger(__name__)

INTERNAL_PREFIX = "~"

NodeKey = tuple[object, ...]


def _node_key(node: Node) -> NodeKey:
    return (node.name, node.cpu_milli, node.memory_mib, node.pods, tuple(sorted(node.labels.items())),
            tuple(node.taints), tuple((g.index, g.model, g.memory_mib) for g in node.gpus))


class StateSync:
    """Owns the scheduler's `ClusterState` and applies snapshot differences to it."""

    def __init__(self) -> None:
        self.state: ClusterState | None = None
        self._node_keys: list[NodeKey] = []
        self._bound: dict[str, tuple[str, tuple[int, ...], PodRequest]] = {}

    def sync(self, nodes: Sequence[Node], bound: Sequence[Pod],
             make_room: Callable[[ClusterState, int], list[str]]) -> tuple[ClusterState, bool]:
        """Bring the state to `nodes` + `bound` pods; returns (state, rebuilt).

        On a rebuild every scheduler-owned allocation is gone and the caller must
        re-apply them. When a newly bound pod collides with a scheduler-owned
        allocation (another scheduler took the room), `make_room(state, node)` is
        asked to release what it holds on that node; it re-places them itself.
        """
        keys = [_node_key(n) for n in nodes]
        rebuilt = self.state is None or keys != self._node_keys
        if rebuilt:
            self.state = ClusterState(nodes)
            self._node_keys = keys
            self._bound = {}
        state = self.state
        assert state is not None
        state.schedulable[:] = [not n.unschedulable for n in nodes]
        self._sync_readings(state, nodes)

        want: dict[str, tuple[str, tuple[int, ...], PodRequest]] = {}
        for pod in bound:
            if pod.node in state.index:
                want[pod.key] = (pod.node, pod.gpus, pod.request)
            else:
                log.warning("event=skip-bound-pod pod=%s node=%s reason=unknown-node", pod.key, pod.node)
        for key, have in list(self._bound.items()):
            got = want.get(key)
            if got is not None and not got[1] and got[0] == have[0] and got[2] == have[2]:
                want[key] = have  # the pod does not say which GPUs it holds: keep what was accounted
            elif got != have:
                state.release(key)
                del self._bound[key]
        for key, entry in want.items():
            if key in self._bound:
                continue
            if self._account(state, key, entry, make_room):
                self._bound[key] = entry
        return state, rebuilt

    def _account(self, state: ClusterState, key: str, entry: tuple[str, tuple[int, ...], PodRequest],
                 make_room: Callable[[ClusterState, int], list[str]]) -> bool:
        node_name, gpus, req = entry
        i = state.index[node_name]
        for attempt in range(2):
            chosen = gpus if (gpus or not req.is_gpu) else _accounting_gpus(state, i, req)
            if chosen is not None:
                try:
                    state.allocate(key, req, state.placement_for(i, req, chosen))
                    return True
                except OvercommitError:
                    pass
            if attempt == 0 and not make_room(state, i):
                break
        log.warning("event=skip-bound-pod pod=%s node=%s reason=overcommitted-by-others", key, node_name)
        return False

    def adopt(self, key: str, node: str, gpus: tuple[int, ...], req: PodRequest) -> None:
        """Record a pod the scheduler itself allocated (a bind it issued) as bound.

        If the next snapshot still shows it pending (the bind failed or lags), the
        diff releases it again.
        """
        self._bound[key] = (node, gpus, req)

    @staticmethod
    def _sync_readings(state: ClusterState, nodes: Sequence[Node]) -> None:
        for i, node in enumerate(nodes):
            for gpu in node.gpus:
                r = gpu.reading
                if r is None or gpu.index >= state.live_at.shape[1]:
                    continue
                if state.live_at[i, gpu.index] != r.observed_at or state.gpu_healthy[i, gpu.index] != r.healthy:
                    state.set_reading(i, gpu.index, r.free_memory_mib, r.utilization_pct, r.temperature_c,
                                      r.healthy, r.observed_at)


def _accounting_gpus(state: ClusterState, node: int, req: PodRequest) -> tuple[int, ...] | None:
    """GPU slots for a bound pod that did not say which GPUs it holds: by accounting only."""
    used = state.gpu_milli_used[node]
    present = state.gpu_present[node]
    if req.is_fractional:
        ok = present & (used <= MILLI_GPU - req.gpu_milli)
        slots = np.flatnonzero(ok)
        if not len(slots):
            return None
        return (int(slots[int(np.argmax(used[slots]))]),)
    slots = np.flatnonzero(present & (used == 0))
    if len(slots) < req.gpu_count:
        return None
    return tuple(int(s) for s in slots[: req.gpu_count])


def placement_of(state: ClusterState, key: str) -> Placement | None:
    """Where `key` is accounted, if anywhere."""
    entry = state.allocations.get(key)
    return None if entry is None else entry[1]
