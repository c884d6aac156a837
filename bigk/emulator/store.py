"""Object storage with one global resourceVersion and a window of watch events.

The store is the emulator's etcd: it keeps every object by (resource, namespace,
name), stamps each change with the next resourceVersion, and remembers the last
`window` changes per resource so that watches can replay from a version. A watch
asking for a version older than the window gets 410 Gone, as from a compacted
etcd. It is thread-safe: HTTP handlers, the simulated kubelet and tests call it
from different threads.
"""

from __future__ import annotations

import bisect
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bigk.emulator.errors import already_exists, conflict, gone, not_found
from bigk.emulator.patches import clone
from bigk.emulator.resources import ResourceType, by_key

Obj = dict[str, Any]


_last_stamp: tuple[int, str] = (-1, "")


def rfc3339(ts: float | None = None) -> str:
    """Kubernetes timestamp format (second precision, UTC, 'Z'); the current second is formatted once."""
    global _last_stamp
    second = int(time.time() if ts is None else ts)
    cached = _last_stamp
    if cached[0] == second:
        return cached[1]
    text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _last_stamp = (second, text)
    return text


@dataclass
class WatchEvent:
    """One change to one object; `old` is the object before it (None on ADDED)."""

    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    obj: Obj
    old: Obj | None
    _line: bytes | None = field(default=None, repr=False)

    def line(self, obj: Obj | None = None, type_: str | None = None) -> bytes:
        """The JSON line a watch stream sends for this event (cached for the common case)."""
        if obj is None and type_ is None:
            if self._line is None:
                self._line = json.dumps({"type": self.type, "object": self.obj}, separators=(",", ":")).encode() + b"\n"
            return self._line
        return (
            json.dumps({"type": type_ or self.type, "object": obj or self.obj}, separators=(",", ":")).encode() + b"\n"
        )


class _Window:
    """The recent events of one resource, in resourceVersion order."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.events: list[WatchEvent] = []
        self.rvs: list[int] = []
        self.compacted_rv = 0  # events with rv <= this are gone

    def append(self, event: WatchEvent) -> None:
        self.events.append(event)
        self.rvs.append(event.rv)
        if len(self.events) > self.size + max(16, self.size // 4):
            self.trim(self.size)

    def trim(self, keep: int) -> None:
        drop = len(self.events) - keep
        if drop <= 0:
            return
        self.compacted_rv = max(self.compacted_rv, self.rvs[drop - 1])
        del self.events[:drop]
        del self.rvs[:drop]


Listener = Callable[[str, WatchEvent], None]


class Store:
    """All objects of the emulated cluster; see the module docstring."""

    def __init__(self, window: int = 10_000) -> None:
        self._lock = threading.RLock()
        self._rv = 0
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {}
        self._windows: dict[str, _Window] = {}
        self._window_size = window
        self._owners: dict[str, set[tuple[str, str, str]]] = {}  # owner uid -> dependents
        self._wakers: dict[str, set[Callable[[], None]]] = {}
        self._listeners: list[Listener] = []

    # ---- reading -------------------------------------------------------
    @property
    def resource_version(self) -> int:
        return self._rv

    def get(self, key: str, namespace: str, name: str) -> Obj | None:
        """The stored object (do not mutate it; use `read` for a private copy)."""
        return self._objects.get(key, {}).get((namespace, name))

    def read(self, key: str, namespace: str, name: str) -> Obj | None:
        """A private copy of one object, or None."""
        with self._lock:
            obj = self.get(key, namespace, name)
            return clone(obj) if obj is not None else None

    def objects(
        self, key: str, namespace: str | None = None, match: Callable[[Obj], bool] | None = None
    ) -> tuple[list[Obj], int]:
        """Objects of one resource sorted by (namespace, name), and the version they are current at."""
        with self._lock:
            bucket = self._objects.get(key, {})
            items = [
                obj
                for (ns, _), obj in sorted(bucket.items(), key=lambda kv: kv[0])
                if (namespace is None or ns == namespace) and (match is None or match(obj))
            ]
            return items, self._rv

    def dependents(self, owner_uid: str) -> list[tuple[str, str, str]]:
        """(resource key, namespace, name) of objects whose ownerReferences name `owner_uid`."""
        with self._lock:
            return sorted(self._owners.get(owner_uid, ()))

    # ---- writing -------------------------------------------------------
    def create(self, key: str, obj: Obj) -> Obj:
        """Store a new object; stamps uid, creationTimestamp, resourceVersion, generation."""
        meta = obj.setdefault("metadata", {})
        namespace, name = meta.get("namespace", ""), meta["name"]
        with self._lock:
            bucket = self._objects.setdefault(key, {})
            if (namespace, name) in bucket:
                rt = by_key(key)
                raise already_exists(rt.plural, name, rt.group)
            self._rv += 1
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = rfc3339()
            meta["resourceVersion"] = str(self._rv)
            meta.setdefault("generation", 1)
            bucket[(namespace, name)] = obj
            self._index_owners(key, None, obj)
            wakers = self._record(key, WatchEvent(self._rv, "ADDED", obj, None))
        self._after(key, wakers)
        return obj

    def _existing(self, key: str, namespace: str, name: str) -> tuple[dict[tuple[str, str], Obj], Obj, ResourceType]:
        """(the resource's bucket, the stored object, its type); 404 NotFound when there is none (hold the lock)."""
        bucket = self._objects.get(key, {})
        old = bucket.get((namespace, name))
        rt = by_key(key)
        if old is None:
            raise not_found(rt.plural, name, rt.group)
        return bucket, old, rt

    def update(self, key: str, obj: Obj, expected_rv: str | None = None) -> Obj:
        """Replace an object; 409 Conflict when `expected_rv` is not the stored version."""
        meta = obj["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        with self._lock:
            bucket, old, rt = self._existing(key, namespace, name)
            if expected_rv and expected_rv != old["metadata"]["resourceVersion"]:
                raise conflict(
                    rt.plural,
                    name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                    rt.group,
                )
            old_meta = old["metadata"]
            meta["uid"] = old_meta["uid"]
            meta["creationTimestamp"] = old_meta["creationTimestamp"]
            if old_meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = old_meta["deletionTimestamp"]
                meta["deletionGracePeriodSeconds"] = old_meta.get("deletionGracePeriodSeconds", 0)
            generation = old_meta.get("generation", 1)
            if obj.get("spec") != old.get("spec"):
                generation += 1
            meta["generation"] = generation
            if self._same(old, obj):
                return old  # a no-op update does not bump the version, as in Kubernetes
            self._rv += 1
            meta["resourceVersion"] = str(self._rv)
            bucket[(namespace, name)] = obj
            self._index_owners(key, old, obj)
            wakers = self._record(key, WatchEvent(self._rv, "MODIFIED", obj, old))
        self._after(key, wakers)
        return obj

    def remove(self, key: str, namespace: str, name: str, expected_uid: str | None = None) -> Obj:
        """Delete an object now; its DELETED event carries a fresh resourceVersion."""
        with self._lock:
            bucket, old, rt = self._existing(key, namespace, name)
            if expected_uid and old["metadata"]["uid"] != expected_uid:
                raise conflict(
                    rt.plural,
                    name,
                    f"Precondition failed: UID in precondition: {expected_uid}, "
                    f"UID in object meta: {old['metadata']['uid']}",
                    rt.group,
                )
            del bucket[(namespace, name)]
            self._rv += 1
            gone_obj = clone(old)
            gone_obj["metadata"]["resourceVersion"] = str(self._rv)
            self._index_owners(key, old, None)
            wakers = self._record(key, WatchEvent(self._rv, "DELETED", gone_obj, old))
        self._after(key, wakers)
        return gone_obj

    @staticmethod
    def _same(old: Obj, new: Obj) -> bool:
        """True when an update changes nothing but the version (cheap fields compared first)."""
        if old.keys() != new.keys():
            return False
        if any(old[k] != v for k, v in new.items() if k != "metadata"):
            return False
        a, b = new["metadata"], old["metadata"]
        if (a.keys() ^ b.keys()) - {"resourceVersion", "managedFields"}:
            return False
        return all(b.get(k) == v for k, v in a.items() if k not in ("resourceVersion", "managedFields"))

    def _index_owners(self, key: str, old: Obj | None, new: Obj | None) -> None:
        index_owners(self._owners, key, old, new)

    def _record(self, key: str, event: WatchEvent) -> tuple[WatchEvent, list[Callable[[], None]]]:
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window(self._window_size)
        window.append(event)
        return event, list(self._wakers.get(key, ()))

    def _after(self, key: str, recorded: tuple[WatchEvent, Iterable[Callable[[], None]]]) -> None:
        event, wakers = recorded
        for wake in wakers:
            wake()
        for listener in list(self._listeners):
            listener(key, event)

    # ---- watching ------------------------------------------------------
    def events_since(self, key: str, rv: int) -> list[WatchEvent]:
        """Events of one resource after version `rv`; 410 Gone when the window no longer reaches back."""
        with self._lock:
            window = self._windows.get(key)
            if window is None:
                return []
            if rv < window.compacted_rv:
                raise gone(f"too old resource version: {rv} ({window.compacted_rv + 1})")
            start = bisect.bisect_right(window.rvs, rv)
            return window.events[start:]

    def add_waker(self, key: str, wake: Callable[[], None]) -> None:
        with self._lock:
            self._wakers.setdefault(key, set()).add(wake)

    def remove_waker(self, key: str, wake: Callable[[], None]) -> None:
        with self._lock:
            self._wakers.get(key, set()).discard(wake)

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(resource_key, event)` after every change (in the changing thread)."""
        self._listeners.append(listener)

    def compact(self, key: str | None = None, keep: int = 0) -> None:
        """Forget watch history (all resources, or one), as etcd compaction does: older watches get 410."""
        with self._lock:
            for k, window in self._windows.items():
                if key is None or k == key:
                    window.trim(keep)
                    if keep == 0:
                        window.compacted_rv = self._rv


def index_owners(owners: dict[str, set[tuple[str, str, str]]], key: str, old: Obj | None, new: Obj | None) -> None:
    """Keep `owners` (owner uid -> (resource key, namespace, name) of its dependents) current across one change."""
    for obj, add in ((old, False), (new, True)):
        if obj is None:
            continue
        meta = obj["metadata"]
        ref = (key, meta.get("namespace", ""), meta["name"])
        for owner in meta.get("ownerReferences") or ():
            uid = owner.get("uid", "")
            if add:
                owners.setdefault(uid, set()).add(ref)
            else:
                deps = owners.get(uid)
                if deps is not None:
                    deps.discard(ref)
                    if not deps:
                        del owners[uid]
