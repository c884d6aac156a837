"""Queue order and fair share: which unit goes next, and what a queue may still take.

Order: priority first; then queues still below their guarantee; then the
queue's dominant resource share (the largest of its CPU, memory and GPU shares
of the cluster) divided by its weight, smallest first; then age; then name, so
that equal inputs always give the same order. Usage counts bound pods and
reservations and is updated as the cycle admits work, so queues interleave.
"""

from __future__ import annotations

from collections import deque

from bigk.cluster.model import Queue
from bigk.scheduler.units import RESOURCES, Unit

Usage = tuple[int, int, int]


class QueueBook:
    """Per-queue usage against weights, guarantees and maxima."""

    def __init__(self, queues: dict[str, Queue], totals: Usage) -> None:
        self.queues = queues
        self.totals = totals
        self.usage: dict[str, list[int]] = {}
        self.leaving: dict[str, list[int]] = {}  # held by pods being evicted: still running, soon gone

    def queue(self, name: str) -> Queue:
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = Queue(name)
        return q

    def add(self, name: str, amount: Usage, sign: int = 1) -> None:
        u = self.usage.setdefault(name, [0, 0, 0])
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

    def over_maximum(self, name: str, need: Usage) -> str | None:
        """The first resource whose maximum `need` would exceed, or None."""
        q = self.queue(name)
        u = self.used(name)
        for i, r in enumerate(RESOURCES):
            cap = q.maximum.get(r)
            if cap is not None and need[i] > 0 and u[i] + need[i] > cap:
                return r
        return None

    def leave(self, name: str, amount: Usage) -> None:
        """Record usage that evictions already issued will free."""
        u = self.leaving.setdefault(name, [0, 0, 0])
        for i in range(3):
            u[i] += amount[i]

    def protected(self, name: str, victim: Usage, already: Usage = (0, 0, 0)) -> bool:
        """Would evicting `victim` (after `already` from the same queue, and the evictions
        already under way) cut into the queue's guarantee?"""
        q = self.queue(name)
        u = self.used(name)
        gone = self.leaving.get(name, [0, 0, 0])
        for i, r in enumerate(RESOURCES):
            g = q.guaranteed.get(r, 0)
            if g and victim[i] > 0 and u[i] - gone[i] - already[i] - victim[i] < g:
                return True
        return False

    def key(self, unit: Unit) -> tuple[object, ...]:
        q = self.queue(unit.queue)
        weight = q.weight if q.weight > 0 else 1e-9
        return (-unit.priority, not self.below_guarantee(unit.queue), self.dominant_share(unit.queue) / weight,
                unit.created_at, unit.name)


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
