"""The scheduler: one pure decision cycle over a snapshot (admit, allocate, preempt, backfill).

`Scheduler` keeps only what must survive between cycles: executor reservations
of admitted gangs (with their expiry), preemption plans, evictions in flight,
and an incrementally maintained `ClusterState`. It never reads a clock: `now`
is passed in.

One cycle:
 1. bring the state in step with the snapshot (only the difference is applied);
 2. drop expired reservations, finished plans and evictions that completed;
 3. bind newly created executors into their gang's reservations (a gang whose
    driver runs but which this scheduler never admitted, after a restart or a
    leader change, gets its missing executors reserved again, as far as they fit);
 4. hold room for preemptors still waiting for their victims;
 5. take units in queue order (priority, fair share, age): admit what fits
    (all-or-nothing for gangs, reserving executors not yet created); a unit that
    does not fit may preempt lower-priority work; the first one that can neither
    fit nor preempt becomes the held head, and later units only backfill into
    what is left;
 6. place extra executors where room is left;
 7. release the cycle's holds, report reservations and explanations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from bigk.cluster.model import Pod, PodRequest, Role
from bigk.cluster.state import ClusterState, OvercommitError, Placement
from bigk.scheduler.explain import explain
from bigk.scheduler.filters import Filters
from bigk.scheduler.placement import Failure, Placed, Placer
from bigk.scheduler.policies.base import Policy, make_policy
from bigk.scheduler.preempt import VictimGroup, VictimIndex, plan_preemption, victim_groups
from bigk.scheduler.queueing import QueueBook, UnitQueue
from bigk.scheduler.sync import StateSync
from bigk.scheduler.types import Bind, CycleResult, Eviction, Explanation, ReservedSlot, Snapshot
from bigk.scheduler.units import (
    GangView,
    Item,
    Unit,
    cluster_totals,
    group_gangs,
    lone_unit,
    phantom_item,
    pod_item,
    usage_of,
)

log = logging.getLogger(__name__)


@dataclass
class _Reservation:
    key: str  # allocation key in the state, "~res/<gang>/<n>"
    gang: str
    item: Item  # the phantom executor it stands for
    slot: ReservedSlot
    queue: str


@dataclass
class _Plan:
    """A preemptor's intended places, held while its victims terminate."""

    slots: list[tuple[int, tuple[int, ...]]]
    requests: list[PodRequest]
    victims: set[str]
    expires_at: float


class Scheduler:
    """Decides binds, evictions, reservations and explanations, one cycle at a time.

    policy: a registered policy name (`bigk.scheduler.policies.base.policy_names()`) or an instance.
    reservation_ttl_s: how long an admitted gang's executor reservations (and a preemptor's plan)
        live if the executors never come (or the victims never leave).
    stale_after_s: GPU readings older than this are treated as unknown (accounting alone decides).
    workload_refresh_s: how often the policy is told the workload to expect (`Policy.observe_workload`,
        FGD's target distribution): the requests of every pod in the snapshot, refreshed after this many
        seconds or as soon as the number of pods has doubled. None leaves it to the caller. By default
        the scheduler does this when the policy is given by name, and leaves a policy instance alone
        (its owner, e.g. the simulator with a trace's workload, has configured it).
    seed: seeds a randomised policy (one with a `seed(int)` method); the scheduler itself draws no
        random numbers, so the same snapshots, `now`s and seed give the same decisions.
    """

    def __init__(self, policy: str | Policy = "bigk", *, reservation_ttl_s: float = 300.0,
                 stale_after_s: float = 60.0, workload_refresh_s: float | None | str = "auto",
                 seed: int | None = None) -> None:
        self.policy: Policy = make_policy(policy) if isinstance(policy, str) else policy
        reseed = getattr(self.policy, "seed", None)
        if seed is not None and callable(reseed):
            reseed(seed)  # randomised policies (e.g. `random`) draw from this seed
        self.reservation_ttl_s = reservation_ttl_s
        self.stale_after_s = stale_after_s
        if workload_refresh_s == "auto":
            workload_refresh_s = 600.0 if isinstance(policy, str) else None
        self.workload_refresh_s: float | None = None if workload_refresh_s is None else float(workload_refresh_s)
        self._observed: tuple[float, int] | None = None  # (when, how many pods)
        self._sync = StateSync()
        self._reservations: dict[str, list[_Reservation]] = {}
        self._plans: dict[str, _Plan] = {}
        self._evicting: dict[str, tuple[str, float]] = {}
        self._admitted: dict[str, float] = {}  # gangs admitted by this scheduler, and when
        self._displaced: list[_Reservation] = []
        self._seq = 0

    @property
    def state(self) -> ClusterState | None:
        """The accounted cluster after the last cycle (bound pods + reservations)."""
        return self._sync.state

    def reservations(self) -> dict[str, list[ReservedSlot]]:
        return {g: [r.slot for r in rs] for g, rs in self._reservations.items() if rs}

    # ---- the cycle ------------------------------------------------------------------------
    def cycle(self, snapshot: Snapshot, now: float) -> CycleResult:
        """Run one cycle; the caller applies `binds` then `evictions`, in order."""
        self._observe_workload(snapshot, now)
        views, bound, lone = group_gangs(snapshot.pods, snapshot.gangs)
        self._displaced = []
        state, rebuilt = self._sync.sync(snapshot.nodes, bound, self._make_room, _queue_lookup(views))
        run = _Cycle(self, snapshot, state, views, bound, lone, now)
        run.expire()
        if rebuilt:
            for rs in self._reservations.values():
                for r in rs:
                    self._displaced.append(r)
        run.replace_displaced()
        run.count_usage()
        run.fill_reservations()
        run.hold_plans()
        run.schedule_units()
        run.place_extras()
        run.finish()
        return run.result

    # ---- helpers used by the cycle ------------------------------------------------------------
    def _observe_workload(self, snapshot: Snapshot, now: float) -> None:
        """Refresh the policy's workload model (cheap, but it resets the policy's score caches)."""
        n = len(snapshot.pods)
        if self.workload_refresh_s is None or n == 0:
            return
        if self._observed is not None:
            at, seen = self._observed
            if now - at < self.workload_refresh_s and n < 2 * seen:
                return
        requests = [p.request for p in snapshot.pods]
        requests += [g.executor for g in snapshot.gangs.values() for _ in range(g.min_executors)]
        self.policy.observe_workload(requests)
        self._observed = (now, n)

    def _make_room(self, state: ClusterState, node: int) -> list[str]:
        """Release reservations on `node` so a pod bound by someone else can be accounted."""
        freed = []
        for rs in self._reservations.values():
            for r in rs:
                entry = state.allocations.get(r.key)
                if entry is not None and entry[1].node == node:
                    state.release(r.key)
                    self._displaced.append(r)
                    freed.append(r.key)
        return freed

    def _next_key(self, kind: str, name: str) -> str:
        self._seq += 1
        return f"~{kind}/{name}/{self._seq}"


def _queue_lookup(views: dict[str, GangView]) -> Callable[[Pod], str]:
    """A pod's queue: its gang's, when bigk knows the gang, else its own."""

    def queue_of(pod: Pod) -> str:
        view = views.get(pod.gang) if pod.gang else None
        return view.queue if view is not None else pod.queue

    return queue_of


class _Cycle:
    """The working data of one cycle (discarded at its end)."""

    def __init__(self, sched: Scheduler, snapshot: Snapshot, state: ClusterState, views: dict[str, GangView],
                 bound: list[Pod], lone: list[Pod], now: float) -> None:
        self.s = sched
        self.snapshot = snapshot
        self.state = state
        self.views = views
        self.bound = bound
        self.lone = lone
        self.now = now
        self.filters = Filters(state, now, sched.stale_after_s)
        self.placer = Placer(state, self.filters, sched.policy, now)
        self.book = QueueBook(dict(snapshot.queues), cluster_totals(state))
        self.result = CycleResult()
        self.holds: dict[str, list[str]] = {}  # unit name -> hold keys (released at cycle end)
        self.head: str | None = None
        self.bound_now: dict[str, int] = {}  # gang -> executors bound this cycle
        self.failed_shapes: dict[tuple[object, ...], Explanation] = {}
        self.extras: list[tuple[GangView, Pod]] = []
        self.victims: VictimIndex | None = None

    # -- bookkeeping ------------------------------------------------------------------------
    def expire(self) -> None:
        s, now = self.s, self.now
        for gang, rs in list(s._reservations.items()):
            view = self.views.get(gang)
            gone = view is None or view.driver is None
            keep = [] if gone else [r for r in rs if r.slot.expires_at > now]
            for r in rs:
                if r not in keep:
                    self.state.release(r.key)
                    log.info("event=reservation-dropped gang=%s node=%s reason=%s", gang, r.slot.node,
                             "gang-gone" if gone else "expired")
            if keep:
                s._reservations[gang] = keep
            else:
                del s._reservations[gang]
        s._displaced = [r for r in s._displaced if r in s._reservations.get(r.gang, [])]
        for gang in [g for g in s._admitted if g not in self.views]:
            del s._admitted[gang]
        waiting = {p.key for p in self.lone} | {g for g, v in self.views.items() if v.pending}
        for name, plan in list(s._plans.items()):
            if plan.expires_at <= now or name not in waiting:
                del s._plans[name]
        bound_keys = s._sync.present
        for key, (_, at) in list(s._evicting.items()):
            if key not in bound_keys or at + s.reservation_ttl_s <= now:
                del s._evicting[key]

    def replace_displaced(self) -> None:
        """Re-place reservations knocked out by a rebuild or by pods bound by others."""
        for r in self.s._displaced:
            rs = self.s._reservations.get(r.gang, [])
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
        self.s._displaced = []

    def count_usage(self) -> None:
        for queue, used in self.s._sync.usage.items():
            self.book.add(queue, (used[0], used[1], used[2]))
        for key in self.s._evicting:
            entry = self.s._sync.bound_entry(key)
            if entry is not None:
                self.book.leave(entry[3], usage_of(entry[2]))
        for rs in self.s._reservations.values():
            for r in rs:
                self.book.add(r.queue, usage_of(r.item.request))

    # -- executors into reservations ------------------------------------------------------------
    def fill_reservations(self) -> None:
        for gang, view in self.views.items():
            rs = self.s._reservations.get(gang)
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
                del self.s._reservations[gang]

    def _bind_into(self, pod: Pod, r: _Reservation) -> bool:
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
            placement = self.placer.choose(item)
        if placement is not None and self.placer.allocate(pod.key, pod.request, placement):
            self.book.add(r.queue, usage_of(r.item.request), -1)
            self._bind(pod, placement, r.queue, "reservation")
            return True
        if entry is not None:
            state.allocate(r.key, entry[0], entry[1])
        return False

    def _bind(self, pod: Pod, placement: Placement, queue: str, why: str) -> None:
        node = self.state.nodes[placement.node].name
        self.result.binds.append(Bind(pod.key, node, placement.gpus))
        self.s._sync.adopt(pod.key, node, placement.gpus, pod.request, queue)
        self.book.add(queue, usage_of(pod.request))
        log.info("event=bind pod=%s node=%s gpus=%s via=%s", pod.key, node,
                 ",".join(map(str, placement.gpus)), why)

    # -- preemptors' holds -------------------------------------------------------------------------
    def hold_plans(self) -> None:
        for name, plan in sorted(self.s._plans.items()):
            self.rehold(name, plan)

    def release_holds(self, name: str) -> None:
        for key in self.holds.pop(name, []):
            self.state.release(key)
        if name != self.head:
            return
        self.head = None

    # -- units --------------------------------------------------------------------------------------
    def build_units(self) -> list[Unit]:
        units: list[Unit] = []
        for pod in self.lone:
            units.append(lone_unit(pod))
        filled = {b.pod_key for b in self.result.binds}  # executors bound into reservations this cycle
        for gang, view in self.views.items():
            unknown_admission = view.driver is not None and bool(view.driver.node) and gang not in self.s._admitted
            if not view.pending and not (unknown_admission and view.info is not None):
                continue
            if view.info is None:
                units.extend(lone_unit(p, gang, view.queue, view.priority) for p in view.pending)
                continue
            info = view.info
            driver_pending = view.driver is not None and not view.driver.node
            admitted = (view.driver is not None and bool(view.driver.node)) or gang in self.s._reservations
            if view.driver is None:
                admitted = True
            # A gang admitted before this scheduler started (a restart, or a new leader) lost its
            # reservations: reserve its missing executors once more, as far as they fit.
            recovering = admitted and view.driver is not None and gang not in self.s._admitted
            if recovering:
                self.s._admitted[gang] = self.now
            bound_exec = len(view.bound_executors) + self.bound_now.get(gang, 0)
            reserved = len(self.s._reservations.get(gang, []))
            missing = max(0, info.min_executors - bound_exec - reserved)
            pending_exec = [p for p in view.pending_executors if p.key not in filled]
            core = pending_exec[:missing]
            self.extras.extend((view, p) for p in pending_exec[missing:])
            items: list[Item] = []
            if driver_pending:
                assert view.driver is not None
                items.append(pod_item(view.driver))
            items.extend(pod_item(p) for p in core)
            phantoms = 0
            if not admitted or recovering:
                phantoms = missing - len(core)
                items.extend(phantom_item(view) for _ in range(phantoms))
            if not items:
                continue
            created = info.created_at or (view.driver.created_at if view.driver else 0.0)
            units.append(Unit(gang, gang, info.queue, info.priority, created, items,
                              all_or_nothing=not admitted, driver_pending=driver_pending, phantoms=phantoms))
        return units

    def schedule_units(self) -> None:
        order = UnitQueue(self.build_units(), self.book)
        while order:
            self.evaluate(order.pop())

    def keys_for(self, unit: Unit) -> list[str]:
        return [it.pod.key if it.pod is not None else self.s._next_key("res", unit.gang) for it in unit.items]

    def evaluate(self, unit: Unit) -> None:
        had_holds = bool(self.holds.get(unit.name))
        self.release_holds(unit.name)
        if had_holds:
            self.failed_shapes.clear()
        need = unit.need()
        over = self.book.over_maximum(unit.queue, need)
        if over is not None:
            q = self.book.queue(unit.queue)
            self.wait(unit, "queue-maximum", None,
                      f"queue {unit.queue} would exceed its {over} maximum ({q.maximum[over]})")
            return
        # Units asking for exactly the same things fail the same way within a cycle (room only shrinks).
        shape = (tuple(it.shape for it in unit.items), unit.priority, unit.all_or_nothing, unit.driver_pending)
        if shape in self.failed_shapes:
            cached = self.failed_shapes[shape]
            self.result.waiting[unit.name] = replace(cached, gang=unit.name, queue=unit.queue)
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
        plan = self.s._plans.get(unit.name)
        if plan is not None:
            exact = self.placer.exact(unit.items, keys, plan.slots) if len(plan.slots) == len(unit.items) else None
            if exact is not None:
                self.commit(unit, exact)
                return
            if plan.victims & set(self.s._evicting):
                self.rehold(unit.name, plan)
                self.wait(unit, "preempting", failure,
                          f"waiting for {len(plan.victims & set(self.s._evicting))} preempted pods to terminate",
                          victims=len(plan.victims))
                return
        never = self.placer.never_fits(unit.items)
        if never is not None:
            fit, reasons = self.filters.reasons(never.request, never.selector, never.tolerations)
            self.wait(unit, "never-fits", Failure(unit.items.index(never), never, fit, reasons),
                      "no node could ever hold it")
            return
        if self.preempt(unit, keys):
            return
        if self.head is None:
            self.head = unit.name
            self.holds[unit.name] = self.placer.hold_unit(unit.items, f"~hold/{unit.name}")
            self.wait(unit, "held", failure, "head of the queue: room is held for it")
            return
        exp = self.wait(unit, "behind-head", failure, f"behind {self.head}, which holds room")
        self.failed_shapes[shape] = exp

    def wait(self, unit: Unit, state: str, failure: Failure | None, detail: str, victims: int = 0) -> Explanation:
        exp = explain(unit, state, failure, self.state.size, detail, victims)
        self.result.waiting[unit.name] = exp
        return exp

    def commit(self, unit: Unit, placed: Placed) -> None:
        new_res: list[_Reservation] = []
        for key, item, placement in placed:
            if item.pod is not None:
                self._bind(item.pod, placement, unit.queue, "admission" if unit.all_or_nothing else "place")
                if item.pod.role is Role.EXECUTOR and unit.gang:
                    self.bound_now[unit.gang] = self.bound_now.get(unit.gang, 0) + 1
            else:
                slot = ReservedSlot(self.state.nodes[placement.node].name, placement.gpus, item.request,
                                    self.now + self.s.reservation_ttl_s)
                new_res.append(_Reservation(key, unit.gang, item, slot, unit.queue))
                self.book.add(unit.queue, usage_of(item.request))
        if unit.gang and unit.driver_pending and unit.all_or_nothing:
            self.s._admitted[unit.gang] = self.now
        if new_res:
            self.s._reservations.setdefault(unit.gang, []).extend(new_res)
            log.info("event=admit gang=%s queue=%s reserved=%d", unit.gang, unit.queue, len(new_res))
        self.s._plans.pop(unit.name, None)

    def rehold(self, name: str, plan: _Plan) -> None:
        """Hold the free part of every planned slot of a waiting preemptor."""
        keys = []
        for n, ((node, gpus), req) in enumerate(zip(plan.slots, plan.requests, strict=True)):
            key = self.placer.hold_slot(f"~hold/{name}/{n}", node, req, gpus)
            if key:
                keys.append(key)
        self.holds[name] = keys

    def preempt(self, unit: Unit, keys: list[str]) -> bool:
        if self.victims is None:  # built once per cycle, on the first preemption attempt
            reservations = {g: [r.key for r in rs] for g, rs in self.s._reservations.items()}
            lone_bound = [p for p in self.bound if not p.gang or p.gang not in self.views]
            self.victims = VictimIndex(self.state, victim_groups(self.state, self.views, lone_bound, reservations,
                                                                 2**62, set(self.s._evicting)))
        if self.victims.lowest is None or self.victims.lowest >= unit.priority:
            return False
        evicting = self.s._evicting

        def gone(g: VictimGroup) -> bool:
            return any(p.key in evicting for p in g.pods)

        parked = [(k, *self.state.allocations[k]) for k in evicting if k in self.state.allocations]
        for k, _, _ in parked:
            self.state.release(k)
        try:
            plan = plan_preemption(self.state, self.book, self.victims, unit.priority, self.placer, unit.items,
                                   keys, gone)
        finally:
            for k, req, placement in reversed(parked):
                self.state.allocate(k, req, placement)
        if plan is None:
            return False
        victims: set[str] = set()
        for group in plan.victims:
            for pod in group.pods:
                reason = (f"preempted by {unit.name} (priority {unit.priority} > {group.priority})")
                self.result.evictions.append(Eviction(pod.key, reason, unit.name))
                self.s._evicting[pod.key] = (unit.name, self.now)
                self.book.leave(group.queue, usage_of(pod.request))
                victims.add(pod.key)
                log.info("event=preempt victim=%s for=%s victim_priority=%d priority=%d", pod.key, unit.name,
                         group.priority, unit.priority)
            if group.reservation_keys:
                gang_res = self.s._reservations.pop(group.name, [])
                for r in gang_res:
                    self.state.release(r.key)
                    self.book.add(r.queue, usage_of(r.item.request), -1)
        self.s._plans[unit.name] = _Plan(plan.slots, [it.request for it in unit.items], victims,
                                         self.now + self.s.reservation_ttl_s)
        self.rehold(unit.name, self.s._plans[unit.name])
        self.failed_shapes.clear()
        self.wait(unit, "preempting", None, f"preempting {len(victims)} lower-priority pods", victims=len(victims))
        return True

    # -- extras ------------------------------------------------------------------------------------
    def place_extras(self) -> None:
        for view, pod in sorted(self.extras, key=lambda vp: (-vp[0].priority, vp[1].created_at, vp[1].name)):
            if self.book.over_maximum(view.queue, usage_of(pod.request)) is not None:
                continue
            item = pod_item(pod)
            placement = self.placer.choose(item)
            if placement is not None and self.placer.allocate(pod.key, pod.request, placement):
                self._bind(pod, placement, view.queue, "extra")

    def finish(self) -> None:
        for name in list(self.holds):
            self.release_holds(name)
        self.result.reservations = self.s.reservations()
