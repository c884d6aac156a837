"""One scheduling cycle's work: admit, allocate, preempt, backfill, explain.

A `Cycle` lives for one call of `Scheduler.cycle`: it reads the snapshot and the
scheduler's `Memory`, decides, and leaves in the memory only what must survive
(reservations, plans, evictions in flight). The order of the steps is in
`bigk.scheduler.core`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace

import numpy as np

from bigk.cluster.model import Pod, Role
from bigk.cluster.state import ClusterState, OvercommitError, Placement
from bigk.scheduler.explain import amount, behind, explain
from bigk.scheduler.filters import Filters
from bigk.scheduler.memory import Memory, Plan, Reservation
from bigk.scheduler.placement import Failure, Placed, Placer
from bigk.scheduler.policies.base import Policy
from bigk.scheduler.preempt import VictimGroup, VictimIndex, gang_victims, plan_preemption
from bigk.scheduler.queueing import (
    Limit,
    QueueBook,
    UnitQueue,
    lane_key,
    open_item,
    open_models,
    unit_models,
    usage_on,
)
from bigk.scheduler.retry import Backlog, GroupKey, NoPlan, Parked, RetryFilter, Room, Tried
from bigk.scheduler.tracker import Delta
from bigk.scheduler.types import (
    Admission,
    Bind,
    CycleResult,
    Eviction,
    Explanation,
    QueueUsage,
    ReservedSlot,
    Snapshot,
)
from bigk.scheduler.units import (
    RESOURCES,
    GangView,
    Item,
    Unit,
    cluster_totals,
    lone_unit,
    phantom_item,
    pod_item,
    usage_of,
)

log = logging.getLogger(__name__)


def limit_text(queue: str, limit: Limit) -> str:
    """One line for a queue limit that holds a unit back."""
    value = amount(limit.resource, limit.limit)
    if limit.kind == "lend":
        return (f"the {limit.resource} left is kept for queue {limit.queue}'s unused guarantee ({value}; "
                "it does not lend)")
    who = f"queue {queue}" if limit.queue == queue else f"queue {queue}'s parent {limit.queue}"
    if limit.kind == "guarantee":
        return f"{who} would exceed its {limit.resource} guarantee ({value}) and may not borrow"
    return f"{who} would exceed its {limit.resource} maximum ({value})"


def queue_lookup(views: dict[str, GangView]) -> Callable[[Pod], str]:
    """A pod's queue: its gang's, when bigk knows the gang, else its own."""

    def queue_of(pod: Pod) -> str:
        view = views.get(pod.gang) if pod.gang else None
        return view.queue if view is not None else pod.queue

    return queue_of


class Cycle:
    """The working data of one cycle (discarded at its end)."""

    def __init__(self, memory: Memory, policy: Policy, reservation_ttl_s: float, stale_after_s: float,
                 snapshot: Snapshot, state: ClusterState, views: dict[str, GangView], bound: Collection[Pod],
                 lone: Mapping[str, Pod], now: float, retry: RetryFilter | None = None) -> None:
        self.m = memory
        self.ttl = reservation_ttl_s
        self.snapshot = snapshot
        self.state = state
        self.views = views
        self.bound = bound
        self.lone = lone
        self.now = now
        state.stale_after_s = stale_after_s  # the policies' fit rule reads the configured staleness from the state
        self.filters = Filters(state, now)
        self.placer = Placer(state, self.filters, policy, now)
        self.book = QueueBook(dict(snapshot.queues), cluster_totals(state))
        self.result = CycleResult()
        self.holds: dict[str, list[str]] = {}  # unit name -> hold keys (released at cycle end)
        self.head: str | None = None
        self.bound_now: dict[str, int] = {}  # gang -> executors bound this cycle
        self.failed_shapes: dict[tuple[object, ...], Tried] = {}
        self.shapes_forgotten = 0  # times `failed_shapes` was cleared (room released or held again)
        self.extras: list[tuple[GangView, Pod]] = []
        self.victims: VictimIndex | None = None
        # The retry filter (None: every waiting unit is tried every cycle, as before it existed).
        self.retry = retry
        self.tried: dict[str, Tried] = {}  # units tried this cycle that ended waiting
        self._current: Unit | None = None  # the unit being evaluated, as built (before per-model narrowing)
        self._may_preempt = False
        self.released: list[int] = []  # nodes where held or reserved room was released during the cycle
        self.is_limited = self.limited()  # queues are fixed for the cycle
        self.before_release: dict[int, Room] = {}  # node -> its room just before its first release this cycle
        self.first_seen: Callable[[str], int] | None = None  # a PodTracker's, when views come from one
        self._head_hold: tuple[Unit, int] | None = None  # the head, if it found no preemption plan, and the journal
        self._victim_inputs: tuple[dict[str, list[str]], set[str]] | None = None  # taken where preempt() was skipped

    # -- bookkeeping ------------------------------------------------------------------------
    def expire(self) -> None:
        m, now = self.m, self.now
        for gang, rs in list(m.reservations.items()):
            view = self.views.get(gang)
            gone = view is None or view.driver is None
            keep = [] if gone else [r for r in rs if r.slot.expires_at > now]
            for r in rs:
                if r not in keep:
                    self.state.release(r.key)
                    if not gone:
                        self.result.reservations_expired += 1
                    log.info("event=reservation-dropped gang=%s node=%s reason=%s", gang, r.slot.node,
                             "gang-gone" if gone else "expired")
            if keep:
                m.reservations[gang] = keep
            else:
                del m.reservations[gang]
        m.displaced = [r for r in m.displaced if r in m.reservations.get(r.gang, [])]
        for gang in [g for g in m.admitted if g not in self.views]:
            del m.admitted[gang]
        if m.plans:
            lone = self.lone
            for name, plan in list(m.plans.items()):
                view = self.views.get(name)
                if plan.expires_at <= now or not (name in lone or (view is not None and view.pending)):
                    del m.plans[name]
        bound_keys = m.sync.present
        for key, (_, at) in list(m.evicting.items()):
            if key not in bound_keys or at + self.ttl <= now:
                del m.evicting[key]

    def replace_displaced(self) -> None:
        """Re-place reservations knocked out by a rebuild or by pods bound by others."""
        for r in self.m.displaced:
            rs = self.m.reservations.get(r.gang, [])
            if r not in rs:
                continue
            node = self.state.index.get(r.slot.node)
            placement = None
            if node is not None:
                placement = self.state.placement_for(node, r.item.request, r.slot.gpus)
                try:
                    self.state.allocate(r.key, r.item.request, placement)
                    continue
                except OvercommitError:
                    placement = None
            placement = self.placer.choose(r.item)
            if placement is not None and self.placer.allocate(r.key, r.item.request, placement):
                r.slot = ReservedSlot(self.state.nodes[placement.node].name, placement.gpus, r.item.request,
                                      r.slot.expires_at)
                continue
            rs.remove(r)
            log.info("event=reservation-dropped key=%s reason=no-room", r.key)
        self.m.displaced = []

    def count_usage(self) -> None:
        for queue, used in self.m.sync.usage.items():
            self.book.add(queue, used.frozen())
        for key in self.m.evicting:
            entry = self.m.sync.bound_entry(key)
            if entry is not None:
                self.book.leave(entry.queue, usage_on(self.state, entry.request, entry.node))
        for rs in self.m.reservations.values():
            for r in rs:
                self.book.add(r.queue, usage_on(self.state, r.item.request, r.slot.node))

    # -- executors into reservations ------------------------------------------------------------
    def fill_reservations(self) -> None:
        reservations = self.m.reservations
        gangs = [g for g in reservations if g in self.views]
        if self.first_seen is not None:  # in the order of the gangs' first pods in the snapshot, as group_gangs
            gangs.sort(key=self.first_seen)
        else:
            gangs = [g for g in self.views if g in reservations]
        for gang in gangs:
            view = self.views[gang]
            rs = reservations.get(gang)
            if not rs:
                continue
            for pod in view.pending_executors:
                if not rs:
                    break
                r = next((x for x in rs if x.item.request == pod.request), rs[0])
                if self._bind_into(pod, r):
                    rs.remove(r)
                    self.bound_now[gang] = self.bound_now.get(gang, 0) + 1
            if not rs:
                del self.m.reservations[gang]

    def _bind_into(self, pod: Pod, r: Reservation) -> bool:
        """Bind an executor into its gang's reserved slot (or, if the slot went bad, anywhere it fits)."""
        state = self.state
        entry = state.allocations.get(r.key)
        state.release(r.key)
        item = pod_item(pod)
        node = state.index.get(r.slot.node)
        placement: Placement | None = None
        if node is not None and self.placer.fits_on(item, node):  # not cordoned, GPUs still healthy
            slot = state.placement_for(node, pod.request, r.slot.gpus if pod.request == r.item.request else ())
            placement = self.placer.checked_gpus(pod.request, slot)
        if placement is None:
            placement = self._elsewhere(item, r)
        if placement is not None and self.placer.allocate(pod.key, pod.request, placement):
            self.book.add(r.queue, usage_on(state, r.item.request, r.slot.node), -1)
            self._bind(pod, placement, r.queue, "reservation")
            return True
        if entry is not None:
            state.allocate(r.key, entry.request, entry.placement)
        return False

    def _elsewhere(self, item: Item, r: Reservation) -> Placement | None:
        """Where an executor goes when its reserved slot went bad: anywhere it fits, but not on a GPU model
        whose per-model maximum its queue would then pass (the slot's own room counts as given back)."""
        held = usage_on(self.state, r.item.request, r.slot.node)
        self.book.add(r.queue, held, -1)
        try:
            allowed = open_item(self.book, r.queue, item, self.state)
        finally:
            self.book.add(r.queue, held)
        return self.placer.choose(allowed) if allowed is not None else None

    def _bind(self, pod: Pod, placement: Placement, queue: str, why: str) -> None:
        node = self.state.nodes[placement.node].name
        self.result.binds.append(Bind(pod.key, node, placement.gpus))
        self.m.sync.adopt(pod.key, node, placement.gpus, pod.request, queue)
        self.book.add(queue, usage_on(self.state, pod.request, placement.node))
        if self.retry is not None:  # every bind, executors into reservations too: a possible victim from now on
            self.retry.note_allocation(placement.node, pod.priority)
        log.info("event=bind pod=%s node=%s gpus=%s via=%s", pod.key, node,
                 ",".join(map(str, placement.gpus)), why)

    # -- preemptors' holds -------------------------------------------------------------------------
    def hold_plans(self) -> None:
        for name, plan in sorted(self.m.plans.items()):
            self.rehold(name, plan)

    def _release(self, key: str) -> None:
        held = self.state.allocations.get(key)
        if held is None:
            return
        node = held.placement.node
        if self.retry is not None and node not in self.before_release:
            self.before_release[node] = Room.of(self.state, self.filters, np.array([node]))
        self.state.release(key)
        self.released.append(node)

    def release_holds(self, name: str) -> None:
        for key in self.holds.pop(name, []):
            self._release(key)
        if name != self.head:
            return
        self.head = None

    # -- units --------------------------------------------------------------------------------------
    def build_units(self) -> list[Unit]:
        units: list[Unit] = self.m.lone_units(list(self.lone.values()))
        filled = {b.pod_key for b in self.result.binds}  # executors bound into reservations this cycle
        for gang, view in self.views.items():
            built, extras = self.gang_units(gang, view, filled)
            units.extend(built)
            self.extras.extend(extras)
        return units

    def gang_units(self, gang: str, view: GangView, filled: set[str]) -> tuple[list[Unit], list[tuple[GangView, Pod]]]:
        """A gang's unit (admission or top-up; one per pending pod for a gang bigk knows nothing about) and its
        extra executors; `filled`: executors bound into reservations this cycle."""
        unknown_admission = view.driver is not None and bool(view.driver.node) and gang not in self.m.admitted
        if not view.pending and not (unknown_admission and view.info is not None):
            return [], []
        if view.info is None:
            return [lone_unit(p, gang, view.queue, view.priority) for p in view.pending], []
        info = view.info
        driver_pending = view.driver is not None and not view.driver.node
        admitted = (view.driver is not None and bool(view.driver.node)) or gang in self.m.reservations
        if view.driver is None:
            admitted = True
        # A gang admitted before this scheduler started (a restart, or a new leader) lost its
        # reservations: reserve its missing executors once more, as far as they fit.
        recovering = admitted and view.driver is not None and gang not in self.m.admitted
        if recovering:
            self.m.admitted[gang] = self.now
            self.m.touched.add(gang)
        bound_exec = len(view.bound_executors) + self.bound_now.get(gang, 0)
        reserved = len(self.m.reservations.get(gang, []))
        missing = max(0, info.min_executors - bound_exec - reserved)
        pending_exec = [p for p in view.pending_executors if p.key not in filled]
        core = pending_exec[:missing]
        extras = [(view, p) for p in pending_exec[missing:]]
        items: list[Item] = []
        if driver_pending:
            assert view.driver is not None
            items.append(pod_item(view.driver))
        items.extend(pod_item(p) for p in core)
        phantoms = 0
        if not admitted or recovering:
            phantoms = missing - len(core)
            if phantoms:
                items.extend([phantom_item(view)] * phantoms)  # identical (frozen) items
        if not items:
            return [], extras
        created = info.created_at or (view.driver.created_at if view.driver else 0.0)
        return [Unit(gang, gang, info.queue, info.priority, created, items, all_or_nothing=not admitted,
                     driver_pending=driver_pending, phantoms=phantoms)], extras

    def refresh_units(self, delta: Delta, reserved_at_start: set[str]) -> None:
        """Bring the kept units (`Memory.units`, `Memory.order`) in step: build again only the units of lone
        pods and gangs that changed, and of gangs whose reservations, admission or binds may have changed
        (those holding reservations, and those the last cycle admitted, preempted or recovered)."""
        m, retry = self.m, self.retry
        assert retry is not None
        units, order = m.units, m.order
        filled = {b.pod_key for b in self.result.binds}

        def drop(name: str, gang: str) -> None:
            was = units.get(name)
            if was is not None and was.gang != gang:
                return  # the name is another owner's now (a pod that joined or left a gang)
            units.pop(name, None)
            order.remove(name)
            retry.unpark(name)

        def keep(unit: Unit) -> None:
            if units.get(unit.name) is not unit:
                units[unit.name] = unit
                order.add(unit)
            retry.rebuilt(unit)

        for key in delta.lone:
            pod = self.lone.get(key)
            if pod is None:
                drop(key, "")
                m.forget_lone(key)
            else:
                keep(m.lone_unit(pod))
        dirty = delta.gangs | reserved_at_start | set(m.reservations) | m.touched
        m.touched = set()
        for gang in sorted(dirty):
            view = self.views.get(gang)
            built, extras = self.gang_units(gang, view, filled) if view is not None else ([], [])
            names = [u.name for u in built]
            for name in m.gang_units.pop(gang, []):
                if name not in names:
                    drop(name, gang)
            if names:
                m.gang_units[gang] = names
            for unit in built:
                keep(unit)
            if extras:
                m.gang_extras[gang] = extras
            else:
                m.gang_extras.pop(gang, None)
        for extras in m.gang_extras.values():
            self.extras.extend(extras)

    def schedule_units(self, delta: Delta | None = None, reserved_at_start: frozenset[str] = frozenset()) -> None:
        """Take units in queue order. Without the retry filter every unit is built and tried every cycle;
        with it (and a `PodTracker`'s `delta`), units are kept across cycles and parked ones skipped."""
        if self.retry is None or delta is None:
            order = UnitQueue(self.build_units(), self.book)
            while order:
                self.evaluate(order.pop())
            return
        retry = self.retry
        self.refresh_units(delta, set(reserved_at_start))
        units = self.m.units
        walk = self.m.order.walk(self.book)
        before: dict[str, Parked] = {}  # parked entries of the units tried this cycle
        popped: set[str] = set()
        # Until the head is chosen every unit is tried: any of them could become the head.
        while walk and self.head is None:
            unit = walk.pop()
            popped.add(unit.name)
            was = retry.unpark(unit.name)
            if was is not None:
                before[unit.name] = was
            self.evaluate(unit)
        late = None
        if walk:
            woken = retry.wake(self.placer, self.now, self.guarantees(), self.m.plans, units)
            before.update(woken)
            awake = units.keys() - retry.parked.keys() - popped
            backlog = Backlog([units[name] for name in awake], self.book)
            self.released = []
            self.before_release = {}
            last: dict[str, tuple[object, ...]] = {}  # per queue: the lane key of the unit taken last

            def wake_next(key: GroupKey, queue: str) -> None:
                """The next member of a lazily woken group, into the backlog at its place."""
                nxt = retry.wake_next(key, last.get(queue))
                if nxt is not None:
                    woken[nxt[0]] = before[nxt[0]] = nxt[1]
                    retry.stats.woken += 1
                    backlog.insert(units[nxt[0]])

            forgotten = self.shapes_forgotten
            while backlog:
                unit = backlog.pop()
                last[unit.queue] = lane_key(unit)
                lazy = retry.waking.get(unit.name)
                was = woken.get(unit.name)
                if was is not None and was.unit is unit and self.shape_failed(unit):
                    retry.park(unit.name, was)  # woken, but its pods just failed as another unit's did
                    del before[unit.name]
                    continue  # the rest of its group, if woken lazily, stays parked: they would fail alike
                self.evaluate(unit)
                if lazy is not None and not self.shape_failed(unit):  # it did not fail as a shape: try the next
                    wake_next(lazy, unit.queue)
                if self.shapes_forgotten != forgotten and retry.queued:  # failures forgotten: the rest of every
                    forgotten = self.shapes_forgotten  # lazily woken group is tried at its turn, as before
                    rest = retry.wake_rest(last)
                    for name, entry in rest:
                        woken[name] = before[name] = entry
                    backlog.merge(units[name] for name, _ in rest)
                if self.released:  # held or reserved room came free: who could use it?
                    rows = np.unique(np.array(self.released))
                    self.released = []
                    if late is None:
                        late = np.zeros(self.state.size, dtype=bool)
                    late[rows] = True
                    more = retry.wake_on(rows, self.placer, self.book, unit, units)
                    woken.update(more)
                    before.update(more)
                    for name in more:
                        backlog.insert(units[name])
            retry.retell(self.head, self.state.size)
            waiting = self.result.waiting
            if self.is_limited:
                for name, parked in retry.parked.items():
                    self.skip(units[name], parked)
            else:
                waiting.update(retry.told)
        retry.end(self.placer, self.tried, before, self.now, self.room_before_release(late))

    def room_before_release(self, late: np.ndarray | None) -> tuple[np.ndarray, Room] | None:
        """The nodes where room was released after some units' turn, with their room just before the release
        (the least those units can have seen there)."""
        if late is None:
            return None
        rows = np.flatnonzero(late)
        return rows, Room.concat([self.before_release[int(r)] for r in rows])

    def guarantees(self) -> bool:
        """Does any queue have a guarantee (so that reclaim and protection depend on every queue's usage)?"""
        return any(q.guaranteed or q.guaranteed_models for q in self.book.queues.values())

    def limited(self) -> bool:
        """Could a queue limit hold a unit back (a maximum, a guarantee that does not borrow or lend)?"""
        return any(q.maximum or q.maximum_models or (q.guaranteed and not (q.borrow and q.lend))
                   or (q.guaranteed_models and not q.lend) for q in self.book.queues.values())

    def skip(self, unit: Unit, parked: Parked) -> None:
        """A parked unit not tried this cycle, where queues have limits: its explanation, after the queue checks
        that come before a trial (judged on the queues' usage at the end of the cycle's units)."""
        need = unit.need()
        over = self.book.over_maximum(unit.queue, need)
        if over is not None:
            alone = self.beyond_queue(unit.queue, need)
            self.result.waiting[unit.name] = explain(unit, "never-fits" if alone else "queue-maximum", None,
                                                     self.state.size, alone or limit_text(unit.queue, over))
            return
        opened, held = open_models(self.book, unit, self.state)
        if held is not None:
            self.result.waiting[unit.name] = explain(opened, held.state, None, self.state.size, held.text)
            return
        self.result.waiting[unit.name] = parked.explanation

    def may_remember_no_plan(self, unit: Unit) -> bool:
        """Can the head's failed preemption attempt be taken as the answer next cycle if nothing changes?
        Only where it is the unit as built, it has no plan, no queue has limits or guarantees (reclaim and
        protection read every queue's usage) and no preemptor holds room."""
        return (self.retry is not None and unit is self._current and not self.m.plans
                and not self.is_limited and not self.guarantees())

    def no_plan_again(self, unit: Unit, version: int) -> bool:
        """Would the head's preemption attempt fail as it did last cycle? Yes when it is the same unit and
        nothing changed since: not the state's allocations or readings (its journal is where the last cycle
        left it once the head's hold was released), cordons, usable GPUs, evictions in flight or queues."""
        retry = self.retry
        memo = retry.no_plan.get(unit.name) if retry is not None else None
        return (memo is not None and memo.unit is unit and version == memo.version
                and self.may_remember_no_plan(unit) and memo.evicting == frozenset(self.m.evicting)
                and np.array_equal(memo.schedulable, self.state.schedulable)
                and np.array_equal(memo.usable, self.filters.usable))

    def keys_for(self, unit: Unit) -> list[str]:
        return [it.pod.key if it.pod is not None else self.m.next_key("res", unit.gang) for it in unit.items]

    def evaluate(self, unit: Unit) -> None:
        unchanged = self.state.version  # the state's journal as this unit's turn begins
        self._current = unit
        self._may_preempt = False
        had_holds = bool(self.holds.get(unit.name))
        self.release_holds(unit.name)
        if had_holds:
            self.failed_shapes.clear()
            self.shapes_forgotten += 1
        need = unit.need()
        if self.is_limited:  # no queue has a maximum or a closed guarantee: nothing to check (the usual case)
            over = self.book.over_maximum(unit.queue, need)
            if over is not None:  # a gang bigger than a maximum on its own can never start: say so
                alone = self.beyond_queue(unit.queue, need)
                self.wait(unit, "never-fits" if alone else "queue-maximum", None,
                          alone or limit_text(unit.queue, over))
                return
            unit, held = open_models(self.book, unit, self.state)  # per-model maxima: keep off closed GPU models
            if held is not None:
                self.wait(unit, held.state, None, held.text)
                return
        # Units asking for exactly the same things fail the same way within a cycle (room only shrinks).
        shape = self.shape_key(unit)
        if shape in self.failed_shapes:
            cached = self.failed_shapes[shape]
            exp = self.result.waiting[unit.name] = replace(cached.explanation, gang=unit.name, queue=unit.queue)
            if self.retry is not None:
                self.tried[unit.name] = replace(cached, unit=self._current or unit, shown=unit, explanation=exp)
            return
        keys = self.keys_for(unit)
        placed, failure = self.placer.trial(unit.items, keys, unit.all_or_nothing)
        if placed:
            self.commit(unit, placed)
        if failure is None:
            return
        if placed:  # a top-up that partly fit: the rest waits
            self.wait(unit, "unschedulable", failure, "")
            return
        plan = self.m.plans.get(unit.name)
        if plan is not None:
            slots = self.plan_slots(plan)
            exact = self.placer.exact(unit.items, keys, slots) if len(slots) == len(unit.items) else None
            if exact is not None:
                self.commit(unit, exact)
                return
            if plan.victims & set(self.m.evicting):
                self.rehold(unit.name, plan)
                self.wait(unit, "preempting", failure,
                          f"waiting for {len(plan.victims & set(self.m.evicting))} preempted pods to terminate",
                          victims=len(plan.victims))
                return
        never = self.placer.never_fits(unit.items)
        if never is not None:
            fit, reasons = self.filters.reasons(never.request, never.selector, never.tolerations, never.constraints)
            self.wait(unit, "never-fits", Failure(unit.items.index(never), never, fit, reasons),
                      "no node could ever hold it")
            return
        beyond = self.beyond_cluster(need)
        if beyond:  # it could not start even on an empty cluster: never hold room for it
            self.wait(unit, "never-fits", failure, beyond)
            return
        if self.head is None and self.no_plan_again(unit, unchanged):
            self._may_preempt = True
            if self.victims is None and self._victim_inputs is None:  # what the index would have read now
                self._victim_inputs = self.victim_inputs()
        elif self.preempt(unit, keys):
            return
        if self.head is None:
            self.head = unit.name
            self.holds[unit.name] = self.placer.hold_unit(unit.items, f"~hold/{unit.name}")
            self._head_hold = (unit, self.state.version) if self._may_preempt and self.may_remember_no_plan(unit) \
                else None
            self.wait(unit, "held", failure, "head of the queue: room is held for it")
            return
        self.wait(unit, "behind-head", failure, behind(self.head))
        self.failed_shapes[shape] = self.tried.get(unit.name) or Tried(
            unit, unit, self.result.waiting[unit.name], failure, self._may_preempt, self.head or "")

    @staticmethod
    def shape_key(unit: Unit) -> tuple[object, ...]:
        """What makes two units fail alike within a cycle."""
        return (tuple(it.shape for it in unit.items), unit.priority, unit.all_or_nothing, unit.driver_pending)

    def shape_failed(self, unit: Unit) -> bool:
        """Did a unit asking for the same things already fail this cycle, with no room released since? (Then
        this one would fail the same way: `evaluate` answers it from `failed_shapes` too.) Queue limits are
        checked by `skip`, as for any parked unit."""
        return not self.holds.get(unit.name) and self.shape_key(unit) in self.failed_shapes

    def beyond_cluster(self, need: tuple[int, int, int]) -> str:
        """Why a gang needs more than all nodes together ('' when the cluster could hold it once empty)."""
        for resource, wanted, total in zip(("cpu", "memory", "gpu"), need, cluster_totals(self.state), strict=True):
            if wanted > total:
                return (f"it needs {amount(resource, wanted)} in all, more than the cluster's "
                        f"{amount(resource, total)}: it can never start, so it holds no room")
        return ""

    def beyond_queue(self, queue: str, need: tuple[int, int, int]) -> str:
        """Why a gang needs more than its queue's (or an ancestor's) maximum even when the queue is empty."""
        for name in self.book.path(queue):
            maximum = self.book.queue(name).maximum
            for resource, wanted in zip(RESOURCES, need, strict=True):
                cap = maximum.get(resource)
                if cap is not None and wanted > cap:
                    return (f"it needs {amount(resource, wanted)}, more than queue {name}'s {resource} maximum "
                            f"({amount(resource, cap)}): it can never start")
        return ""

    def wait(self, unit: Unit, state: str, failure: Failure | None, detail: str, victims: int = 0) -> Explanation:
        exp = explain(unit, state, failure, self.state.size, detail, victims)
        self.result.waiting[unit.name] = exp
        if self.retry is not None and self._current is not None:
            self.tried[unit.name] = Tried(self._current, unit, exp, failure, self._may_preempt, self.head or "")
        return exp

    def commit(self, unit: Unit, placed: Placed) -> None:
        new_res: list[Reservation] = []
        for key, item, placement in placed:
            if item.pod is None and self.retry is not None:  # a bound pod is noted by `_bind`
                self.retry.note_allocation(placement.node, unit.priority)
            if item.pod is not None:
                self._bind(item.pod, placement, unit.queue, "admission" if unit.all_or_nothing else "place")
                if item.pod.role is Role.EXECUTOR and unit.gang:
                    self.bound_now[unit.gang] = self.bound_now.get(unit.gang, 0) + 1
            else:
                slot = ReservedSlot(self.state.nodes[placement.node].name, placement.gpus, item.request,
                                    self.now + self.ttl)
                new_res.append(Reservation(key, unit.gang, item, slot, unit.queue))
                self.book.add(unit.queue, usage_on(self.state, item.request, placement.node))
        if unit.gang and unit.driver_pending and unit.all_or_nothing:
            self.m.admitted[unit.gang] = self.now
            self.result.admitted.append(Admission(unit.gang, unit.queue, max(0.0, self.now - unit.created_at)))
        if new_res:
            self.m.reservations.setdefault(unit.gang, []).extend(new_res)
            log.info("event=admit gang=%s queue=%s reserved=%d", unit.gang, unit.queue, len(new_res))
        self.m.plans.pop(unit.name, None)

    def plan_slots(self, plan: Plan) -> list[tuple[int, tuple[int, ...]]]:
        """A plan's slots as node indices; a slot whose node has gone is left out."""
        index = self.state.index
        return [(index[node], gpus) for node, gpus in plan.slots if node in index]

    def rehold(self, name: str, plan: Plan) -> None:
        """Hold the free part of every planned slot of a waiting preemptor."""
        keys = []
        for n, ((node_name, gpus), req) in enumerate(zip(plan.slots, plan.requests, strict=True)):
            node = self.state.index.get(node_name)
            if node is None:
                continue
            key = self.placer.hold_slot(f"~hold/{name}/{n}", node, req, gpus)
            if key:
                keys.append(key)
        self.holds[name] = keys

    def victim_inputs(self) -> tuple[dict[str, list[str]], set[str]]:
        """Reservations (per gang) and pods being evicted, as the victim index reads them."""
        if self._victim_inputs is not None:
            return self._victim_inputs
        return {g: [r.key for r in rs] for g, rs in self.m.reservations.items()}, set(self.m.evicting)

    def preempt(self, unit: Unit, keys: list[str]) -> bool:
        if self.victims is None:  # built once per cycle, on the first preemption attempt
            reservations, skip = self.victim_inputs()
            lone_bound = [p for p in self.bound if not p.gang or p.gang not in self.views]
            self.victims = VictimIndex(self.state, gang_victims(self.state, self.views, reservations, skip),
                                       lone_bound, skip)
        book = self.book
        self._may_preempt = True  # new lower-priority work may give it victims later
        reclaiming = book.may_reclaim(unit.queue, unit.need(), unit_models(unit))
        if self.victims.lowest is None or (self.victims.lowest >= unit.priority and not reclaiming):
            return False
        evicting = self.m.evicting

        fresh = {a.gang for a in self.result.admitted}  # admitted this cycle: never undone in the same cycle

        def gone(g: VictimGroup) -> bool:  # the index holds no pod evicting when it was built; a plan marks its own
            return g.evicted or g.name in fresh

        def borrowed(g: VictimGroup) -> bool:  # reclaim: another queue's work (its guarantee is checked apart)
            return not book.shares_path(g.queue, unit.queue)

        # Pods already evicted for this unit are as good as gone for its plan; those evicted for another
        # preemptor stay: their room is promised (counting it free let every later preemptor plan on it).
        parked = [(k, *self.state.allocations[k]) for k, (owner, _) in evicting.items()
                  if owner == unit.name and k in self.state.allocations]
        for k, _, _ in parked:
            self.state.release(k)
        try:
            plan = plan_preemption(self.state, book, self.victims, unit.priority, self.placer, unit.items,
                                   keys, gone, unit.queue, borrowed if reclaiming else None)
        finally:
            for k, req, placement in reversed(parked):
                self.state.allocate(k, req, placement)
        if plan is None:
            return False
        victims: set[str] = set()
        for group in plan.victims:
            group.evicted = True
            for pod in group.pods:
                if group.priority < unit.priority:
                    reason = f"preempted by {unit.name} (priority {unit.priority} > {group.priority})"
                else:
                    reason = (f"reclaimed by {unit.name}: queue {unit.queue} is under its guarantee and queue "
                              f"{group.queue} uses more than its own")
                self.result.evictions.append(Eviction(pod.key, reason, unit.name))
                self.m.evicting[pod.key] = (unit.name, self.now)
                self.book.leave(group.queue, usage_on(self.state, pod.request, pod.node))
                victims.add(pod.key)
                log.info("event=preempt victim=%s for=%s victim_priority=%d priority=%d", pod.key, unit.name,
                         group.priority, unit.priority)
            if group.reservation_keys:
                gang_res = self.m.reservations.pop(group.name, [])
                for r in gang_res:
                    self._release(r.key)
                    self.book.add(r.queue, usage_on(self.state, r.item.request, r.slot.node), -1)
        names = [(self.state.nodes[node].name, gpus) for node, gpus in plan.slots]
        self.m.plans[unit.name] = Plan(names, [it.request for it in unit.items], victims,
                                         self.now + self.ttl)
        self.rehold(unit.name, self.m.plans[unit.name])
        self.failed_shapes.clear()
        self.shapes_forgotten += 1
        what = "lower-priority pods" if all(g.priority < unit.priority for g in plan.victims) else \
            "pods to reclaim borrowed capacity"
        self.wait(unit, "preempting", None, f"preempting {len(victims)} {what}", victims=len(victims))
        return True

    # -- extras ------------------------------------------------------------------------------------
    def place_extras(self) -> None:
        for view, pod in sorted(self.extras, key=lambda vp: (-vp[0].priority, vp[1].created_at, vp[1].name)):
            if self.book.over_maximum(view.queue, usage_of(pod.request)):
                continue
            item = open_item(self.book, view.queue, pod_item(pod), self.state)
            if item is None:
                continue
            placement = self.placer.choose(item)
            if placement is not None and self.placer.allocate(pod.key, pod.request, placement):
                self._bind(pod, placement, view.queue, "extra")

    def finish(self) -> None:
        head, hold = self.head, self._head_hold
        quiet = hold is not None and self.state.version == hold[1]  # nothing changed the state since its hold
        for name in list(self.holds):
            self.release_holds(name)
        if self.retry is not None:
            self.retry.no_plan.clear()
            if quiet and hold is not None and head is not None:
                self.retry.no_plan[head] = NoPlan(hold[0], self.state.version, self.state.schedulable.copy(),
                                                  self.filters.usable.copy(), frozenset(self.m.evicting))
        self.result.reservations = self.m.reservation_slots()
        book = self.book
        for name in list(book.queues):
            book.path(name)  # declared queues show even when empty
        self.result.queues = {name: QueueUsage(book.used(name), book.dominant_share(name))
                              for name in sorted(set(book.queues) | set(book.usage))}
        self.result.totals = book.totals.triple()
