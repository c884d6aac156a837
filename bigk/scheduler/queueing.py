"""Queue order and hierarchical fair share: which unit goes next, and what a queue may still take.

Queues form a tree (`Queue.parent`; a name not declared is a queue of its own at
the top, weight 1, no guarantee or maximum). Usage is counted at every level: a
parent uses what its subtree uses (bound pods and reservations).

Order: priority first; then, level by level from the top of the tree, queues
still below their guarantee before the others, and among those the smaller
dominant resource share (the largest of the queue's CPU, memory and GPU shares
of the cluster) divided by the weight; then age; then name, so that equal inputs
always give the same order. Usage is updated as the cycle admits work, so queues
interleave.

Limits, checked at every level of a queue's path: its maximum; its guarantee when
it may not borrow (`borrow: false`); and room kept for the unused guarantee of a
queue elsewhere in the tree that does not lend (`lend: false`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from bigk.cluster.model import Queue
from bigk.scheduler.units import RESOURCES, Unit

Usage = tuple[int, int, int]
MAX_DEPTH = 16  # deeper trees (or parent loops the spec layer missed) are cut here


@dataclass(frozen=True)
class Limit:
    """A queue limit that admitting some work would break."""

    queue: str  # the queue whose limit it is (the unit's queue or an ancestor, or a queue that does not lend)
    resource: str  # "cpu" | "memory" | "gpu"
    limit: int  # in the resource's unit (milli-CPU, MiB, milli-GPU)
    kind: str  # "maximum" | "guarantee" (borrow: false) | "lend" (room kept for another queue)


class QueueBook:
    """Per-queue usage (at every level of the tree) against weights, guarantees and maxima."""

    def __init__(self, queues: dict[str, Queue], totals: Usage) -> None:
        self.queues = queues
        self.totals = totals
        self.usage: dict[str, list[int]] = {}  # per queue, its whole subtree
        self.leaving: dict[str, list[int]] = {}  # held by pods being evicted: still running, soon gone
        self._paths: dict[str, tuple[str, ...]] = {}
        self._keepers: list[str] | None = None

    def queue(self, name: str) -> Queue:
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = Queue(name)
        return q

    def path(self, name: str) -> tuple[str, ...]:
        """The queue's ancestors from the top of the tree down to the queue itself."""
        cached = self._paths.get(name)
        if cached is not None:
            return cached
        chain = [name]
        q = self.queue(name)
        while q.parent and q.parent not in chain and len(chain) < MAX_DEPTH:
            chain.append(q.parent)
            q = self.queue(q.parent)
        out = tuple(reversed(chain))
        self._paths[name] = out
        return out

    def add(self, name: str, amount: Usage, sign: int = 1) -> None:
        for level in self.path(name):
            u = self.usage.setdefault(level, [0, 0, 0])
            for i in range(3):
                u[i] += sign * amount[i]

    def used(self, name: str) -> Usage:
        u = self.usage.get(name, [0, 0, 0])
        return u[0], u[1], u[2]

    def dominant_share(self, name: str) -> float:
        u = self.used(name)
        return max((u[i] / t if t else 0.0) for i, t in enumerate(self.totals))

    def below_guarantee(self, name: str) -> bool:
        q = self.queue(name)
        u = self.used(name)
        return any(u[i] < q.guaranteed.get(r, 0) for i, r in enumerate(RESOURCES))

    def over_maximum(self, name: str, need: Usage) -> Limit | None:
        """The first limit that taking `need` in queue `name` would break, or None."""
        for level in self.path(name):
            q = self.queue(level)
            u = self.used(level)
            for i, r in enumerate(RESOURCES):
                if need[i] <= 0:
                    continue
                cap = q.maximum.get(r)
                if cap is not None and u[i] + need[i] > cap:
                    return Limit(level, r, cap, "maximum")
                g = q.guaranteed.get(r)
                if not q.borrow and g is not None and u[i] + need[i] > g:
                    return Limit(level, r, g, "guarantee")
        return self._kept_room(name, need)

    def _kept_room(self, name: str, need: Usage) -> Limit | None:
        """Room other queues keep for their unused guarantee (`lend: false`) that `need` would take."""
        if self._keepers is None:
            self._keepers = sorted(n for n, q in self.queues.items() if not q.lend and q.guaranteed)
        if not self._keepers:
            return None
        mine = set(self.path(name))
        keepers = [k for k in self._keepers if k not in mine]
        # a keeper inside another keeper's subtree is covered by the outer one's guarantee
        outer = [k for k in keepers if not any(a in keepers for a in self.path(k)[:-1])]
        if not outer:
            return None
        in_use = [0, 0, 0]
        for top in {self.path(n)[0] for n in self.usage}:
            for i, v in enumerate(self.used(top)):
                in_use[i] += v
        for i, r in enumerate(RESOURCES):
            if need[i] <= 0:
                continue
            kept = {k: max(0, self.queue(k).guaranteed.get(r, 0) - self.used(k)[i]) for k in outer}
            if in_use[i] + need[i] > self.totals[i] - sum(kept.values()):
                holder = max(kept, key=lambda k: (kept[k], k))
                if kept[holder] > 0:
                    return Limit(holder, r, self.queue(holder).guaranteed[r], "lend")
        return None

    def leave(self, name: str, amount: Usage) -> None:
        """Record usage that evictions already issued will free."""
        for level in self.path(name):
            u = self.leaving.setdefault(level, [0, 0, 0])
            for i in range(3):
                u[i] += amount[i]

    def protected(self, name: str, victim: Usage, taken: Mapping[str, Usage] | None = None,
                  preemptor: str = "") -> bool:
        """Would evicting `victim` from queue `name` cut into a guarantee?

        Checked for the victim's queue and each ancestor that is not also an
        ancestor of the preemptor's queue (moving room inside a subtree does not
        change what the subtree uses), after `taken` (victims already chosen, by
        queue) and the evictions already under way.
        """
        shared = set(self.path(preemptor)[:-1]) if preemptor else set()
        taken = taken or {}
        for level in self.path(name):
            if level in shared:
                continue
            q = self.queue(level)
            if not q.guaranteed:
                continue
            u = self.used(level)
            gone = self.leaving.get(level, [0, 0, 0])
            already = [0, 0, 0]
            for other, amount in taken.items():
                if level in self.path(other):
                    for i in range(3):
                        already[i] += amount[i]
            for i, r in enumerate(RESOURCES):
                g = q.guaranteed.get(r, 0)
                if g and victim[i] > 0 and u[i] - gone[i] - already[i] - victim[i] < g:
                    return True
        return False

    def may_reclaim(self, name: str, need: Usage) -> bool:
        """Is queue `name` under its guarantee, and would `need` keep it within it?

        Such a queue takes back capacity other queues borrowed (Volcano's reclaim),
        whatever their priority, but never from inside their own guarantee.
        """
        q = self.queue(name)
        u = self.used(name)
        guarded = [i for i, r in enumerate(RESOURCES) if need[i] > 0 and q.guaranteed.get(r, 0) > 0]
        return bool(guarded) and all(u[i] + need[i] <= q.guaranteed[RESOURCES[i]] for i in guarded)

    def shares_path(self, victim: str, preemptor: str) -> bool:
        """Is the victim's queue the preemptor's queue or one of its ancestors?"""
        return victim in self.path(preemptor)

    def key(self, unit: Unit) -> tuple[object, ...]:
        levels = []
        for level in self.path(unit.queue):
            q = self.queue(level)
            weight = q.weight if q.weight > 0 else 1e-9
            levels.append((not self.below_guarantee(level), self.dominant_share(level) / weight))
        return (-unit.priority, tuple(levels), unit.created_at, unit.name)


class UnitQueue:
    """Hands out units in queue order, re-reading fair share after every pick."""

    def __init__(self, units: list[Unit], book: QueueBook) -> None:
        self.book = book
        by_queue: dict[str, list[Unit]] = {}
        for u in units:
            by_queue.setdefault(u.queue, []).append(u)
        self._lanes = {q: deque(sorted(us, key=lambda u: (-u.priority, u.created_at, u.name)))
                       for q, us in sorted(by_queue.items())}

    def __bool__(self) -> bool:
        return any(self._lanes.values())

    def pop(self) -> Unit:
        best: tuple[object, ...] | None = None
        lane: deque[Unit] | None = None
        for d in self._lanes.values():
            if d:
                k = self.book.key(d[0])
                if best is None or k < best:
                    best, lane = k, d
        assert lane is not None
        return lane.popleft()
