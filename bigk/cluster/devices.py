"""Which devices a node's GPUs were really given to, and the one-owner check (docs/gpus.md).

Two parties hand out GPUs on Kubernetes. The NVIDIA device plugin (through the
kubelet's device manager) picks the devices of every container that requests
`nvidia.com/gpu`; bigk picks the device of every fractional pod
(`bigk.io/assigned-gpus`, exported as NVIDIA_VISIBLE_DEVICES). The kubelet does
not count bigk's shares, so on a node where both hand out GPUs, the device
plugin can give a whole-GPU pod the very GPU that bigk shared out.

`DEVICE_ALLOCATIONS_ANNOTATION` publishes the kubelet's own record of the device
plugin's choices on the node (the device manager's checkpoint: pod, devices),
JSON `{"<pod uid>": {"pod": "ns/name", "devices": [0, 1]}}`. The emulator's
simulated kubelet writes it (`bigk.emulator.device_plugin`); on a real node the
same facts come from the kubelet's pod-resources API (not read by bigk yet).
`conflicts` finds GPUs held by a device-plugin pod and a bigk share at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DEVICE_ALLOCATIONS_ANNOTATION = "bigk.io/device-plugin-allocations"


@dataclass(frozen=True)
class DeviceAllocation:
    """The devices the device plugin gave one pod on one node."""

    pod_uid: str
    pod: str  # namespace/name
    devices: tuple[int, ...]


def encode_allocations(allocations: Iterable[DeviceAllocation]) -> str:
    return json.dumps({a.pod_uid: {"pod": a.pod, "devices": list(a.devices)} for a in allocations},
                      sort_keys=True, separators=(",", ":"))


def decode_allocations(text: str | None) -> dict[str, DeviceAllocation]:
    """By pod UID; junk reads as nothing allocated (the annotation is advisory, never fatal)."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    out: dict[str, DeviceAllocation] = {}
    if not isinstance(data, dict):
        return out
    for uid, entry in data.items():
        if not isinstance(entry, dict):
            continue
        devices = entry.get("devices")
        if not isinstance(devices, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in devices):
            continue
        out[str(uid)] = DeviceAllocation(str(uid), str(entry.get("pod", "")), tuple(devices))
    return out


def plugin_choice(requested: int, device_count: int, taken: Iterable[int], healthy: Iterable[int] | None = None
                  ) -> tuple[int, ...] | None:
    """The devices the device manager gives a container asking for `requested` GPUs, or None (admission fails).

    It knows only the devices it handed out itself (`taken`), never bigk's shares. Among the
    free ones it takes the lowest indices: NVIDIA's plugin prefers NVLink-close sets, but any
    choice made without bigk's shares can land on a shared GPU, which is what matters here.
    """
    busy = set(taken)
    allowed = set(range(device_count)) if healthy is None else set(healthy)
    free = [i for i in range(device_count) if i not in busy and i in allowed]
    return tuple(free[:requested]) if len(free) >= requested else None


@dataclass(frozen=True)
class Conflict:
    """One GPU held by a device-plugin pod and by a bigk share at once."""

    node: str
    gpu: int
    whole_pod: str  # namespace/name, given the GPU by the device plugin
    share_pods: tuple[str, ...]  # namespace/name, given a share of it by bigk


def conflicts(node: str, plugin: Mapping[str, DeviceAllocation], shares: Mapping[str, Iterable[int]]
              ) -> list[Conflict]:
    """GPUs of `node` that the device plugin gave away (`plugin`) and bigk shared (`shares`: pod -> GPUs)."""
    shared: dict[int, list[str]] = {}
    for pod, gpus in shares.items():
        for g in gpus:
            shared.setdefault(g, []).append(pod)
    out = []
    for alloc in plugin.values():
        for g in alloc.devices:
            if g in shared:
                out.append(Conflict(node, g, alloc.pod, tuple(sorted(shared[g]))))
    return sorted(out, key=lambda c: (c.gpu, c.whole_pod))
