"""The pure scheduling core: snapshot in, decisions out.

    from bigk.scheduler import Scheduler, Snapshot

    sched = Scheduler("bigk")                      # keep one per process: it holds reservations
    result = sched.cycle(Snapshot(nodes, pods, queues, gangs), now=time.time())
    for b in result.binds: ...                     # bind b.pod_key to b.node, GPUs b.gpus
    for e in result.evictions: ...                 # evict e.pod_key (e.reason names e.for_gang)
    for gang, why in result.waiting.items(): ...   # why.message: one line for Events, API, CLI

Bound pods in the snapshot carry `node` (and `gpus`); pending pods do not. The
scheduler never reads a clock or does I/O; see `bigk.scheduler.core` for the
decisions of one cycle.
"""

from bigk.scheduler.core import Scheduler
from bigk.scheduler.types import Bind, CycleResult, Eviction, Explanation, ReservedSlot, Snapshot

__all__ = ["Bind", "CycleResult", "Eviction", "Explanation", "ReservedSlot", "Scheduler", "Snapshot"]
