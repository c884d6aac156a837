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
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

from bigk.cluster.model import MILLI_GPU, Node, Pod, PodRequest
from bigk.cluster.state import ClusterState, OvercommitError, Placement
from bigk.cluster.usage import Tally
from bigk.scheduler.tracker import Delta

log = logging.getLogger(__name__)

INTERNAL_PREFIX = "~"

NodeKey = tuple[object, ...]


_GPU_KEY = operator.attrgetter("index", "model", "memory_mib")


def _node_key(node: Node) -> NodeKey:
    """What the arrays depend on (cordon and readings are synced separately, without a rebuild)."""
    return (node.name, node.cpu_milli, node.memory_mib, node.pods, tuple(node.labels.items()),
            tuple(node.taints), tuple(map(_GPU_KEY, node.gpus)), tuple(node.scalars.items()))


class BoundPod(NamedTuple):
    """A bound pod as the state accounts it."""

    node: str
    gpus: tuple[int, ...]
    request: PodRequest
    queue: str


def _cheap(node: Node) -> tuple[object, ...]:
    return (node.name, node.cpu_milli, node.memory_mib, node.pods, len(node.labels), len(node.taints),
            len(node.gpus))


def _cheap_of_key(key: NodeKey) -> tuple[object, ...]:
    return (key[0], key[1], key[2], key[3], len(key[4]), len(key[5]), len(key[6]))  # type: ignore[arg-type]


class StateSync:
    """Owns the scheduler's `ClusterState` and applies snapshot differences to it.

    Alongside the state it keeps, per queue, the CPU, memory and GPUs (by GPU product)
    that bound pods use, and `present`, the keys of the bound pods of the last snapshot.
    """

    def __init__(self) -> None:
        self.state: ClusterState | None = None
        self._node_keys: list[NodeKey] = []
        self._nodes: list[Node] = []
        self._bound: dict[str, BoundPod] = {}
        self.usage: dict[str, Tally] = {}  # per queue; GPUs by the product of the node they are on
        self.present: set[str] = set()
        self._adopted: set[str] = set()  # pods adopted since the last sync (binds the snapshot may not show yet)
        self._unaccounted: dict[str, Pod] = {}  # bound pods that did not fit in the accounting (tried again)
        self._warned: set[tuple[str, str]] = set()

    def sync(self, nodes: Sequence[Node], bound: Sequence[Pod], make_room: Callable[[ClusterState, int], list[str]],
             queue_of: Callable[[Pod], str], keys: list[NodeKey] | None = None) -> tuple[ClusterState, bool]:
        """Bring the state to `nodes` + `bound` pods; returns (state, rebuilt).

        On a rebuild every scheduler-owned allocation is gone and the caller must
        re-apply them. When a newly bound pod collides with a scheduler-owned
        allocation (another scheduler took the room), `make_room(state, node)` is
        asked to release what it holds on that node; it re-places them itself.
        A pod already accounted is recognised by key, node, GPUs and request, so
        the cost per unchanged pod is a dictionary look-up.
        """
        keys = self._keys(nodes) if keys is None else keys
        rebuilt = self.state is None or keys != self._node_keys
        if rebuilt:
            self.state = ClusterState(nodes)
            self._node_keys = keys
            self._bound = {}
            self.usage = {}
        state = self.state
        assert state is not None
        self._sync_node_flags(state, nodes)
        self._adopted = set()
        self._unaccounted = {}

        present: set[str] = set()
        changed: list[tuple[str, BoundPod]] = []
        pods_of: dict[str, Pod] = {}
        index = state.index
        have_of = self._bound.get
        for pod in bound:
            key = pod.key
            have = have_of(key)
            if (have is not None and have.node == pod.node and (have.gpus == pod.gpus or not pod.gpus)
                    and (have.request is pod.request or have.request == pod.request)):
                present.add(key)
                continue
            if pod.node not in index:
                self._warn(key, pod.node, "unknown-node")
                continue
            present.add(key)
            if have is not None:
                self._forget(state, key)
            changed.append((key, BoundPod(pod.node, pod.gpus, pod.request, queue_of(pod))))
            pods_of[key] = pod
        for key in self._bound.keys() - present:
            self._forget(state, key)
        for key, entry in changed:
            if self._account(state, key, entry, make_room):
                self._remember(key, entry)
            else:
                self._unaccounted[key] = pods_of[key]
        self.present = present
        return state, rebuilt

    def sync_changes(self, nodes: Sequence[Node], bound: Mapping[str, Pod], delta: Delta,
                     make_room: Callable[[ClusterState, int], list[str]], queue_of: Callable[[Pod], str]
                     ) -> tuple[ClusterState, bool, list[str]]:
        """`sync` from a `PodTracker`'s difference: only bound pods added, changed or gone are looked at, plus
        the pods this scheduler adopted (a bind the snapshot does not show yet is released again) and pods that
        could not be accounted before (tried again). `bound`: every bound pod of the snapshot, by key. Returns
        (state, rebuilt, keys newly accounted)."""
        keys = self._keys(nodes)
        if self.state is None or keys != self._node_keys or delta.everything:
            before = set(self.present)
            state, rebuilt = self.sync(nodes, list(bound.values()), make_room, queue_of, keys)
            return state, rebuilt, sorted(self.present - before)
        state = self.state
        assert state is not None
        self._sync_node_flags(state, nodes)
        present = self.present
        fresh: list[str] = []
        for key in delta.bound_gone:
            if key not in bound:
                if key in self._bound:
                    self._forget(state, key)
                present.discard(key)
        for key in self._adopted:  # adopted last cycle: still pending (the bind failed or lags)? forget it
            if key not in bound and key in self._bound:
                self._forget(state, key)
        self._adopted = set()
        retry = list(self._unaccounted.values())
        self._unaccounted = {}
        changed: list[tuple[str, BoundPod]] = []
        index = state.index
        for pod in delta.bound_new + retry:
            key = pod.key
            if bound.get(key) is not pod:
                continue
            have = self._bound.get(key)
            if (have is not None and have.node == pod.node and (have.gpus == pod.gpus or not pod.gpus)
                    and (have.request is pod.request or have.request == pod.request)):
                if key not in present:
                    present.add(key)
                    fresh.append(key)
                continue
            if pod.node not in index:
                self._warn(key, pod.node, "unknown-node")
                present.discard(key)
                if have is not None:
                    self._forget(state, key)
                continue
            if key not in present:
                present.add(key)
                fresh.append(key)
            if have is not None:
                self._forget(state, key)
            changed.append((key, BoundPod(pod.node, pod.gpus, pod.request, queue_of(pod))))
        for key, entry in changed:
            if self._account(state, key, entry, make_room):
                self._remember(key, entry)
            else:
                self._unaccounted[key] = bound[key]
        return state, False, fresh

    def _keys(self, nodes: Sequence[Node]) -> list[NodeKey]:
        """Fingerprints of the nodes; a node object seen last cycle, unchanged in its cheap fields,
        reuses its fingerprint (a caller that edits labels, taints or GPUs in place, rather than
        passing a new `Node`, must change one of: capacity, pod limit, or the number of labels,
        taints or GPUs, for the change to be seen)."""
        prev = {id(n): (n, k) for n, k in zip(self._nodes, self._node_keys, strict=True)}
        keys = []
        for node in nodes:
            hit = prev.get(id(node))
            if hit is not None and hit[0] is node and _cheap(node) == _cheap_of_key(hit[1]):
                keys.append(hit[1])
            else:
                keys.append(_node_key(node))
        self._nodes = list(nodes)  # keeps the objects alive, so their ids stay theirs
        return keys

    def _remember(self, key: str, entry: BoundPod) -> None:
        self._bound[key] = entry
        u = self.usage.get(entry.queue)
        if u is None:
            u = self.usage[entry.queue] = Tally()
        u.add_request(entry.request, self._model_at(entry.node))

    def _forget(self, state: ClusterState, key: str) -> None:
        entry = self._bound.pop(key)
        state.release(key)
        self.usage[entry.queue].add_request(entry.request, self._model_at(entry.node), -1)

    def _model_at(self, node: str) -> str:
        """The GPU product of `node` ('' for a node without GPUs or not in the state)."""
        state = self.state
        i = state.index.get(node, -1) if state is not None else -1
        return state.nodes[i].gpu_model if state is not None and i >= 0 else ""

    def _account(self, state: ClusterState, key: str, entry: BoundPod,
                 make_room: Callable[[ClusterState, int], list[str]]) -> bool:
        node_name, gpus, req, _ = entry
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
        self._warn(key, node_name, "overcommitted-by-others")
        return False

    def _warn(self, key: str, node: str, reason: str) -> None:
        """Log a pod that cannot be accounted, once (not once per cycle)."""
        if (key, reason) in self._warned:
            return
        if len(self._warned) > 10_000:
            self._warned.clear()
        self._warned.add((key, reason))
        log.warning("event=skip-bound-pod pod=%s node=%s reason=%s", key, node, reason)

    def bound_entry(self, key: str) -> BoundPod | None:
        """(node, GPUs, request, queue) of an accounted bound pod."""
        return self._bound.get(key)

    def adopt(self, key: str, node: str, gpus: tuple[int, ...], req: PodRequest, queue: str) -> None:
        """Record a pod the scheduler itself allocated (a bind it issued) as bound.

        If the next snapshot still shows it pending (the bind failed or lags), the
        diff releases it again.
        """
        self._remember(key, BoundPod(node, gpus, req, queue))
        self._adopted.add(key)

    def _sync_node_flags(self, state: ClusterState, nodes: Sequence[Node]) -> None:
        """Cordon flags and live GPU readings (synced every cycle, without a rebuild)."""
        state.schedulable[:] = [not n.unschedulable for n in nodes]
        self._sync_readings(state, nodes)

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
    return None if entry is None else entry.placement
