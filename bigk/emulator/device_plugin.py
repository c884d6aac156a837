"""The NVIDIA device plugin and the kubelet's device manager, simulated (docs/gpus.md, "One owner per GPU").

A real kubelet admits a pod that requests `nvidia.com/gpu` only if the node
advertises enough of it, then asks the device manager for devices: it takes
free devices it has not given to another running pod, knowing nothing of the
GPUs bigk shared out through `bigk.io/assigned-gpus`. This simulator does the
same for pods bound to the emulated (or, through `bigk.emulator.remote`, real
API server's simulated) nodes:
- no `nvidia.com/gpu` on the node: the pod fails with reason `OutOfnvidia.com/gpu`;
- not enough free devices: it fails with `UnexpectedAdmissionError`, as the kubelet says;
- else the choice (`bigk.cluster.devices.plugin_choice`) is recorded on the node in
  `bigk.io/device-plugin-allocations`, as the device manager's checkpoint records it,
  and the simulated GPUs charge the pod to those devices, not to bigk's annotation.
Devices come back when the pod ends or is deleted.

It works on the simulators' small object API (`api.store`, `api.update_pod`,
`api.update_object`), like `KubeletSim`; `start_device_plugin` is the hook.
"""

from __future__ import annotations

import logging

from bigk.cluster.devices import (
    DEVICE_ALLOCATIONS_ANNOTATION,
    DeviceAllocation,
    decode_allocations,
    encode_allocations,
    plugin_choice,
)
from bigk.cluster.model import GPU_RESOURCE
from bigk.emulator.host import PodSimulator, SimHost
from bigk.emulator.store import Obj, WatchEvent

log = logging.getLogger("bigk.emulator")
TERMINAL = ("Succeeded", "Failed")


def requested_gpus(pod: Obj) -> int:
    """Whole GPUs the pod asks the device plugin for (containers summed; a limit stands for a request)."""
    total = 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        value = (res.get("requests") or {}).get(GPU_RESOURCE, (res.get("limits") or {}).get(GPU_RESOURCE, 0))
        try:
            total += int(float(value))
        except (TypeError, ValueError):
            continue
    return total


def advertised_gpus(node: Obj) -> int:
    status = node.get("status") or {}
    value = (status.get("allocatable") or status.get("capacity") or {}).get(GPU_RESOURCE, 0)
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0


class DevicePluginSim(PodSimulator):
    """Device allocation for every node, the way the kubelet's device manager does it."""

    def __init__(self, host: SimHost) -> None:
        super().__init__(host)
        self._alloc: dict[str, dict[str, DeviceAllocation]] = {}  # node -> pod uid -> devices

    def start(self) -> None:
        live = {p["metadata"].get("uid", "") for p in self.api.store.objects("pods")[0]
                if (p.get("status") or {}).get("phase", "Pending") not in TERMINAL}
        for node in self.api.store.objects("nodes")[0]:
            name = node["metadata"]["name"]
            text = (node["metadata"].get("annotations") or {}).get(DEVICE_ALLOCATIONS_ANNOTATION)
            saved = decode_allocations(text)
            # as the kubelet's device manager does on restart: keep only what pods still alive hold
            self._alloc[name] = {uid: a for uid, a in saved.items() if uid in live}
            if len(self._alloc[name]) != len(saved):
                self._publish(name)
        super().start()

    def _wants(self, key: str, event: WatchEvent) -> bool:
        return key == "pods"

    def _handle(self, key: str, event: WatchEvent) -> None:
        self._consider(event.obj, event.type == "DELETED")

    def allocations(self, node: str) -> dict[str, DeviceAllocation]:
        """The devices given on `node`, by pod UID (a copy)."""
        return dict(self._alloc.get(node, {}))

    def _consider(self, pod: Obj, deleted: bool = False) -> None:
        if self._stopped:
            return
        meta = pod["metadata"]
        uid, node = meta.get("uid", ""), (pod.get("spec") or {}).get("nodeName")
        if not node:
            return
        phase = (pod.get("status") or {}).get("phase", "Pending")
        held = uid in self._alloc.get(node, {})
        if deleted or phase in TERMINAL:
            if held:
                self._alloc[node].pop(uid)
                self._publish(node)
            return
        wanted = requested_gpus(pod)
        if held or wanted <= 0 or phase != "Pending":
            return
        node_obj = self.api.store.get("nodes", "", node)
        if node_obj is None:
            return
        key = f"{meta.get('namespace', 'default')}/{meta['name']}"
        capacity = advertised_gpus(node_obj)
        if capacity == 0:
            self._reject(pod, f"OutOf{GPU_RESOURCE}", f"Pod was rejected: Node didn't have enough resource: "
                         f"{GPU_RESOURCE}, requested: {wanted}, used: 0, capacity: 0")
            return
        taken = [d for a in self._alloc.get(node, {}).values() for d in a.devices]
        chosen = plugin_choice(wanted, capacity, taken)
        if chosen is None:
            self._reject(pod, "UnexpectedAdmissionError",
                         f"Allocate failed due to requested number of devices unavailable for {GPU_RESOURCE}. "
                         f"Requested: {wanted}, Available: {capacity - len(set(taken))}, which is unexpected")
            return
        self._alloc.setdefault(node, {})[uid] = DeviceAllocation(uid, key, chosen)
        self._publish(node)
        log.debug("event=devices_allocated pod=%s node=%s devices=%s", key, node, chosen)

    def _publish(self, node: str) -> None:
        text = encode_allocations(self._alloc.get(node, {}).values())

        def change(obj: Obj) -> None:
            obj["metadata"].setdefault("annotations", {})[DEVICE_ALLOCATIONS_ANNOTATION] = text

        try:
            self.api.update_object("nodes", "", node, change)
        except Exception as exc:  # the node may be gone or the server away: the next change republishes
            log.warning("event=device_allocations_not_published node=%s error=%r", node, str(exc)[:200])

    def _reject(self, pod: Obj, reason: str, message: str) -> None:
        """What the kubelet does with a pod it cannot admit: phase Failed with its reason."""
        meta = pod["metadata"]
        uid = meta.get("uid")

        def change(p: Obj) -> None:
            if p["metadata"].get("uid") != uid or (p.get("status") or {}).get("phase") in TERMINAL:
                return
            p.setdefault("status", {}).update({"phase": "Failed", "reason": reason, "message": message})

        self.api.update_pod(meta.get("namespace", "default"), meta["name"], change)
        log.info("event=pod_rejected pod=%s/%s reason=%s", meta.get("namespace"), meta["name"], reason)
