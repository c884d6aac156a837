"""A thread-safe cache of the cluster's nodes and pods, fed by informers.

Objects are translated once, when their event arrives, so a scheduling cycle only
copies lists. A pod bigk has just bound is *assumed* on its node until the watch
confirms the binding, so the next cycle neither places it again nor forgets the
room it took (what kube-scheduler calls the assume cache). One object that cannot
be translated is logged and left out; it never stops the informer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from kubernetes import client

from bigk.cluster.labels import SCHEDULER_NAME
from bigk.cluster.model import Node, Pod
from bigk.kube.interpod import AntiAffinityTerm, anti_affinity_terms
from bigk.kube.translate import TranslateError, is_candidate, node_from_v1, occupies_node, pod_from_v1, pod_key

log = logging.getLogger(__name__)

# An assumption the watch has not confirmed in this long is dropped: the bind
# was lost or the pod changed hands, and the server's view wins.
ASSUME_TTL_S = 30.0


@dataclass
class PodEntry:
    """One pod as bigk sees it: the translated pod, whether bigk should place it, its annotations."""

    pod: Pod
    candidate: bool
    annotations: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    uid: str = ""
    resource_version: str = ""
    anti_affinity: tuple[AntiAffinityTerm, ...] = ()  # required, of a pod holding a node (bigk.kube.interpod)


class ClusterCache:
    """Nodes and pods by name, safe to read from the scheduling loop while informers write."""

    def __init__(self, scheduler_name: str = SCHEDULER_NAME, clock: object = time.monotonic) -> None:
        self.scheduler_name = scheduler_name
        self._clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._nodes: dict[str, Node] = {}
        self._pods: dict[str, PodEntry] = {}
        self._assumed: dict[str, tuple[str, tuple[int, ...], float]] = {}
        self._generation = 0
        self.skipped_objects = 0

    # ---- informer handlers --------------------------------------------------------------
    def replace_nodes(self, items: Iterable[client.V1Node]) -> None:
        fresh: dict[str, Node] = {}
        for obj in items:
            node = self._translate_node(obj)
            if node is not None:
                fresh[node.name] = node
        with self._lock:
            self._nodes = fresh
            self._bump()

    def upsert_node(self, obj: client.V1Node) -> None:
        node = self._translate_node(obj)
        with self._lock:
            if node is None:
                self._nodes.pop(getattr(obj.metadata, "name", "") or "", None)
            else:
                self._nodes[node.name] = node
            self._bump()

    def delete_node(self, obj: client.V1Node) -> None:
        with self._lock:
            self._nodes.pop(getattr(obj.metadata, "name", "") or "", None)
            self._bump()

    def replace_pods(self, items: Iterable[client.V1Pod]) -> None:
        fresh: dict[str, PodEntry] = {}
        for obj in items:
            entry = self._translate_pod(obj)
            if entry is not None:
                fresh[entry.pod.key] = entry
        with self._lock:
            self._pods = fresh
            for key in list(self._assumed):
                entry = fresh.get(key)
                if entry is None or entry.pod.node:
                    del self._assumed[key]
            self._bump()

    def upsert_pod(self, obj: client.V1Pod) -> None:
        entry = self._translate_pod(obj)
        key = _safe_pod_key(obj)
        with self._lock:
            if entry is None:
                self._pods.pop(key, None)
                self._assumed.pop(key, None)
            else:
                self._pods[key] = entry
                if entry.pod.node:
                    self._assumed.pop(key, None)  # the server confirmed (or overrode) our bind
            self._bump()

    def delete_pod(self, obj: client.V1Pod) -> None:
        key = _safe_pod_key(obj)
        with self._lock:
            self._pods.pop(key, None)
            self._assumed.pop(key, None)
            self._bump()

    # ---- what the scheduler reads ---------------------------------------------------------
    def nodes(self) -> list[Node]:
        with self._lock:
            return list(self._nodes.values())

    def pod_entries(self) -> list[PodEntry]:
        """Every pod holding node resources or waiting for bigk; assumed binds are shown bound."""
        now = self._now()
        with self._lock:
            for key, (_, _, at) in list(self._assumed.items()):
                if now - at > ASSUME_TTL_S:
                    log.warning("event=assume_expired pod=%s", key)
                    del self._assumed[key]
            out = []
            for key, entry in self._pods.items():
                assumed = self._assumed.get(key)
                if assumed is not None and not entry.pod.node:
                    entry = replace(entry, pod=replace(entry.pod, node=assumed[0], gpus=assumed[1]), candidate=False)
                out.append(entry)
            return out

    def pods(self) -> list[Pod]:
        return [entry.pod for entry in self.pod_entries()]

    def candidates(self) -> list[Pod]:
        return [entry.pod for entry in self.pod_entries() if entry.candidate]

    def assume(self, key: str, node: str, gpus: tuple[int, ...] = ()) -> None:
        """Record a bind the server accepted but the watch has not shown yet."""
        with self._lock:
            self._assumed[key] = (node, tuple(gpus), self._now())
            self._bump()

    def forget(self, key: str) -> None:
        with self._lock:
            self._assumed.pop(key, None)
            self._bump()

    @property
    def generation(self) -> int:
        """Increases on every change; lets the loop tell whether anything happened."""
        with self._lock:
            return self._generation

    def wait_for_change(self, since: int, timeout: float, stop: threading.Event | None = None) -> int:
        """Block until the generation passes `since`, `stop` is set (see `wake`) or `timeout` elapses."""
        with self._changed:
            self._changed.wait_for(lambda: self._generation != since or (stop is not None and stop.is_set()),
                                   timeout=timeout)
            return self._generation

    def touch(self) -> None:
        """Count a change made elsewhere (storage objects) so that the loop runs a cycle."""
        with self._lock:
            self._bump()

    def wake(self) -> None:
        """Wake waiters so they re-check their stop event."""
        with self._changed:
            self._changed.notify_all()

    # ---- internals -------------------------------------------------------------------------
    def _bump(self) -> None:
        self._generation += 1
        self._changed.notify_all()

    def _now(self) -> float:
        return float(self._clock())  # type: ignore[operator]

    def _translate_node(self, obj: client.V1Node) -> Node | None:
        try:
            return node_from_v1(obj)
        except (TranslateError, AttributeError, TypeError, ValueError) as exc:
            self.skipped_objects += 1
            log.warning("event=skip_object kind=Node name=%s error=%s", getattr(obj.metadata, "name", "?"), exc)
            return None

    def _translate_pod(self, obj: client.V1Pod) -> PodEntry | None:
        """A PodEntry for pods that matter (occupying a node or waiting for us), else None."""
        try:
            candidate = is_candidate(obj, self.scheduler_name)
            if not candidate and not occupies_node(obj):
                return None
            pod = pod_from_v1(obj)
        except (TranslateError, AttributeError, TypeError, ValueError) as exc:
            self.skipped_objects += 1
            log.warning("event=skip_object kind=Pod name=%s error=%s", _safe_pod_key(obj), exc)
            return None
        meta = obj.metadata or client.V1ObjectMeta()
        return PodEntry(pod=pod, candidate=candidate, annotations=_str_map(meta.annotations),
                        labels=_str_map(meta.labels), uid=meta.uid or "", resource_version=meta.resource_version or "",
                        anti_affinity=() if candidate else anti_affinity_terms(obj))


def _safe_pod_key(obj: client.V1Pod) -> str:
    try:
        return pod_key(obj)
    except AttributeError:
        return "?"


def _str_map(value: Mapping[str, str] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items()}
