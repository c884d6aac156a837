"""Waiting units that need not be tried again: bigk's unschedulable queue.

Under a backlog most waiting units fail every cycle for the same reason: the
room they need is not there. kube-scheduler keeps such pods in its
unschedulable queue until a cluster event that could make them fit (its
queueing hints); `RetryFilter` does the same for the cycle's units.

A unit that waits behind the held head of the queue ("behind-head") or can never
fit ("never-fits") is *parked* with its explanation. While parked it is not
tried again; it is woken, and tried at its exact place in the queue order, by:
  - room growing on a node one of its pods could use, enough for that pod
    (pods finished or evicted, reservations or holds released, a node
    uncordoned, a GPU reading that turns a GPU healthy or shows memory freed);
    room is compared with what backfill saw at the end of the unit's last try;
  - any change of the nodes (added, removed, relabelled, retainted, resized),
    of the queue definitions, or of the policy's workload model;
  - the unit itself changing (its pods, gang minimum, priority, queue);
  - for a unit that could preempt (its trial failed): a new pod or reservation
    of lower priority on a node it could use; where queues have guarantees
    (reclaim and protection read every queue's usage) such a unit is always
    tried;
  - a backoff timer (`max_parked_s`), after which it is tried once more anyway.
The head, preemptors and units placed this cycle are never parked. Units are
only skipped once the cycle's head is chosen, so every unit before it is tried
exactly as without the filter.

Why skipping is safe: room a skipped unit could see at its turn is at most what
it saw when last tried, on every node one of its pods could use (room elsewhere
cannot help it), so its trial fails again. This holds exactly for a unit of one
pod or of identical pods; for a gang of different pods (a driver and executors)
it assumes, as the policies do, that less room never lets a greedy gang trial
succeed where more room failed.
"""

from __future__ import annotations

import bisect
import heapq
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from bigk.cluster.model import MILLI_GPU, PodRequest, Queue
from bigk.cluster.state import ClusterState
from bigk.scheduler.explain import behind, explain, retold
from bigk.scheduler.filters import Filters
from bigk.scheduler.placement import Failure
from bigk.scheduler.queueing import QueueBook, UnitQueue, lane_key
from bigk.scheduler.types import Explanation
from bigk.scheduler.units import Item, Unit

if TYPE_CHECKING:
    from bigk.scheduler.placement import Placer

PARKABLE = ("behind-head", "never-fits")
DEFAULT_MAX_PARKED_S = 300.0  # kube-scheduler's podMaxInUnschedulablePodsDuration is 5 minutes
MIN_PRIORITY = -(1 << 62)  # work of unknown priority (bound by others)


@dataclass
class Room:
    """Free room per node, as a waiting unit sees it: what a pod could still take there."""

    cpu: np.ndarray
    mem: np.ndarray
    pods: np.ndarray
    gpu: np.ndarray  # (N, G) free milli-GPU on usable slots
    gpu_mem: np.ndarray  # (N, G) free GPU memory on usable slots (the smaller of accounted and fresh live)
    open: np.ndarray  # schedulable
    scalars: dict[str, np.ndarray] = field(default_factory=dict)
    ports: np.ndarray | None = None  # host ports in use per node

    @classmethod
    def of(cls, state: ClusterState, filters: Filters, rows: np.ndarray | None = None) -> Room:
        """The room on every node, or only on `rows` (in that order)."""
        at = slice(None) if rows is None else rows
        usable = filters.usable[at]
        gmem = state.gpu_mem_cap[at] - state.gpu_mem_used[at]
        if filters.any_fresh:
            live_free = state.live_free_mem[at]
            live = np.where(filters.fresh[at] & ~np.isnan(live_free), live_free, np.inf)
            gmem = np.minimum(gmem, live)
        ports = None
        if state.ports_used:
            ports = np.zeros(state.size, dtype=np.int64)
            for node, held in state.ports_used.items():
                ports[node] = len(held)
            ports = ports[at]
        return cls(state.cpu_cap[at] - state.cpu_used[at], state.mem_cap[at] - state.mem_used[at],
                   state.pods_cap[at] - state.pods_used[at],
                   np.where(usable, MILLI_GPU - state.gpu_milli_used[at], 0), np.where(usable, gmem, 0),
                   state.schedulable[at].copy(), {n: state.scalar_free(n)[at].copy() for n in state.scalar_used},
                   ports)

    @classmethod
    def concat(cls, rooms: list[Room]) -> Room:
        """Rows of several rooms (of the same cluster) stacked in order."""
        first = rooms[0]
        ports = None  # a room taken while no pod held a host port has none: zero ports in use there
        if any(r.ports is not None for r in rooms):
            ports = np.concatenate([r.ports if r.ports is not None else np.zeros(len(r.cpu), dtype=np.int64)
                                    for r in rooms])

        def stack(field_name: str) -> np.ndarray:
            return np.concatenate([getattr(r, field_name) for r in rooms])

        return cls(stack("cpu"), stack("mem"), stack("pods"), stack("gpu"), stack("gpu_mem"), stack("open"),
                   {n: np.concatenate([r.scalars[n] for r in rooms]) for n in first.scalars}, ports)

    def grown(self, before: Room) -> np.ndarray:
        """Nodes with more of something free now than in `before` (same nodes)."""
        rows = (self.cpu > before.cpu) | (self.mem > before.mem) | (self.pods > before.pods)
        rows |= self.open & ~before.open
        rows |= (self.gpu > before.gpu).any(axis=1) | (self.gpu_mem > before.gpu_mem).any(axis=1)
        for name, free in before.scalars.items():
            now = self.scalars.get(name)
            if now is not None:
                rows |= now > free
        for name in self.scalars.keys() - before.scalars.keys():
            rows |= self.scalars[name] > 0
        if before.ports is not None:
            rows |= (self.ports if self.ports is not None else 0) < before.ports
        return rows


@dataclass
class Tried:
    """A unit tried this cycle that ended waiting, and why."""

    unit: Unit  # as built (what a later cycle compares to see whether the gang changed)
    shown: Unit  # as explained (narrowed to open GPU models, where queues have per-model maxima)
    explanation: Explanation
    failure: Failure | None
    may_preempt: bool  # a victim of lower priority existed when it was tried
    head: str  # the head it waited behind


@dataclass
class Parked:
    """A waiting unit not tried again until something it could use changes."""

    unit: Unit
    shown: Unit
    explanation: Explanation
    failure: Failure | None
    head: str
    shapes: tuple[Item, ...]  # its distinct pods, for the per-node fit test
    shape_keys: tuple[tuple[object, ...], ...]  # their `Item.shape`s (hashable)
    mask: np.ndarray  # nodes any of its pods could ever use
    may_preempt: bool
    at: float  # when it was last tried
    signature: tuple[object, ...]


def usable_nodes(state: ClusterState, req: PodRequest, static: np.ndarray) -> np.ndarray:
    """Nodes whose labels, taints and capacity admit the pod once empty, cordoned or not, GPUs healthy or not:
    the nodes where an event could ever help it."""
    ok = static & (state.cpu_cap >= req.cpu_milli) & (state.mem_cap >= req.memory_mib)
    for name, amount in req.scalars:
        ok &= state.scalar_cap(name) >= amount
    if req.is_gpu:
        ok &= state.owner_share_ok if req.is_fractional else state.owner_whole_ok
        slots = state.gpu_present
        if req.gpu_memory_mib:
            slots = slots & (state.gpu_mem_cap >= req.gpu_memory_mib)
        ok &= np.count_nonzero(slots, axis=1) >= req.gpu_count
    return ok


def signature(unit: Unit) -> tuple[object, ...]:
    """What a unit asks for; a parked unit whose signature changed is the gang changing: try it again."""
    return (unit.queue, unit.priority, unit.created_at, unit.all_or_nothing, unit.driver_pending, unit.phantoms,
            tuple(it.pod if it.pod is not None else it for it in unit.items))


def distinct_items(unit: Unit) -> tuple[Item, ...]:
    out: dict[tuple[object, ...], Item] = {}
    for it in unit.items:
        out.setdefault(it.shape, it)
    return tuple(out.values())


class Backlog(UnitQueue):
    """Units in the order `UnitQueue` hands them out, into which woken units can be inserted."""

    def insert(self, unit: Unit) -> None:
        lane = self._lanes.get(unit.queue)
        if lane is None:
            self._lanes[unit.queue] = deque([unit])
            self._lanes = dict(sorted(self._lanes.items()))
            return
        lane.insert(bisect.bisect_right(lane, lane_key(unit), key=lane_key), unit)

    def merge(self, units: Iterable[Unit]) -> None:
        """Insert many units at once (each lane merged in one pass)."""
        by_queue: dict[str, list[Unit]] = {}
        for u in units:
            by_queue.setdefault(u.queue, []).append(u)
        new_lane = bool(by_queue.keys() - self._lanes.keys())
        for queue, more in by_queue.items():
            more.sort(key=lane_key)
            self._lanes[queue] = deque(heapq.merge(self._lanes.get(queue, ()), more, key=lane_key))
        if new_lane:
            self._lanes = dict(sorted(self._lanes.items()))


@dataclass
class RetryStats:
    """What the filter did in one cycle (for logs, metrics and tests)."""

    parked: int = 0  # units parked after the cycle
    skipped: int = 0  # parked units not tried this cycle
    woken: int = 0  # parked units tried again this cycle
    woken_all: bool = False  # everything parked was woken (nodes, queues or the policy's model changed)


GroupKey = tuple[object, ...]


@dataclass(frozen=True)
class NoPlan:
    """The head found no preemption plan, and nothing changed the state after it held its room (`Cycle.finish`):
    if it is still so at its next turn, the attempt would fail again."""

    unit: Unit
    version: int  # the state's journal once the head's hold was released
    schedulable: np.ndarray
    usable: np.ndarray
    evicting: frozenset[str]


def group_key(p: Parked) -> GroupKey:
    """Parked units that any change wakes alike (the first three fields: the same distinct pods, the same kind
    of wait and, for a unit that could preempt, the same priority) and that fail alike within a cycle (the rest:
    the same queue and `Cycle.shape_key`), so that only the first of them in queue order need be woken."""
    u = p.unit
    return (p.shape_keys, u.priority if p.may_preempt else None, p.explanation.state == "never-fits",
            u.queue, tuple(it.shape for it in u.items), u.priority, u.all_or_nothing, u.driver_pending)


def wake_key(key: GroupKey) -> GroupKey:
    """The part of a group key that decides whether a change wakes the group."""
    return key[:3]


class RetryFilter:
    """Remembers parked units across cycles and tells a cycle which of them to try again.

    Parked units are indexed by `group_key`, so that finding the ones a change wakes costs one test per group
    (not per unit), and by the time they were parked (the backoff timer). Their explanations are kept in
    `told`, ready to be reported as they are, and re-told only when the head they wait behind changes.
    """

    def __init__(self, max_parked_s: float = DEFAULT_MAX_PARKED_S) -> None:
        self.max_parked_s = max_parked_s
        self.parked: dict[str, Parked] = {}
        self.told: dict[str, Explanation] = {}  # the parked units' explanations, as last told
        self._groups: dict[GroupKey, dict[str, None]] = {}  # ordered sets of names
        self._wakes: dict[GroupKey, dict[GroupKey, None]] = {}  # wake key -> its groups (tested once for all)
        self._group_of: dict[str, GroupKey] = {}
        self._timers: list[tuple[float, int, str]] = []  # heap of (parked at, seq, name); stale entries skipped
        self._seq = 0
        self._timed: dict[str, float] = {}  # name -> the time of its newest entry in `_timers`
        self._behind: dict[str, set[str]] = {}  # head -> parked units whose explanation names it
        self._masks: dict[tuple[object, ...], np.ndarray] = {}  # shape keys -> nodes they could ever use
        self._preemptors = 0  # parked units that could preempt
        self.no_plan: dict[str, NoPlan] = {}  # the last cycle's head, when its preemption attempt found nothing
        self.room: Room | None = None  # what backfill saw at the end of the last cycle's units
        # nodes where room was released after some units' turn last cycle, with the room just before
        self.dirty: tuple[np.ndarray, Room] | None = None
        # (cycle, priority, nodes) of work placed lately: this cycle's and the last one's (a victim index is
        # built once per cycle, so work placed during a cycle becomes a possible victim only in the next)
        self.low: list[tuple[int, int, np.ndarray]] = []
        self.cycle = 0
        self._queues: dict[str, Queue] | None = None
        self._model_epoch = -1
        self.stats = RetryStats()
        # Woken lazily this cycle: a woken group's parked members in queue order, and the group of each unit
        # woken as the first of its group (the next is woken only when it did not fail as a shape).
        self.queued: dict[GroupKey, deque[tuple[tuple[object, ...], str]]] = {}
        self.waking: dict[str, GroupKey] = {}

    # ---- the parked set ---------------------------------------------------------------------
    def park(self, name: str, p: Parked) -> None:
        self.unpark(name)
        self.parked[name] = p
        self.told[name] = p.explanation
        key = self._group_of[name] = group_key(p)
        members = self._groups.get(key)
        if members is None:
            members = self._groups[key] = {}
            self._wakes.setdefault(wake_key(key), {})[key] = None
        members[name] = None
        if self._timed.get(name) != p.at:  # parked again as it was (woken, failed as its shape): already timed
            self._timed[name] = p.at
            heapq.heappush(self._timers, (p.at, self._seq, name))
            self._seq += 1
        if p.explanation.state == "behind-head":
            self._behind.setdefault(p.head, set()).add(name)
        if p.may_preempt:
            self._preemptors += 1

    def unpark(self, name: str) -> Parked | None:
        """Take `name` out of the parked set (to be tried, or because it is gone); its entry, if it had one."""
        p = self.parked.pop(name, None)
        if p is None:
            return None
        del self.told[name]
        key = self._group_of.pop(name)
        members = self._groups[key]
        del members[name]
        if not members:
            del self._groups[key]
            groups = self._wakes[wake_key(key)]
            del groups[key]
            if not groups:
                del self._wakes[wake_key(key)]
        behind = self._behind.get(p.head)
        if behind is not None:
            behind.discard(name)
            if not behind:
                del self._behind[p.head]
        if p.may_preempt:
            self._preemptors -= 1
        return p

    def rebuilt(self, unit: Unit) -> bool:
        """A parked unit's unit was built again: keep it parked if it asks for the same (True), else unpark it."""
        p = self.parked.get(unit.name)
        if p is None or p.unit is unit:
            return p is not None
        if signature(unit) != p.signature:
            self.unpark(unit.name)
            self.stats.woken += 1
            return False
        p.unit = unit
        return True

    def _clear(self) -> None:
        self.parked.clear()
        self.told.clear()
        self._groups.clear()
        self._wakes.clear()
        self._group_of.clear()
        self._timers.clear()
        self._timed.clear()
        self._behind.clear()
        self._masks.clear()
        self._preemptors = 0
        self.no_plan.clear()

    # ---- cycle hooks -----------------------------------------------------------------------
    def begin(self, rebuilt: bool, queues: dict[str, Queue], model_epoch: int, size: int,
              touched: np.ndarray | None) -> None:
        """Forget everything parked when the nodes, the queue definitions or the policy's model changed;
        `touched`: nodes of pods bound by others since the last cycle (possible victims, priority unknown)."""
        self.stats = RetryStats()
        self.cycle += 1
        self.low = [entry for entry in self.low if entry[0] >= self.cycle - 1]
        changed_queues = self._queues is not None and queues != self._queues
        if rebuilt or changed_queues or model_epoch != self._model_epoch or (
                self.room is not None and len(self.room.cpu) != size):
            self.stats.woken_all = bool(self.parked)
            self._clear()
            self.room = None
            self.dirty = None
            self.low = []
        elif touched is not None and len(touched):
            self.low.append((self.cycle, MIN_PRIORITY, touched))
        if changed_queues or self._queues is None:
            self._queues = dict(queues)
        self._model_epoch = model_epoch

    def note_allocation(self, node: int, priority: int) -> None:
        """Work of `priority` took room on `node` (a possible victim for a parked unit that could preempt)."""
        self.low.append((self.cycle, priority, np.array([node])))

    def _low_masks(self, size: int) -> dict[int, np.ndarray]:
        out: dict[int, np.ndarray] = {}
        for _, priority, rows in self.low:
            mask = out.get(priority)
            if mask is None:
                mask = out[priority] = np.zeros(size, dtype=bool)
            mask[rows] = True
        return out

    def wake(self, placer: Placer, now: float, guarantees: bool, planned: Iterable[str],
             units: Mapping[str, Unit] | None = None) -> dict[str, Parked]:
        """Unpark the units that something since their last try could help (the cycle's head is chosen):
        room grown on a node they could use, new lower-priority work where they could preempt, a preemption
        plan (always tried), their backoff timer. Returns them with their parked entries.

        With `units` (the cycle's units by name), a woken group's members are woken one at a time, in queue
        order: the first now, the next by `wake_next` once the one before did not fail (units of one group ask
        for the same pods in the same queue: once one fails, the others fail alike at their turn, as
        `Cycle.shape_failed` answers, and would be parked again unchanged). A member whose unit was rebuilt
        since it was parked is woken at once."""
        out: dict[str, Parked] = {}
        self.queued = {}
        self.waking = {}
        if not self.parked:
            return out
        grown = self._grown(placer)
        rows = np.flatnonzero(grown) if grown is not None else np.arange(placer.state.size)
        low = self._low_masks(placer.state.size) if self._preemptors else {}
        if len(rows) or (low and self._preemptors):
            hits: list[GroupKey] = []  # the wake test depends only on the wake key: one test for all its groups
            for groups in self._wakes.values():
                first = self.parked[next(iter(self._groups[next(iter(groups))]))]
                if self._woken(first, rows, placer, low if first.may_preempt else None, guarantees):
                    hits.extend(groups)
            for key in hits:
                names = self._groups[key]  # each key once: only its own unparking empties it
                if units is None or len(names) == 1:
                    for name in list(names):
                        out[name] = self.unpark(name)  # type: ignore[assignment]
                    continue
                ordered: list[tuple[tuple[object, ...], str]] = []
                for name in list(names):
                    member = self.parked[name].unit
                    if units.get(name) is not member:
                        out[name] = self.unpark(name)  # type: ignore[assignment]
                    else:
                        ordered.append((lane_key(member), name))
                ordered.sort()
                self.queued[key] = deque(ordered)
                nxt = self.wake_next(key, None)
                if nxt is not None:
                    out[nxt[0]] = nxt[1]
        for name in planned:
            if name in self.parked:
                out[name] = self.unpark(name)  # type: ignore[assignment]
        due = now - self.max_parked_s
        timers = self._timers
        while timers and timers[0][0] <= due:
            at, _, name = heapq.heappop(timers)
            if self._timed.get(name) == at:
                del self._timed[name]
            p = self.parked.get(name)
            if p is not None and p.at == at:
                out[name] = self.unpark(name)  # type: ignore[assignment]
        if len(timers) > 4 * len(self.parked) + 64:  # re-parked units leave stale entries: drop them
            valid = {t[2]: t for t in timers if (p := self.parked.get(t[2])) is not None and p.at == t[0]}
            self._timers = list(valid.values())  # one entry per name
            heapq.heapify(self._timers)
            self._timed = {name: t[0] for name, t in valid.items()}
        self.stats.woken += len(out)
        return out

    def wake_next(self, key: GroupKey, after: tuple[object, ...] | None) -> tuple[str, Parked] | None:
        """Unpark the next still-parked member of a lazily woken group that comes after `after` in its queue's
        lane (None: the first); it and its parked entry."""
        queued = self.queued.get(key)
        while queued:
            lk, name = queued.popleft()
            if (after is not None and lk <= after) or name not in self.parked:
                continue
            p = self.unpark(name)
            assert p is not None
            self.waking[name] = key
            return name, p
        self.queued.pop(key, None)
        return None

    def wake_rest(self, last: Mapping[str, tuple[object, ...]]) -> list[tuple[str, Parked]]:
        """Unpark every still-parked member of the lazily woken groups that comes after `last[its queue]` (the
        lane key of the unit taken last from that queue's lane): the cycle forgot its failures, so each is tried
        at its turn as any woken unit."""
        out: list[tuple[str, Parked]] = []
        for key, queued in self.queued.items():
            after = last.get(key[3])  # type: ignore[call-overload]
            for lk, name in queued:
                if (after is None or lk > after) and name in self.parked:
                    p = self.unpark(name)
                    assert p is not None
                    out.append((name, p))
        self.queued = {}
        self.stats.woken += len(out)
        return out

    def _grown(self, placer: Placer) -> np.ndarray | None:
        """Nodes with more room now than backfill saw at the end of the last cycle's units."""
        if self.room is None:
            return None
        grown = Room.of(placer.state, placer.filters).grown(self.room)
        if self.dirty is not None:  # those units saw at least the room before the release: more than that now?
            rows, before = self.dirty
            grown[rows] |= Room.of(placer.state, placer.filters, rows).grown(before)
        return grown

    def _woken(self, p: Parked, rows: np.ndarray, placer: Placer, low: dict[int, np.ndarray] | None,
               guarantees: bool) -> bool:
        """Could what changed since `p` was tried change its answer?"""
        if low is not None:  # it could preempt: new lower-priority work on its nodes may be its victims
            if guarantees:  # reclaim and protection read every queue's usage: always try it
                return True
            for prio, nodes in low.items():
                if prio < p.unit.priority and (nodes & p.mask).any():
                    return True
        mask = p.mask
        if p.explanation.state == "never-fits":  # a node opening or a GPU healing may make it possible at all
            return bool(mask[rows].any())
        return any(mask[node] and any(placer.fits_on(item, int(node)) for item in p.shapes) for node in rows)

    def wake_on(self, rows: np.ndarray, placer: Placer, book: QueueBook, current: Unit,
                units: Mapping[str, Unit]) -> dict[str, Parked]:
        """Room was released on `rows` during the cycle (a preemptor's hold, a victim gang's reservation):
        unpark the parked units that could use it and come after `current` in the order, to try at their place."""
        here = book.key(current)
        out: dict[str, Parked] = {}
        hits: list[GroupKey] = []
        for groups in self._wakes.values():
            if self._woken(self.parked[next(iter(self._groups[next(iter(groups))]))], rows, placer, None, False):
                hits.extend(groups)
        for key in hits:
            names = self._groups.get(key)
            if names is None:
                continue
            for name in list(names):
                unit = units.get(name)
                if unit is not None and book.key(unit) > here:
                    out[name] = self.unpark(name)  # type: ignore[assignment]
        self.stats.woken += len(out)
        return out

    def retell(self, head: str | None, size: int) -> None:
        """Parked units whose explanation names another head than the cycle's: name this one."""
        if head is None:
            return
        new = behind(head)
        parked, told = self.parked, self.told
        for was in [h for h in self._behind if h != head]:
            names = self._behind.pop(was)
            mine = self._behind.setdefault(head, set())
            old = behind(was)
            for name in names:
                p = parked[name]
                exp = retold(p.explanation, old, new) or explain(p.shown, "behind-head", p.failure, size, new)
                p.explanation = told[name] = exp
                p.head = head
            mine |= names

    def end(self, placer: Placer, tried: dict[str, Tried], before: Mapping[str, Parked], now: float,
            late: tuple[np.ndarray, Room] | None) -> None:
        """Park the units that waited this cycle and remember the room backfill saw; `before`: the parked entries
        of units tried this cycle (a unit parked again unchanged keeps its node mask and signature); `late`: nodes
        where room was released after some of them were tried, with the room there just before (next cycle,
        their units are tried again where there is more room than that)."""
        self.stats.skipped = len(self.parked)
        for name, t in tried.items():
            if t.explanation.state not in PARKABLE:
                self.unpark(name)
                continue
            old = before.get(name) or self.parked.get(name)
            if old is not None and old.unit is t.unit:  # the same unit parked again: same pods, nodes, signature
                self.park(name, Parked(t.unit, t.shown, t.explanation, t.failure, t.head, old.shapes, old.shape_keys,
                                       old.mask, t.may_preempt, now, old.signature))
                continue
            shapes = distinct_items(t.unit)
            keys = tuple(it.shape for it in shapes)
            mask = self._masks.get(keys)
            if mask is None:
                mask = np.zeros(placer.state.size, dtype=bool)
                for it in shapes:
                    mask |= usable_nodes(placer.state, it.request, placer.static(it))
                self._masks[keys] = mask
            self.park(name, Parked(t.unit, t.shown, t.explanation, t.failure, t.head, shapes, keys, mask,
                                   t.may_preempt, now, signature(t.unit)))
        self.stats.parked = len(self.parked)
        self.room = Room.of(placer.state, placer.filters)
        self.dirty = late
