"""The pods of bigk's runs in one cluster, kept current by a watch instead of listed again every tick.

The run ticker reads every run's pods every second or so. With thousands of queued runs a
listing is tens of megabytes of JSON that the API server serialises and the ticker parses,
each a single call that holds the interpreter for tens of milliseconds (the API thread's p95
was made of them). A `RunPodFeed` follows the pods carrying the run label with an informer
(list once, then watch; relist when the server forgets), each pod reduced as
`podlist.light_pod` reduces a listed one, and indexes them by run.

`current()` is None while the informer is not healthy (before its first list, after a
failure, or after the server forgot until it listed again): the reader then lists, as it did
before, so a cluster that restarted empty is never read from a stale cache.
"""

from __future__ import annotations

import threading
from typing import Any

from kubernetes import client

from bigk.kube.informer import Informer
from bigk.kube.podlist import light_pod


class RunPodIndex:
    """Pods by uid and by the value of one label (an informer's handler; read from other threads)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._lock = threading.Lock()
        self._runs: dict[str, dict[str, Any]] = {}  # label value -> uid -> pod
        self._run_of: dict[str, str] = {}  # uid -> label value

    def replace(self, items: list[Any]) -> None:
        runs: dict[str, dict[str, Any]] = {}
        run_of: dict[str, str] = {}
        for pod in items:
            run, uid = self._identify(pod)
            if run and uid:
                runs.setdefault(run, {})[uid] = pod
                run_of[uid] = run
        with self._lock:
            self._runs, self._run_of = runs, run_of

    def upsert(self, pod: Any) -> None:
        run, uid = self._identify(pod)
        if not uid:
            return
        with self._lock:
            self._forget(uid)
            if run:
                self._runs.setdefault(run, {})[uid] = pod
                self._run_of[uid] = run

    def delete(self, pod: Any) -> None:
        _, uid = self._identify(pod)
        with self._lock:
            self._forget(uid)

    def by_run(self) -> dict[str, list[Any]]:
        """Every run's pods, each run's in the API's listing order (namespace, name): a fresh dict and lists."""
        with self._lock:
            groups = [(run, list(pods.values())) for run, pods in self._runs.items()]
        out: dict[str, list[Any]] = {}
        for run, pods in groups:
            if len(pods) > 1:
                pods.sort(key=lambda p: (p.metadata.namespace or "", p.metadata.name or ""))
            out[run] = pods
        return out

    def _identify(self, pod: Any) -> tuple[str, str]:
        meta = pod.metadata
        return (meta.labels or {}).get(self.label, ""), meta.uid or ""

    def _forget(self, uid: str) -> None:
        run = self._run_of.pop(uid, None)
        if run is None:
            return
        pods = self._runs.get(run)
        if pods is not None:
            pods.pop(uid, None)
            if not pods:
                del self._runs[run]


class RunPodFeed:
    """An informer of the pods that carry `label` (in every namespace), light, indexed by the label's value."""

    def __init__(self, core: client.CoreV1Api, label: str, *, watch_timeout_s: int = 300,
                 request_timeout_s: float = 30.0) -> None:
        self.index = RunPodIndex(label)
        self.informer = Informer(f"run-pods({label})", core.list_pod_for_all_namespaces, self.index,
                                 watch_timeout_s=watch_timeout_s, request_timeout_s=request_timeout_s,
                                 list_kwargs={"label_selector": label}, decode=light_pod)

    def start(self) -> RunPodFeed:
        self.informer.start()
        return self

    def stop(self) -> None:
        self.informer.stop()

    @property
    def resource_version(self) -> str | None:
        return self.informer.resource_version

    def current(self) -> dict[str, list[Any]] | None:
        """The pods by run, or None when the cache may be stale (see the module docstring)."""
        if not self.informer.healthy:
            return None
        found = self.index.by_run()
        return found if self.informer.healthy else None
