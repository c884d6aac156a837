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

from collections.abc import Collection, Iterable, Mapping

import numpy as np

from bigk.cluster.model import Pod
from bigk.cluster.state import ClusterState
from bigk.scheduler.cycle import Cycle, queue_lookup
from bigk.scheduler.memory import Memory
from bigk.scheduler.policies.base import Policy, make_policy
from bigk.scheduler.retry import DEFAULT_MAX_PARKED_S, RetryFilter
from bigk.scheduler.tracker import Delta, PodTracker
from bigk.scheduler.types import CycleResult, ReservedSlot, Snapshot
from bigk.scheduler.units import group_gangs


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
    retry_filter: skip waiting units that nothing relevant has changed for (`bigk.scheduler.retry`);
        False tries every waiting unit every cycle. `max_parked_s` is its backoff timer: a parked
        unit is tried again at least this often.
    """

    def __init__(self, policy: str | Policy = "bigk", *, reservation_ttl_s: float = 300.0,
                 stale_after_s: float = 60.0, workload_refresh_s: float | None | str = "auto",
                 seed: int | None = None, retry_filter: bool = True,
                 max_parked_s: float = DEFAULT_MAX_PARKED_S) -> None:
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
        self._model_epoch = 0  # bumped whenever the policy's workload model is refreshed
        self.memory = Memory()
        self.retry: RetryFilter | None = RetryFilter(max_parked_s) if retry_filter else None
        self._last_binds: set[str] = set()
        self.tracker = PodTracker()  # the snapshot's pods grouped across cycles (with the retry filter)

    @property
    def state(self) -> ClusterState | None:
        """The accounted cluster after the last cycle (bound pods + reservations)."""
        return self.memory.sync.state

    def reservations(self) -> dict[str, list[ReservedSlot]]:
        """Executor reservations held now, per gang."""
        return self.memory.reservation_slots()

    # ---- the cycle ------------------------------------------------------------------------
    def cycle(self, snapshot: Snapshot, now: float) -> CycleResult:
        """Run one cycle; the caller applies `binds` then `evictions`, in order."""
        self._observe_workload(snapshot, now)
        memory = self.memory
        memory.displaced = []
        delta: Delta | None = None
        if self.retry is None:  # every pod grouped and every bound pod compared, every cycle
            views, bound, lone_pods = group_gangs(snapshot.pods, snapshot.gangs)
            lone: Mapping[str, Pod] = {p.key: p for p in lone_pods}
            state, rebuilt = memory.sync.sync(snapshot.nodes, bound, memory.make_room, queue_lookup(views))
            bound_pods: Collection[Pod] = bound
        else:  # only what changed since the last snapshot
            tracker = self.tracker
            delta = tracker.update(snapshot.pods, snapshot.gangs, self._last_binds)
            views, lone, bound_pods = tracker.views, tracker.lone, tracker.bound.values()
            state, rebuilt, fresh = memory.sync.sync_changes(snapshot.nodes, tracker.bound, delta, memory.make_room,
                                                             queue_lookup(views))
            self.retry.begin(rebuilt, snapshot.queues, self._model_epoch, state.size,
                             self._nodes_of([k for k in fresh if k not in self._last_binds], state))
            if delta.victims:
                self.retry.no_plan.clear()
        run = Cycle(memory, self.policy, self.reservation_ttl_s, self.stale_after_s, snapshot, state, views,
                    bound_pods, lone, now, self.retry)
        if delta is not None:
            run.first_seen = self.tracker.first_seen
        reserved_at_start = frozenset(memory.reservations)
        run.expire()
        if rebuilt:  # every reservation must be accounted again
            for rs in memory.reservations.values():
                memory.displaced.extend(rs)
        run.replace_displaced()
        run.count_usage()
        run.fill_reservations()
        run.hold_plans()
        run.schedule_units(delta, reserved_at_start)
        run.place_extras()
        run.finish()
        self._last_binds = {b.pod_key for b in run.result.binds}
        return run.result

    def _nodes_of(self, fresh: Iterable[str], state: ClusterState) -> np.ndarray:
        """Nodes of pods bound since the last snapshot that this scheduler did not bind (of any priority)."""
        sync = self.memory.sync
        rows = []
        for key in fresh:
            entry = sync.bound_entry(key)
            if entry is not None and entry.node in state.index:
                rows.append(state.index[entry.node])
        return np.array(rows, dtype=np.int64)

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
        self._model_epoch += 1
