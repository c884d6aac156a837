"""List-then-watch informers that keep a cache current through anything the API throws.

One informer follows one resource: it lists (in pages), hands the full set to
its handler, then watches from the list's resourceVersion with bookmarks and a
server-side timeout. A watch that ends is resumed from the last resourceVersion
seen (events and bookmarks both advance it); a 410 Gone means that version is
too old, so it lists again; any other failure backs off (exponential, jittered)
and resumes. Stop is prompt: it closes the open watch connection.

An API server can also *forget*: etcd restored from a backup, a control plane
rebuilt, or the embedded emulator restarted. Its resource versions then start
again below ours, and a watch resumed from our version would wait for changes
that never come (or the server answers "too large resource version"). So before
resuming after any watch end or failure the informer asks the server for its
current version with a one-item list; a version below ours, no answer at all
(the server may come back as another one), an event whose version goes
backwards, a "too large" answer, or a watch that stays open past its own
timeout all lead to a fresh full list, which the handler receives as a
whole replacement (the cache then drops pods and assumptions that are gone).

`healthy` says whether the cache is current: set by a list or a probe that succeeded,
cleared by any failure and by a server that forgot, so a reader can fall back to asking
the server itself meanwhile. With `decode`, objects are built from their JSON by that
function instead of the client's models (a reader that needs a few fields of thousands
of pods).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from bigk.kube.retry import Backoff, is_transient, status_of

log = logging.getLogger(__name__)

LIST_PAGE = 500
WATCH_GRACE_S = 15.0  # a watch still open this long past its timeoutSeconds is abandoned


class Handler(Protocol):
    """Where an informer delivers what it sees."""

    def replace(self, items: list[Any]) -> None: ...

    def upsert(self, obj: Any) -> None: ...

    def delete(self, obj: Any) -> None: ...


@dataclass
class CallbackHandler:
    """A Handler made of three functions (e.g. a ClusterCache's replace_pods/upsert_pod/delete_pod)."""

    on_replace: Callable[[Iterable[Any]], None]
    on_upsert: Callable[[Any], None]
    on_delete: Callable[[Any], None]

    def replace(self, items: list[Any]) -> None:
        self.on_replace(items)

    def upsert(self, obj: Any) -> None:
        self.on_upsert(obj)

    def delete(self, obj: Any) -> None:
        self.on_delete(obj)


@dataclass
class InformerStats:
    lists: int = 0
    relists_gone: int = 0
    watches: int = 0
    events: int = 0
    bookmarks: int = 0
    errors: int = 0
    probes: int = 0  # one-item lists that check the server still knows our resource version
    relists_forgot: int = 0  # fresh lists because the server's versions went backwards (state lost)
    silent_watches: int = 0  # watches abandoned for staying open past their own timeout


class Informer:
    """Follows one list function (e.g. `CoreV1Api.list_pod_for_all_namespaces`) into a handler."""

    def __init__(self, name: str, list_fn: Callable[..., Any], handler: Handler, *,
                 watch_timeout_s: int = 300, request_timeout_s: float = 30.0,
                 backoff: Backoff | None = None, list_kwargs: dict[str, Any] | None = None,
                 decode: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.name = name
        self._list_fn = list_fn
        self._handler = handler
        self._watch_timeout_s = watch_timeout_s
        self._request_timeout_s = request_timeout_s
        self._backoff = backoff or Backoff(base_s=0.2, cap_s=10.0)
        self._list_kwargs = dict(list_kwargs or {})
        self._decode = decode
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._watch: watch.Watch | None = None
        self._thread: threading.Thread | None = None
        self.resource_version: str | None = None
        self.stats = InformerStats()
        self._verify = False  # True after a watch ended: check the server still knows our version
        self._uids: dict[str, str] = {}  # namespace/name -> uid of every object seen: tells a recreated one
        self.last_relist_reason = ""
        self.healthy = False  # the cache is current: listed, or the server confirmed our version since a failure

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> Informer:
        self._thread = threading.Thread(target=self.run, name=f"informer-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        current = self._watch
        if current is not None:
            current.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        """True once the first full list has been delivered."""
        return self._synced.wait(timeout)

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    # ---- the loop -------------------------------------------------------------------------
    def run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                if self.resource_version is None:
                    self._list()
                elif self._verify:
                    try:
                        self._probe()
                    except Exception:
                        # Unreachable (or failing) right after a watch ended: it may come back as a
                        # different server, with any state. List afresh once it answers again.
                        self.resource_version = None
                        self.last_relist_reason = "the API server did not answer after a watch ended"
                        raise
                    if self.resource_version is None:
                        continue
                self._verify = False
                progressed = self._watch_once()
                self._verify = True
                failures = 0 if progressed else failures + 1
                if not progressed:
                    self._pause(failures)
            except ApiException as exc:
                self._verify = True
                self.healthy = False
                if status_of(exc) == 410:
                    self.stats.relists_gone += 1
                    log.info("event=watch_expired informer=%s rv=%s action=relist", self.name, self.resource_version)
                    self.resource_version = None
                    continue
                if _too_large(exc):
                    self._forgot(f"the server has not reached our resource version {self.resource_version}")
                    continue
                failures += 1
                self._failed(exc, failures)
            except Exception as exc:
                self._verify = True
                self.healthy = False
                if self._stop.is_set():
                    break
                failures += 1
                self._failed(exc, failures)
        log.debug("event=informer_stopped informer=%s", self.name)

    def _forgot(self, why: str) -> None:
        """The server no longer has the history our resource version points into: list afresh."""
        self.stats.relists_forgot += 1
        self.healthy = False
        self.last_relist_reason = why
        log.warning("event=api_server_forgot informer=%s rv=%s reason=%r action=relist", self.name,
                    self.resource_version, why)
        self.resource_version = None

    def _probe(self) -> None:
        """A one-item list: the server's current version must not be below the one we resume from."""
        self.stats.probes += 1
        items, _, current = self._list_page(dict(self._list_kwargs, limit=1, _request_timeout=self._request_timeout_s))
        if older_version(current, self.resource_version):
            self._forgot(f"resource version went back from {self.resource_version} to {current}")
            return
        # The version may have caught up since the server forgot; an object we know that is now another
        # object (new uid) at a version we have already seen cannot come from the history we followed.
        first = (items or [None])[0]
        meta = getattr(first, "metadata", None)
        if meta is not None and meta.uid:
            known = self._uids.get(_key(meta))
            if known and known != meta.uid and not older_version(self.resource_version, meta.resource_version):
                self._forgot(f"{_key(meta)} is another object (uid {meta.uid}) at version "
                             f"{meta.resource_version}, not after ours {self.resource_version}")
                return
        self.healthy = True

    def _failed(self, exc: Exception, failures: int) -> None:
        self.stats.errors += 1
        level = logging.INFO if is_transient(exc) else logging.ERROR
        log.log(level, "event=informer_error informer=%s status=%s error=%s failures=%d", self.name,
                status_of(exc), type(exc).__name__, failures)
        self._pause(failures)

    def _pause(self, failures: int) -> None:
        self._stop.wait(self._backoff.delay(min(failures, 10)) + 0.01)

    def _list_page(self, kwargs: dict[str, Any]) -> tuple[list[Any], str | None, str | None]:
        """One page of the list: its objects, the continue token and the list's resource version."""
        if self._decode is None:
            result = self._list_fn(**kwargs)
            meta = result.metadata or client.V1ListMeta()
            return list(result.items or []), meta.var_continue, meta.resource_version
        response: Any = self._list_fn(_preload_content=False, **kwargs)  # urllib3 response: JSON for `decode`
        try:
            body = json.loads(response.data)
        finally:
            response.release_conn()
        meta_json = body.get("metadata") or {}
        return ([self._decode(item) for item in body.get("items") or []], meta_json.get("continue"),
                meta_json.get("resourceVersion"))

    def _list(self) -> None:
        items: list[Any] = []
        cont: str | None = None
        while True:
            kwargs = dict(self._list_kwargs, limit=LIST_PAGE, _request_timeout=self._request_timeout_s)
            if cont:
                kwargs["_continue"] = cont
            page, cont, version = self._list_page(kwargs)
            items.extend(page)
            if not cont:
                break
        self._handler.replace(items)
        self._uids = {_key(m): m.uid for m in (i.metadata for i in items) if m is not None and m.uid}
        self.resource_version = version
        self.healthy = True
        self._verify = False
        self.stats.lists += 1
        self._synced.set()
        log.info("event=listed informer=%s items=%d rv=%s", self.name, len(items), self.resource_version)

    def _watch_once(self) -> bool:
        """Watch until the server ends it; True if it delivered anything or ran its course."""
        started = time.monotonic()
        delivered = 0
        w = watch.Watch() if self._decode is None else _DecodingWatch(self._decode)
        self._watch = w
        self.stats.watches += 1
        try:
            if self._stop.is_set():
                return True
            stream = w.stream(self._list_fn, resource_version=self.resource_version, allow_watch_bookmarks=True,
                              timeout_seconds=self._watch_timeout_s,
                              _request_timeout=(self._request_timeout_s, self._watch_timeout_s + 15),
                              **self._list_kwargs)
            overdue = started + self._watch_timeout_s + WATCH_GRACE_S
            for event in stream:
                if self._stop.is_set():
                    break
                delivered += 1
                if older_version(w.resource_version, self.resource_version):
                    self._forgot(f"an event's resource version {w.resource_version} is below "
                                 f"{self.resource_version}")
                    break
                self._deliver(event)
                if w.resource_version:
                    self.resource_version = w.resource_version
                if time.monotonic() > overdue:  # the server did not end it: do not trust it to be alive
                    self.stats.silent_watches += 1
                    log.warning("event=watch_overdue informer=%s timeout_s=%s action=verify", self.name,
                                self._watch_timeout_s)
                    break
        finally:
            self._watch = None
            w.stop()
        return delivered > 0 or time.monotonic() - started >= min(1.0, self._watch_timeout_s / 2)

    def _deliver(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object")
        if kind == "BOOKMARK":
            self.stats.bookmarks += 1
            return
        self.stats.events += 1
        meta = getattr(obj, "metadata", None)
        if meta is not None and meta.uid:
            if kind == "DELETED":
                self._uids.pop(_key(meta), None)
            else:
                self._uids[_key(meta)] = meta.uid
        try:
            if kind in ("ADDED", "MODIFIED"):
                self._handler.upsert(obj)
            elif kind == "DELETED":
                self._handler.delete(obj)
        except Exception:
            # One object the handler chokes on must not stop the informer.
            log.exception("event=handler_error informer=%s type=%s", self.name, kind)


class _DecodingWatch(watch.Watch):
    """A watch whose objects are built by `decode` from their JSON (not the client's models)."""

    def __init__(self, decode: Callable[[dict[str, Any]], Any]) -> None:
        super().__init__()
        self._decode_object = decode

    def unmarshal_event(self, data: str, return_type: Any) -> Any:
        if not data or data.isspace():
            return None
        event = json.loads(data)
        raw = event["raw_object"] = event.get("object")  # the client's stream reads ERROR events' code from it
        version = ((raw or {}).get("metadata") or {}).get("resourceVersion") if isinstance(raw, dict) else None
        if version:  # events and bookmarks both advance the version, as the client's own watch does
            self.resource_version = version
        if event.get("type") not in ("BOOKMARK", "ERROR") and isinstance(raw, dict):
            event["object"] = self._decode_object(raw)
        return event


def _rv(value: str | None) -> int | None:
    """A resource version as a number, when it is one (etcd's are; the API calls them opaque)."""
    try:
        return int(value) if value else None
    except ValueError:
        return None


def older_version(candidate: str | None, ours: str | None) -> bool:
    """True when `candidate` is a numeric resource version strictly below our numeric one."""
    a, b = _rv(candidate), _rv(ours)
    return a is not None and b is not None and a < b


def _key(meta: Any) -> str:
    return f"{meta.namespace or ''}/{meta.name or ''}"


def _too_large(exc: ApiException) -> bool:
    """kube-apiserver's answer to a watch from a version it has not reached (504, ResourceVersionTooLarge)."""
    text = f"{getattr(exc, 'reason', '')} {getattr(exc, 'body', '')}".lower()
    return "too large resource version" in text or "resourceversiontoolarge" in text
