"""Binding pods to nodes and evicting them, correctly under races and flaky APIs.

The assigned GPUs travel as an annotation on the Binding object itself: the API
server merges a Binding's annotations into the pod in the same write that sets
`spec.nodeName`, so the node side never sees the pod without its GPUs, and no
other binder can slip in between. (`annotate_first=True` instead patches the
annotation before binding, with the resourceVersion we last saw as a
precondition, for API servers that drop Binding annotations.) Writes are
retried on throttling, server errors and dropped connections; a 409 sends us
back to the server to read the pod, and what the server says wins: a pod someone
else bound is never bound again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bigk.cluster.annotations import format_assigned_gpus
from bigk.cluster.labels import ASSIGNED_GPUS_ANNOTATION, SELECTED_NODE_ANNOTATION
from bigk.kube.client import drain
from bigk.kube.events import EventRecorder
from bigk.kube.retry import Backoff, is_transient, status_of

log = logging.getLogger(__name__)


class BindStatus(StrEnum):
    BOUND = "bound"  # we bound it, to the node we asked for
    TAKEN = "taken"  # someone else bound it (409); the server's node is in `node`
    GONE = "gone"  # the pod no longer exists (or was replaced by one with the same name)
    CONFLICT = "conflict"  # another binder is mid-bind; try again next cycle
    FAILED = "failed"  # the API kept failing or refused; try again next cycle


@dataclass(frozen=True)
class BindOutcome:
    status: BindStatus
    node: str = ""
    message: str = ""
    stage: str = "bind"  # "select-node": a claim's selected-node write failed, before any bind was sent

    @property
    def ok(self) -> bool:
        return self.status is BindStatus.BOUND


class EvictStatus(StrEnum):
    EVICTED = "evicted"
    GONE = "gone"
    BLOCKED = "blocked"  # 429 from a PodDisruptionBudget: try later
    FAILED = "failed"


class Binder:
    """Applies the core's decisions to the API: binds, evictions, and their Events."""

    def __init__(self, api: client.ApiClient, *, events: EventRecorder | None = None,
                 backoff: Backoff | None = None, core: Any = None, annotate_first: bool = False) -> None:
        self._core = core if core is not None else client.CoreV1Api(api)  # `core`: a stand-in, for tests
        self.annotate_first = annotate_first
        self._events = events
        self._backoff = backoff or Backoff()
        self.binds = 0
        self.bind_conflicts = 0
        self.bind_failures = 0
        self.evictions = 0

    # ---- binding --------------------------------------------------------------------------
    def bind(self, namespace: str, name: str, node: str, gpus: tuple[int, ...] = (), *, uid: str = "",
             resource_version: str = "") -> BindOutcome:
        """Bind one pod; never raises for API failures (the outcome says what happened)."""
        key = f"{namespace}/{name}"
        try:
            if gpus and self.annotate_first:
                outcome = self._annotate(namespace, name, gpus, uid, resource_version)
                if outcome is not None:
                    return self._count(key, outcome)
            outcome = self._bind(namespace, name, node, gpus, uid)
        except Exception as exc:  # a bug in one bind must not stop the loop
            log.exception("event=bind_error pod=%s node=%s", key, node)
            outcome = BindOutcome(BindStatus.FAILED, message=type(exc).__name__)
        return self._count(key, outcome)

    def _count(self, key: str, outcome: BindOutcome) -> BindOutcome:
        if outcome.status is BindStatus.BOUND:
            self.binds += 1
        elif outcome.status in (BindStatus.TAKEN, BindStatus.CONFLICT):
            self.bind_conflicts += 1
            log.info("event=bind_lost pod=%s status=%s node=%s", key, outcome.status, outcome.node)
        elif outcome.status is BindStatus.FAILED:
            self.bind_failures += 1
            log.warning("event=bind_failed pod=%s message=%s", key, outcome.message)
        return outcome

    def _annotate(self, namespace: str, name: str, gpus: tuple[int, ...], uid: str,
                  resource_version: str, retry_stale: bool = True) -> BindOutcome | None:
        """Write the GPU assignment; None to go on binding, else why not."""
        wanted = format_assigned_gpus(gpus)
        meta: dict[str, object] = {"annotations": {ASSIGNED_GPUS_ANNOTATION: wanted}}
        if resource_version:
            meta["resourceVersion"] = resource_version  # optimistic concurrency: 409 if the pod moved on
        try:
            drain(self._backoff.call(lambda: self._core.patch_namespaced_pod(name, namespace, {"metadata": meta},
                                                                             _preload_content=False),
                                     what="annotate_gpus"))
            return None
        except ApiException as exc:
            status = status_of(exc)
            if status == 404:
                return BindOutcome(BindStatus.GONE)
            if status != 409:
                return BindOutcome(BindStatus.FAILED, message=f"annotate: HTTP {status}")
        except Exception as exc:
            return BindOutcome(BindStatus.FAILED, message=f"annotate: {type(exc).__name__}")
        # 409: the pod changed since we looked. Ask the server, not the cache.
        current = self._read(namespace, name)
        if current is None:
            return BindOutcome(BindStatus.GONE)
        if uid and _uid(current) != uid:
            return BindOutcome(BindStatus.GONE, message="pod was replaced")
        if _node_name(current):
            return BindOutcome(BindStatus.TAKEN, node=_node_name(current))
        annotations = (current.metadata.annotations if current.metadata else None) or {}
        current_value = annotations.get(ASSIGNED_GPUS_ANNOTATION)
        if current_value == wanted:
            return None  # our own earlier write (a retried request that did land)
        if current_value is None and retry_stale:
            # Something else touched the pod (a status update); nobody has claimed GPUs: try once more.
            rv = (current.metadata.resource_version if current.metadata else None) or ""
            return self._annotate(namespace, name, gpus, uid, rv, retry_stale=False)
        return BindOutcome(BindStatus.CONFLICT, message="pod changed while binding (another binder?)")

    def _bind(self, namespace: str, name: str, node: str, gpus: tuple[int, ...], uid: str) -> BindOutcome:
        annotations = {ASSIGNED_GPUS_ANNOTATION: format_assigned_gpus(gpus)} if gpus else None
        body = client.V1Binding(
            metadata=client.V1ObjectMeta(name=name, namespace=namespace, uid=uid or None, annotations=annotations),
            target=client.V1ObjectReference(api_version="v1", kind="Node", name=node),
        )
        ambiguous = False  # a failed attempt that may have reached the server
        attempts = self._backoff.attempts
        for attempt in range(attempts):
            try:
                # The server answers with a Status the generated client cannot deserialise (DESIGN trap).
                resp = self._core.create_namespaced_pod_binding(name, namespace, body, _preload_content=False)
                drain(resp)
                log.info("event=bind pod=%s/%s node=%s gpus=%s", namespace, name, node, format_assigned_gpus(gpus))
                if self._events is not None:
                    gpu_text = f" (GPUs {format_assigned_gpus(gpus)})" if gpus else ""
                    self._events.pod_event(namespace, name, uid, reason="Scheduled",
                                           message=f"Successfully assigned {namespace}/{name} to {node}{gpu_text}")
                return BindOutcome(BindStatus.BOUND, node=node)
            except Exception as exc:
                status = status_of(exc)
                if status == 409:
                    return self._after_conflict(namespace, name, node, gpus, uid, ambiguous)
                if status == 404:
                    return BindOutcome(BindStatus.GONE)
                if not is_transient(exc) or attempt + 1 >= attempts:
                    return BindOutcome(BindStatus.FAILED, message=f"bind: HTTP {status}" if status
                                       else f"bind: {type(exc).__name__}")
                ambiguous = ambiguous or status is None or status >= 500
                self._backoff.sleep(self._backoff.delay(attempt))
        return BindOutcome(BindStatus.FAILED, message="bind: retries exhausted")  # pragma: no cover

    def _after_conflict(self, namespace: str, name: str, node: str, gpus: tuple[int, ...], uid: str,
                        ambiguous: bool) -> BindOutcome:
        """409 on binding: the pod is bound. Ours only if an earlier attempt of ours may have landed."""
        current = self._read(namespace, name)
        if current is None:
            return BindOutcome(BindStatus.GONE)
        if uid and _uid(current) != uid:
            return BindOutcome(BindStatus.GONE, message="pod was replaced")
        bound_to = _node_name(current)
        annotations = (current.metadata.annotations if current.metadata else None) or {}
        same_gpus = not gpus or annotations.get(ASSIGNED_GPUS_ANNOTATION) == format_assigned_gpus(gpus)
        if ambiguous and bound_to == node and same_gpus:
            log.info("event=bind pod=%s/%s node=%s note=confirmed_after_retry", namespace, name, node)
            return BindOutcome(BindStatus.BOUND, node=node)
        return BindOutcome(BindStatus.TAKEN, node=bound_to)

    def _read(self, namespace: str, name: str) -> client.V1Pod | None:
        try:
            return self._backoff.call(lambda: self._core.read_namespaced_pod(name, namespace), what="read_pod")
        except ApiException as exc:
            if status_of(exc) == 404:
                return None
            raise

    # ---- volumes --------------------------------------------------------------------------
    def select_node(self, namespace: str, claims: tuple[str, ...], node: str) -> BindOutcome | None:
        """Write `volume.kubernetes.io/selected-node: node` on each claim, as kube-scheduler's VolumeBinding
        does before it binds a pod whose WaitForFirstConsumer claims are unbound; None when all are written.

        The provisioner creates each volume for that node; a claim that names a node pins
        the pod to it in later cycles, so a bind that fails after this write is retried there.
        """
        body = {"metadata": {"annotations": {SELECTED_NODE_ANNOTATION: node}}}
        for claim in claims:
            try:
                drain(self._backoff.call(partial(self._core.patch_namespaced_persistent_volume_claim, claim, namespace,
                                                  body, _preload_content=False), what="select_node"))
            except Exception as exc:
                status = status_of(exc)
                log.warning("event=select_node_failed claim=%s/%s node=%s status=%s", namespace, claim, node, status)
                return BindOutcome(BindStatus.FAILED, message=f"claim {claim}: selected-node: HTTP {status}"
                                   if status else f"claim {claim}: selected-node: {type(exc).__name__}",
                                   stage="select-node")
            log.info("event=select_node claim=%s/%s node=%s", namespace, claim, node)
        return None

    # ---- eviction -------------------------------------------------------------------------
    def evict(self, namespace: str, name: str, *, reason: str = "", uid: str = "") -> EvictStatus:
        """Evict through the Eviction API (honours PodDisruptionBudgets); posts a Preempted event."""
        body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=namespace))
        try:
            resp = self._backoff.call(
                lambda: self._core.create_namespaced_pod_eviction(name, namespace, body, _preload_content=False),
                what="evict", retry_if=lambda exc: is_transient(exc) and status_of(exc) != 429)
            drain(resp)
        except ApiException as exc:
            status = status_of(exc)
            if status == 404:
                return EvictStatus.GONE
            if status == 429:
                log.info("event=evict_blocked pod=%s/%s reason=disruption_budget", namespace, name)
                return EvictStatus.BLOCKED
            log.warning("event=evict_failed pod=%s/%s status=%s", namespace, name, status)
            return EvictStatus.FAILED
        except Exception as exc:
            log.warning("event=evict_failed pod=%s/%s error=%s", namespace, name, type(exc).__name__)
            return EvictStatus.FAILED
        self.evictions += 1
        log.info("event=preempt pod=%s/%s reason=%r", namespace, name, reason)
        if self._events is not None:
            self._events.pod_event(namespace, name, uid, reason="Preempted", type_="Warning",
                                   message=reason or "Preempted by bigk to make room for a higher-priority gang")
        return EvictStatus.EVICTED


def _uid(pod: client.V1Pod) -> str:
    return (pod.metadata.uid if pod.metadata else None) or ""


def _node_name(pod: client.V1Pod) -> str:
    return (pod.spec.node_name if pod.spec else None) or ""
