"""The change feed behind the API's watch stream: one differ for every watcher, with resumable sequence numbers.

Each kind (runs, jobs, queue, nodes, gpus) has a source that lists its objects by name. While anybody
watches a kind (and for a while after the last watcher left, so a dropped client can resume), one thread
lists it every `interval_s`, compares with the previous listing and appends ADDED / MODIFIED / DELETED
events with a global, increasing sequence number to a bounded log. A client that reconnects with the
last sequence number it saw gets exactly the events after it; one that was away too long (the log
moved past it) is told to start over from a fresh listing, as a Kubernetes watch answers 410 Gone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Source = Callable[[], dict[str, dict[str, Any]]]
VOLATILE = frozenset({"wait_s", "reading_age_s"})  # change every second by themselves; not a change of the object


@dataclass(frozen=True)
class Change:
    """One event of the feed."""

    seq: int
    kind: str
    type: str  # ADDED, MODIFIED, DELETED
    name: str
    object: dict[str, Any]


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = (a.keys() | b.keys()) - VOLATILE
    return all(a.get(k) == b.get(k) for k in keys)


class ChangeFeed:
    """Lists watched kinds on one thread and keeps the last `history` changes for resuming watchers."""

    def __init__(self, sources: dict[str, Source], interval_s: float = 0.5, linger_s: float = 120.0,
                 history: int = 10_000, clock: Callable[[], float] = time.monotonic,
                 alive: Callable[[], bool] = lambda: True, every_s: dict[str, float] | None = None) -> None:
        self.sources = sources
        self._alive = alive  # False once the service stops: list nothing more
        self.interval_s = interval_s
        self.every_s = every_s or {}  # kinds that are dearer to list and change less often: listed less often
        self._polled: dict[str, float] = {}
        self.linger_s = linger_s
        self._clock = clock
        self._log: deque[Change] = deque(maxlen=history)
        self._seq = 0
        self._first_seq = 1  # the oldest sequence number the log can still replay from
        self._last: dict[str, dict[str, dict[str, Any]]] = {}
        self._watchers: dict[str, int] = {}
        self._last_seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    # ---- watchers ------------------------------------------------------------------------------

    def watch(self, kinds: Iterable[str]) -> None:
        """A watcher of `kinds` arrived: keep them listed, and start the thread if it sleeps."""
        with self._lock:
            for kind in kinds:
                self._watchers[kind] = self._watchers.get(kind, 0) + 1
                self._last_seen[kind] = self._clock()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="bigk-watch", daemon=True)
                self._thread.start()

    def unwatch(self, kinds: Iterable[str]) -> None:
        with self._lock:
            for kind in kinds:
                self._watchers[kind] = max(0, self._watchers.get(kind, 0) - 1)
                self._last_seen[kind] = self._clock()

    def stop(self) -> None:
        self._stopped.set()

    @property
    def seq(self) -> int:
        return self._seq

    # ---- reading -------------------------------------------------------------------------------

    def snapshot(self, kinds: Iterable[str]) -> tuple[int, dict[str, dict[str, dict[str, Any]]]]:
        """(sequence number, {kind: {name: object}}) as of that number; lists a kind not listed yet."""
        kinds = list(kinds)
        for kind in kinds:
            if kind not in self._last:
                self._poll(kind)
        with self._lock:
            return self._seq, {kind: dict(self._last.get(kind, {})) for kind in kinds}

    def since(self, seq: int, kinds: Iterable[str]) -> list[Change] | None:
        """Changes of `kinds` after `seq`; None when the log no longer reaches back that far."""
        wanted = set(kinds)
        with self._lock:
            if seq + 1 < self._first_seq or seq > self._seq:
                return None
            return [c for c in self._log if c.seq > seq and c.kind in wanted]

    def wait(self, seq: int, timeout: float) -> int:
        """Block until the sequence number passes `seq` or `timeout` elapses; returns the current number."""
        with self._changed:
            if self._seq <= seq:
                self._changed.wait(timeout)
            return self._seq

    # ---- listing -------------------------------------------------------------------------------

    def _active(self) -> list[str]:
        now = self._clock()
        with self._lock:
            return [k for k in self.sources
                    if self._watchers.get(k, 0) > 0 or now - self._last_seen.get(k, -1e18) < self.linger_s]

    def _run(self) -> None:
        while not self._stopped.is_set():
            if not self._alive():
                with self._lock:
                    self._thread = None
                return
            active = self._active()
            if not active:
                with self._lock:
                    if not self._active_locked():
                        self._thread = None
                        return
                continue
            now = self._clock()
            for kind in active:
                if now - self._polled.get(kind, -1e18) >= self.every_s.get(kind, self.interval_s) - 1e-3:
                    self._polled[kind] = now
                    self._poll(kind)
            self._stopped.wait(self.interval_s)

    def _active_locked(self) -> bool:
        now = self._clock()
        return any(self._watchers.get(k, 0) > 0 or now - self._last_seen.get(k, -1e18) < self.linger_s
                   for k in self.sources)

    def _poll(self, kind: str) -> None:
        with self._poll_lock:
            try:
                current = self.sources[kind]()
            except Exception as exc:  # the API server hiccups: the next listing will catch up
                log.debug("event=watch_list_failed kind=%s error=%r", kind, str(exc)[:200])
                return
            with self._changed:
                previous = self._last.get(kind)
                self._last[kind] = current
                if previous is None:
                    return  # the first listing is the baseline: watchers get it as a snapshot
                changes = []
                for name, obj in current.items():
                    old = previous.get(name)
                    if old is None:
                        changes.append(("ADDED", name, obj))
                    elif not _same(old, obj):
                        changes.append(("MODIFIED", name, obj))
                changes += [("DELETED", name, obj) for name, obj in previous.items() if name not in current]
                for type_, name, obj in changes:
                    self._seq += 1
                    if len(self._log) == self._log.maxlen:
                        self._first_seq = self._log[0].seq + 1
                    self._log.append(Change(self._seq, kind, type_, name, obj))
                if changes:
                    self._changed.notify_all()
