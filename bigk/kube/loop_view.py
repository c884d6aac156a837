"""What the scheduling loop publishes after each cycle for other threads: one immutable `LoopView`.

The loop thread owns the scheduler's state (the accounted cluster, reservations) and
changes it every cycle; no other thread reads it. After a cycle the loop builds a new
`LoopView` from that cycle's result and swaps one reference (`SchedulerLoop.view()`),
so a reader always sees one whole cycle, never a half-updated one. `cluster` is a
copy of the accounted cluster, taken on the loop thread at most every
`SchedulerLoop(cluster_view_s=...)` seconds, and never when that is None (the
default: only `bigk serve`'s cluster metrics read it, so nobody else pays for it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from bigk.cluster.state import ClusterState
from bigk.scheduler.types import Explanation, QueueUsage


@dataclass(frozen=True)
class LoopView:
    """The scheduler loop's state after its last cycle, read-only.

    explanations: why each waiting gang (or lone pod, by "namespace/name") waits, in the order of the
        cycle's queue (the order the scheduler takes them).
    queue_usage: every queue's usage (its whole subtree: bound pods plus reservations).
    totals: the cluster's (CPU milli, memory MiB, milli-GPU), what the shares are of.
    cluster: a copy of the accounted cluster (None until the first copy, or when not asked for);
        its reader owns it (it may fill the copy's caches).
    cycles: cycles done when this view was published.
    """

    explanations: Mapping[str, Explanation] = field(default_factory=lambda: MappingProxyType({}))
    queue_usage: Mapping[str, QueueUsage] = field(default_factory=lambda: MappingProxyType({}))
    totals: tuple[int, int, int] = (0, 0, 0)
    cluster: ClusterState | None = None
    cycles: int = 0

    def explanation(self, gang: str) -> str | None:
        """The one-line explanation of a waiting gang, None when it has none."""
        found = self.explanations.get(gang) if gang else None
        return found.message if found is not None and found.message else None


EMPTY_VIEW = LoopView()

