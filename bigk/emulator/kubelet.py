"""The simulated kubelet: moves bound pods through Pending → Running → Succeeded/Failed.

A pod bound to a node starts after `start_delay` (0.5 s × time_scale) once every
configMap volume it mounts exists (like a real kubelet waiting in
ContainerCreating), then runs for its expected duration (annotation
`bigk.io/expected-duration-seconds`, default `default_duration`, × time_scale) and
succeeds, or fails when annotated `bigk.io/sim-fail: "true"`. Spark drivers and
their executors are left running: the simulated Spark driver ends them. A pod
being deleted gracefully is removed after `stop_delay` (0.2 s × time_scale).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Any

from bigk.cluster.labels import EXPECTED_DURATION_ANNOTATION, SPARK_ROLE
from bigk.emulator.api import PODS, TERMINAL_PHASES, set_condition
from bigk.emulator.host import PodSimulator, SimHost, cancel_all
from bigk.emulator.nodes import node_ip
from bigk.emulator.store import Obj, WatchEvent, rfc3339

log = logging.getLogger("bigk.emulator")

SIM_FAIL_ANNOTATION = "bigk.io/sim-fail"  # "true": the pod's containers exit 1 at the end of its run
_pod_ips = itertools.count(2)


def expected_duration(pod: Obj, default: float) -> float:
    """Seconds a pod runs (unscaled), from its annotation or the default."""
    value = (pod["metadata"].get("annotations") or {}).get(EXPECTED_DURATION_ANNOTATION)
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


def sim_fails(pod: Obj) -> bool:
    return (pod["metadata"].get("annotations") or {}).get(SIM_FAIL_ANNOTATION, "").lower() == "true"


def _container_status(container: Obj, pod_uid: str, state: Obj, ready: bool) -> Obj:
    return {
        "name": container["name"],
        "image": container.get("image", ""),
        "imageID": f"emulated://{container.get('image', '')}",
        "containerID": f"emulated://{pod_uid}/{container['name']}",
        "ready": ready,
        "started": "running" in state,
        "restartCount": 0,
        "state": state,
        "lastState": {},
    }


class KubeletSim(PodSimulator):
    """One simulated kubelet for every node of the emulated cluster."""

    def __init__(self, host: SimHost, start_delay: float = 0.5, stop_delay: float = 0.2) -> None:
        super().__init__(host)
        self.scale = host.time_scale
        self.start_delay = start_delay
        self.stop_delay = stop_delay
        self._timers: dict[str, asyncio.TimerHandle] = {}  # pod uid -> next step
        self._waiting: dict[str, tuple[str, str]] = {}  # pod uid -> (ns, name) waiting for volumes
        self._stopping: set[str] = set()  # pod uids whose removal is scheduled

    def _halt(self) -> None:
        cancel_all(self._timers)

    # ---- reacting to changes ----------------------------------------------------------
    def _wants(self, key: str, event: WatchEvent) -> bool:
        return key == PODS.key or (key == "configmaps" and event.type == "ADDED" and bool(self._waiting))

    def _handle(self, key: str, event: WatchEvent) -> None:
        if key == PODS.key:
            self._pod_event(event)
        else:
            self._retry_waiting()

    def _pod_event(self, event: WatchEvent) -> None:
        uid = event.obj["metadata"]["uid"]
        if event.type == "DELETED":
            self._cancel(uid)
            self._waiting.pop(uid, None)
            self.host.containers.forget(uid)
            return
        self._consider(event.obj)

    def _retry_waiting(self) -> None:
        for uid, (ns, name) in list(self._waiting.items()):
            pod = self.api.store.get(PODS.key, ns, name)
            if pod is None or pod["metadata"]["uid"] != uid:
                self._waiting.pop(uid, None)
            elif self._volumes_ready(pod):
                self._waiting.pop(uid, None)
                self._schedule(uid, self.start_delay, self._run, ns, name, uid)

    def _consider(self, pod: Obj) -> None:
        """Decide the next step for a pod from its current state."""
        meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        uid, ns, name = meta["uid"], meta.get("namespace", ""), meta["name"]
        phase = status.get("phase", "Pending")
        if meta.get("deletionTimestamp"):
            if uid not in self._stopping:
                grace = float(meta.get("deletionGracePeriodSeconds", 0) or 0)
                self._schedule(uid, min(self.stop_delay, grace), self._finalize, ns, name, uid, stopping=True)
            return
        if not spec.get("nodeName") or phase in TERMINAL_PHASES or uid in self._timers:
            return
        if self.api.store.get("nodes", "", spec["nodeName"]) is None:
            return  # bound to a node that does not exist: stays Pending
        if phase == "Pending" and not status.get("startTime"):
            if not self._volumes_ready(pod):
                if uid not in self._waiting:
                    self._waiting[uid] = (ns, name)
                    self.api.update_pod(ns, name, lambda p: self._creating(p, uid))
                return
            self._schedule(uid, self.start_delay, self._run, ns, name, uid)
        elif phase == "Running" and self._owns_completion(pod):
            duration = expected_duration(pod, self.host.default_duration)
            since = self.host.containers.running_since.get(uid)
            if since is not None:  # a restarted kubelet: the container ran on meanwhile
                duration = max(0.0, duration - (time.monotonic() - since) / self.scale)
            self._schedule(uid, duration, self._finish, ns, name, uid)

    def _owns_completion(self, pod: Obj) -> bool:
        """Spark drivers and their executors end when the simulated driver says so; other pods on their own."""
        if self.host.driver is None:
            return True
        role = (pod["metadata"].get("labels") or {}).get(SPARK_ROLE)
        if role == "driver":
            return False
        owned = any(o.get("kind") == "Pod" for o in pod["metadata"].get("ownerReferences") or [])
        return not (role == "executor" and owned)

    def _schedule(self, uid: str, delay: float, fn: Any, *args: Any, stopping: bool = False) -> None:
        self._cancel(uid)

        def fire() -> None:
            self._timers.pop(uid, None)
            self._stopping.discard(uid)
            if not self._stopped:
                fn(*args)

        if stopping:
            self._stopping.add(uid)
        self._timers[uid] = self.loop.call_later(delay * self.scale, fire)

    def _cancel(self, uid: str) -> None:
        self._stopping.discard(uid)
        handle = self._timers.pop(uid, None)
        if handle is not None:
            handle.cancel()

    def _volumes_ready(self, pod: Obj) -> bool:
        ns = pod["metadata"].get("namespace", "")
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            cm = volume.get("configMap") if isinstance(volume, dict) else None
            if cm and not cm.get("optional") and self.api.store.get("configmaps", ns, cm.get("name", "")) is None:
                return False
        return True

    # ---- state transitions ---------------------------------------------------------------
    @staticmethod
    def _same(pod: Obj, uid: str) -> bool:
        return bool(pod["metadata"]["uid"] == uid)

    def _creating(self, pod: Obj, uid: str) -> None:
        if not self._same(pod, uid):
            return
        waiting = {"waiting": {"reason": "ContainerCreating"}}
        pod["status"]["containerStatuses"] = [
            _container_status(c, uid, waiting, False) for c in pod["spec"]["containers"]
        ]

    def _run(self, ns: str, name: str, uid: str) -> None:
        def change(pod: Obj) -> None:
            if not self._same(pod, uid) or pod["status"].get("phase") != "Pending":
                return
            now = rfc3339()
            status = pod["status"]
            status["phase"] = "Running"
            status["startTime"] = now
            status["hostIP"] = node_ip(pod["spec"]["nodeName"])
            status["hostIPs"] = [{"ip": status["hostIP"]}]
            address = self.host.pod_address(pod)
            if address is None:
                n = next(_pod_ips)
                address = f"10.244.{(n >> 8) & 255}.{n & 255}"
            status["podIP"] = address
            status["podIPs"] = [{"ip": status["podIP"]}]
            for cond in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"):
                set_condition(pod, cond, "True")
            running = {"running": {"startedAt": now}}
            status["containerStatuses"] = [_container_status(c, uid, running, True) for c in pod["spec"]["containers"]]

        self.host.containers.running_since.setdefault(uid, time.monotonic())
        pod = self.api.update_pod(ns, name, change)
        if pod is not None and pod["status"].get("phase") == "Running":
            log.debug("event=pod_running pod=%s/%s node=%s", ns, name, pod["spec"].get("nodeName"))

    def _finish(self, ns: str, name: str, uid: str) -> None:
        pod = self.api.store.get(PODS.key, ns, name)
        if pod is not None and self._same(pod, uid):
            self.finish(ns, name, uid, succeeded=not sim_fails(pod))

    def finish(self, ns: str, name: str, uid: str, *, succeeded: bool, message: str = "") -> None:
        """End a running pod now (drivers are ended this way by the simulated Spark driver)."""
        self._cancel(uid)
        self.host.containers.forget(uid)
        finish_pod(self.api, ns, name, uid, succeeded=succeeded, message=message)

    def _finalize(self, ns: str, name: str, uid: str) -> None:
        pod = self.api.store.get(PODS.key, ns, name)
        self.host.containers.forget(uid)
        if pod is not None and self._same(pod, uid):
            self.api.finalize_pod(ns, name)


def finish_pod(api: Any, ns: str, name: str, uid: str, *, succeeded: bool, message: str = "") -> bool:
    """End a pod: containers terminate with exit code 0 (Succeeded) or 1 (Failed); False if it is gone."""

    def change(pod: Obj) -> None:
        if pod["metadata"]["uid"] != uid or pod["status"].get("phase") in TERMINAL_PHASES:
            return
        now = rfc3339()
        status = pod["status"]
        status["phase"] = "Succeeded" if succeeded else "Failed"
        if message:
            status["message"] = message
        started = status.get("startTime", now)
        code, reason = (0, "Completed") if succeeded else (1, "Error")
        terminated = {
            "terminated": {
                "exitCode": code,
                "reason": reason,
                "startedAt": started,
                "finishedAt": now,
                "containerID": f"emulated://{uid}",
            }
        }
        status["containerStatuses"] = [_container_status(c, uid, terminated, False) for c in pod["spec"]["containers"]]
        for cond in ("Ready", "ContainersReady"):
            set_condition(pod, cond, "False", "PodCompleted" if succeeded else "PodFailed")

    if api.update_pod(ns, name, change) is None:
        return False
    log.debug("event=pod_finished pod=%s/%s phase=%s", ns, name, "Succeeded" if succeeded else "Failed")
    return True
