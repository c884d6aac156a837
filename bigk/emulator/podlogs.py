"""Simulated container logs for `GET /api/v1/namespaces/NS/pods/NAME/log` (kubectl logs, bigk logs).

No container runs in the emulator, so the log is written from what happens to the
pod: the simulated Spark driver's log says which executors it requested, which
registered and how the application ended; an executor's log says that it
registered with its driver and when it was told to stop. Lines are appended as
the store changes (a store listener), so a follow (`?follow=true`) sees them
arrive as a real log would. Lines look like Spark's log4j output.

The answers follow kube-apiserver's: 400 while the container has not started,
400 for `previous` when the container never restarted, 400 for an unknown
container or a missing container name in a pod with several; `tailLines`,
`timestamps`, `limitBytes` and `follow` work as in Kubernetes.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bigk.emulator.api import Api
from bigk.emulator.errors import ApiError, bad_request
from bigk.emulator.resources import by_key
from bigk.emulator.store import Obj, Store
from bigk.spark.driver_pod import ui_port

PODS = by_key("pods")
MAX_PODS = 20_000  # logs kept for at most this many pods (oldest forgotten first)
MAX_LINES = 5_000  # per pod
FOLLOW_POLL_S = 0.1
_ROLE = "spark-role"
_APP = "spark-app-selector"
_EXEC_ID = "spark-exec-id"


@dataclass
class _PodLog:
    lines: list[tuple[float, str]] = field(default_factory=list)
    started: bool = False
    registered: bool = False
    ended: bool = False

    def add(self, text: str, at: float | None = None) -> None:
        if len(self.lines) < MAX_LINES:
            self.lines.append((time.time() if at is None else at, text))


def _spark_line(at: float, level: str, source: str, message: str) -> str:
    stamp = datetime.fromtimestamp(at, UTC).strftime("%y/%m/%d %H:%M:%S")
    return f"{stamp} {level} {source}: {message}"


class PodLogBook:
    """Keeps the simulated log of every pod, written from the store's change stream."""

    def __init__(self, store: Store) -> None:
        self._lock = threading.Lock()
        self._logs: OrderedDict[str, _PodLog] = OrderedDict()  # by pod uid
        self._drivers: dict[tuple[str, str], str] = {}  # (namespace, app selector) -> driver uid
        store.subscribe(self._on_change)

    # ---- writing ------------------------------------------------------------------------
    def _log(self, uid: str) -> _PodLog:
        found = self._logs.get(uid)
        if found is None:
            found = self._logs[uid] = _PodLog()
            while len(self._logs) > MAX_PODS:
                self._logs.popitem(last=False)
        return found

    def _say(self, uid: str, level: str, source: str, message: str) -> None:
        now = time.time()
        self._log(uid).add(_spark_line(now, level, source, message), now)

    def _on_change(self, key: str, event: Any) -> None:
        if key != PODS.key:
            return
        pod: Obj = event.obj
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        with self._lock:
            if event.type == "DELETED":
                self._logs.pop(uid, None)
                return
            labels = meta.get("labels") or {}
            role = labels.get(_ROLE)
            ns = str(meta.get("namespace", ""))
            if role == "driver" and labels.get(_APP):
                self._drivers[(ns, labels[_APP])] = uid
            driver = self._drivers.get((ns, labels.get(_APP, ""))) if role == "executor" else None
            if role == "executor" and driver and event.type == "ADDED":
                exec_id = labels.get(_EXEC_ID, "?")
                self._say(driver, "INFO", "ExecutorPodsAllocator",
                          f"Requesting executor pod {meta.get('name')} (exec-id {exec_id}) from Kubernetes")
            self._transition(pod, uid, role, driver)

    def _transition(self, pod: Obj, uid: str, role: str | None, driver: str | None) -> None:
        status = pod.get("status") or {}
        phase = status.get("phase")
        meta = pod["metadata"]
        log = self._log(uid)
        if phase in ("Running", "Succeeded", "Failed") and not log.started and _container_started(status):
            log.started = True
            self._started(pod, uid, role, driver)
        if phase in ("Succeeded", "Failed") and log.started and not log.ended:
            log.ended = True
            code, message = _exit(status)
            if role == "driver":
                if phase == "Succeeded":
                    self._say(uid, "INFO", "SparkContext", "Successfully stopped SparkContext")
                else:
                    why = message or f"exit code {code}"
                    self._say(uid, "ERROR", "SparkContext", f"Application failed: {why}")
                self._say(uid, "INFO", "ShutdownHookManager", "Shutdown hook called")
            elif role == "executor":
                self._say(uid, "INFO", "CoarseGrainedExecutorBackend", "Driver commanded a shutdown")
                if driver:
                    exec_id = (meta.get("labels") or {}).get(_EXEC_ID, "?")
                    self._say(driver, "INFO", "KubernetesClusterSchedulerBackend",
                              f"Executor {exec_id} on pod {meta.get('name')} exited with code {code}")
            else:
                self._say(uid, "INFO", "kubelet", f"container exited with code {code}")

    def _started(self, pod: Obj, uid: str, role: str | None, driver: str | None) -> None:
        meta = pod["metadata"]
        node = (pod.get("spec") or {}).get("nodeName", "")
        labels = meta.get("labels") or {}
        if role == "driver":
            app = labels.get(_APP, meta.get("name"))
            name = labels.get("spark-app-name", meta.get("name"))
            self._say(uid, "INFO", "SparkContext", "Running Spark version 4.0.0 (simulated by the bigk emulator)")
            self._say(uid, "INFO", "SparkContext", f"Submitted application: {name}")
            port = ui_port(pod)
            self._say(uid, "INFO", "Utils", f"Successfully started service 'SparkUI' on port {port}.")
            self._say(uid, "INFO", "SparkUI", f"Bound SparkUI to 0.0.0.0, and started at http://{meta.get('name')}"
                      f"-svc.{meta.get('namespace')}.svc:{port}")
            self._say(uid, "INFO", "KubernetesClusterSchedulerBackend", f"Application id: {app}, node: {node}")
        elif role == "executor":
            exec_id = labels.get(_EXEC_ID, "?")
            self._say(uid, "INFO", "CoarseGrainedExecutorBackend", f"Started executor {exec_id} on node {node}")
            self._say(uid, "INFO", "CoarseGrainedExecutorBackend", "Successfully registered with driver")
            if driver:
                self._say(driver, "INFO", "KubernetesClusterSchedulerBackend$KubernetesDriverEndpoint",
                          f"Registered executor {exec_id} on pod {meta.get('name')} (node {node})")
        else:
            self._say(uid, "INFO", "kubelet", f"container started on node {node}")

    # ---- reading ------------------------------------------------------------------------
    def lines(self, uid: str) -> list[tuple[float, str]]:
        with self._lock:
            found = self._logs.get(uid)
            return list(found.lines) if found else []


def _container_started(status: Obj) -> bool:
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if "running" in state or "terminated" in state:
            return True
    return False


def _exit(status: Obj) -> tuple[int, str]:
    for cs in status.get("containerStatuses") or []:
        terminated = (cs.get("state") or {}).get("terminated")
        if terminated:
            return int(terminated.get("exitCode", 0)), str(terminated.get("message") or "")
    return (0 if status.get("phase") == "Succeeded" else 1), str(status.get("message") or "")


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true", "yes")


def _int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise bad_request(f"{name} must not be negative")
    return value


def _check_container(pod: Obj, request: web.Request) -> str:
    name = pod["metadata"]["name"]
    containers = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
    wanted = request.query.get("container", "")
    if wanted and wanted not in containers:
        raise bad_request(f"container {wanted} is not valid for pod {name}")
    if not wanted:
        if len(containers) > 1:
            raise bad_request(f"a container name must be specified for pod {name}, choose one of: "
                              f"[{' '.join(containers)}]")
        wanted = containers[0] if containers else ""
    return wanted


def _status_of(pod: Obj, container: str) -> Obj:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == container:
            return dict(cs)
    return {}


def _format(lines: list[tuple[float, str]], timestamps: bool) -> bytes:
    if timestamps:
        out = (f"{datetime.fromtimestamp(at, UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')} {text}\n" for at, text in lines)
    else:
        out = (f"{text}\n" for _, text in lines)
    return "".join(out).encode()


def _is_main(pod: Obj, container: str) -> bool:
    """Simulated lines belong to the pod's first container (Spark's); sidecars log nothing."""
    containers = (pod.get("spec") or {}).get("containers") or []
    return bool(containers) and containers[0].get("name") == container


async def serve_log(request: web.Request, api: Api, book: PodLogBook, namespace: str, name: str) -> web.StreamResponse:
    """GET pods/NAME/log, as kube-apiserver answers it."""
    pod = api.get(PODS, namespace, name)
    container = _check_container(pod, request)
    status = _status_of(pod, container)
    if _flag(request, "previous") and int(status.get("restartCount", 0)) == 0:
        raise bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
    if not _container_started(pod.get("status") or {}):
        reason = ((status.get("state") or {}).get("waiting") or {}).get("reason") or "ContainerCreating"
        raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
    uid = pod["metadata"]["uid"]
    timestamps = _flag(request, "timestamps")
    tail = _int(request, "tailLines")
    limit = _int(request, "limitBytes")
    main = _is_main(pod, container)
    lines = book.lines(uid) if main else []
    if tail is not None:
        lines = lines[len(lines) - tail:] if tail else []
    if not _flag(request, "follow"):
        body = _format(lines, timestamps)
        return web.Response(body=body[:limit] if limit else body, content_type="text/plain")
    response = web.StreamResponse(headers={"Content-Type": "text/plain", "Transfer-Encoding": "chunked"})
    await response.prepare(request)
    sent = len(book.lines(uid)) if main else 0
    written = 0
    chunk = _format(lines, timestamps)
    while True:
        if limit:
            chunk = chunk[: max(0, limit - written)]
        if chunk:
            await response.write(chunk)
            written += len(chunk)
        if limit and written >= limit:
            break
        current = _current(api, namespace, name, uid)
        if current is None or (current.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            rest = book.lines(uid)[sent:] if main else []
            if rest:
                await response.write(_format(rest, timestamps)[: (limit - written) if limit else None])
            break
        await asyncio.sleep(FOLLOW_POLL_S)
        new = book.lines(uid)[sent:] if main else []
        sent += len(new)
        chunk = _format(new, timestamps)
    await response.write_eof()
    return response


def _current(api: Api, namespace: str, name: str, uid: str) -> Obj | None:
    try:
        pod = api.get(PODS, namespace, name)
    except ApiError:
        return None
    return pod if pod["metadata"]["uid"] == uid else None
