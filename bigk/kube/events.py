"""Kubernetes Events and pod conditions: what `kubectl describe pod` shows about bigk's decisions.

Events are best effort: a failure to post one is logged and never blocks a bind.
Unschedulable reports are rate limited per pod, so a gang that waits for an hour
gets a new event when its explanation changes (or once per `repeat_after_s`),
not one every cycle.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bigk.cluster.labels import SCHEDULER_NAME
from bigk.kube.client import drain
from bigk.kube.retry import Backoff, status_of

log = logging.getLogger(__name__)

MAX_MESSAGE = 1024  # the API server rejects very long event messages


class EventRecorder:
    """Posts core/v1 Events for pods, attributed to the bigk scheduler.

    With `background=True` (what the scheduling loop uses) events are queued and
    posted by one worker thread, so a bind never waits for its event, as with
    client-go's event broadcaster; a full queue drops events (counted) rather than
    slow scheduling down.
    """

    def __init__(self, api: client.ApiClient, *, identity: str = "bigk", component: str = SCHEDULER_NAME,
                 backoff: Backoff | None = None, clock: Callable[[], float] = time.time, core: Any = None,
                 background: bool = False, queue_size: int = 10_000) -> None:
        self._core = core if core is not None else client.CoreV1Api(api)
        self.identity = identity
        self.component = component
        self._backoff = backoff or Backoff(attempts=2, base_s=0.05, cap_s=0.2)
        self._clock = clock
        self.posted = 0
        self.failed = 0
        self.dropped = 0
        self._queue: queue.Queue[client.CoreV1Event | None] | None = None
        self._worker: threading.Thread | None = None
        if background:
            self._queue = queue.Queue(maxsize=queue_size)
            self._worker = threading.Thread(target=self._drain, name="bigk-events", daemon=True)
            self._worker.start()

    def pod_event(self, namespace: str, name: str, uid: str, *, reason: str, message: str,
                  type_: str = "Normal") -> bool:
        """Post (or queue) one Event about a pod; False when it was refused or dropped."""
        now = datetime.fromtimestamp(self._clock(), tz=UTC)
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=f"{name}.{uuid.uuid4().hex[:16]}", namespace=namespace),
            involved_object=client.V1ObjectReference(api_version="v1", kind="Pod", name=name, namespace=namespace,
                                                     uid=uid or None),
            reason=reason, message=message[:MAX_MESSAGE], type=type_, count=1,
            first_timestamp=now, last_timestamp=now,
            source=client.V1EventSource(component=self.component),
            reporting_component=self.component, reporting_instance=self.identity,
        )
        if self._queue is None:
            return self._post(body)
        try:
            self._queue.put_nowait(body)
            return True
        except queue.Full:
            self.dropped += 1
            return False

    def _post(self, body: client.CoreV1Event) -> bool:
        namespace = str(body.metadata.namespace if body.metadata else "default")
        try:
            drain(self._backoff.call(lambda: self._core.create_namespaced_event(namespace, body,
                                                                                _preload_content=False),
                                     what="event"))
        except Exception as exc:
            self.failed += 1
            target = body.involved_object.name if body.involved_object else "?"
            log.warning("event=event_post_failed pod=%s/%s reason=%s status=%s error=%s", namespace, target,
                        body.reason, status_of(exc), type(exc).__name__)
            return False
        self.posted += 1
        return True

    def _drain(self) -> None:
        assert self._queue is not None
        while True:
            body = self._queue.get()
            try:
                if body is None:
                    return
                self._post(body)
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until queued events are posted (True) or `timeout` passes (False)."""
        if self._queue is None:
            return True
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Post what is queued (up to `timeout`), then stop the worker."""
        if self._queue is None or self._worker is None:
            return
        self.flush(timeout)
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            return
        self._worker.join(timeout)


class UnschedulableReporter:
    """FailedScheduling Events plus a PodScheduled=False condition, once per message change or interval."""

    def __init__(self, api: client.ApiClient, events: EventRecorder, *, repeat_after_s: float = 300.0,
                 clock: Callable[[], float] = time.time, backoff: Backoff | None = None, core: Any = None,
                 min_interval_s: float = 30.0) -> None:
        self._core = core if core is not None else client.CoreV1Api(api)
        self._min_interval_s = min_interval_s
        self._events = events
        self._repeat_after_s = repeat_after_s
        self._clock = clock
        self._backoff = backoff or Backoff(attempts=2, base_s=0.05, cap_s=0.2)
        self._last: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self.reported = 0
        self.suppressed = 0

    def due(self, pod_key: str, message: str) -> bool:
        """Whether this message for this pod should be posted now."""
        with self._lock:
            last = self._last.get(pod_key)
        if last is None:
            return True
        age = self._clock() - last[1]
        # A changed explanation is news, but not more often than min_interval_s (counts in it may churn).
        return age >= self._repeat_after_s or (last[0] != message and age >= self._min_interval_s)

    def report(self, namespace: str, name: str, uid: str, message: str) -> bool:
        """Post (if due) the FailedScheduling event and the Unschedulable condition; True if posted."""
        key = f"{namespace}/{name}"
        if not self.due(key, message):
            self.suppressed += 1
            return False
        with self._lock:
            self._last[key] = (message, self._clock())
        self._events.pod_event(namespace, name, uid, reason="FailedScheduling", message=message, type_="Warning")
        now = datetime.fromtimestamp(self._clock(), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                            "message": message[:MAX_MESSAGE], "lastTransitionTime": now}]}}
        try:
            drain(self._backoff.call(lambda: self._core.patch_namespaced_pod_status(name, namespace, body,
                                                                                    _preload_content=False),
                                     what="pod_condition"))
        except ApiException as exc:
            if status_of(exc) != 404:
                log.warning("event=condition_failed pod=%s status=%s", key, status_of(exc))
        except Exception as exc:
            log.warning("event=condition_failed pod=%s error=%s", key, type(exc).__name__)
        self.reported += 1
        return True

    def forget(self, pod_key: str) -> None:
        """Drop memory of a pod (bound or deleted), so a later wait reports afresh."""
        with self._lock:
            self._last.pop(pod_key, None)

    def retain(self, keys: set[str]) -> None:
        """Forget every pod not in `keys` (bounded memory on a long-running scheduler)."""
        with self._lock:
            for key in [k for k in self._last if k not in keys]:
                del self._last[key]
