"""The scheduler: one pure decision cycle over a snapshot (admit, allocate, preempt, backfill).

`Scheduler` keeps only what must survive between cycles: executor reservations
of admitted gangs (with their expiry), preemption plans and evictions in flight,
and an incrementally maintained `ClusterState`. It never reads a clock: `now`
is passed in.
"""

from __future__ import annotations

from bigk.scheduler.policies.base import Policy
from bigk.scheduler.types import CycleResult, Snapshot


class Scheduler:
    """Decides binds, evictions, reservations and explanations, one cycle at a time.

    policy: a registered policy name (`bigk.scheduler.policies.base.policy_names()`) or an instance.
    reservation_ttl_s: how long an admitted gang's executor reservations live if executors never come.
    stale_after_s: GPU readings older than this are treated as unknown (accounting alone decides).
    """

    def __init__(self, policy: str | Policy = "bigk", *, reservation_ttl_s: float = 300.0,
                 stale_after_s: float = 60.0) -> None:
        raise NotImplementedError("filled in by the next commit")

    def cycle(self, snapshot: Snapshot, now: float) -> CycleResult:
        """Run one cycle; the caller applies `binds` then `evictions`, in order."""
        raise NotImplementedError
