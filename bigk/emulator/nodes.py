"""Node objects for the emulated cluster, built from `bigk.cluster.model.Node`.

Capacity/allocatable carry cpu, memory, pods and `nvidia.com/gpu` (not where bigk
assigns every GPU: the device plugin is off there); labels carry the pool and GPU
feature discovery's labels (`bigk.cluster.gpu_labels`; cluster files write them all);
taints and `unschedulable` come from the model; the Ready condition is True.
"""

from __future__ import annotations

import hashlib
from typing import Any

from bigk.cluster.gpu_labels import (
    COUNT_LABEL,
    MEMORY_LABEL,
    OWNER_BIGK,
    OWNER_MIXED,
    PRODUCT_LABEL,
    SHARING_LABEL,
    SHARING_MIXED,
)
from bigk.cluster.model import GPU_RESOURCE, Node
from bigk.cluster.quantity import format_mib, format_milli
from bigk.emulator.discovery import EMULATOR_GIT_VERSION
from bigk.emulator.store import rfc3339


def node_ip(name: str) -> str:
    """A stable private address per node name."""
    digest = hashlib.sha1(name.encode()).digest()
    return f"10.{digest[0] % 200 + 20}.{digest[1]}.{digest[2] % 250 + 2}"


def node_object(node: Node) -> dict[str, Any]:
    """The Kubernetes Node object for one model node."""
    labels = {
        "kubernetes.io/hostname": node.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        **node.labels,
    }
    capacity = {
        "cpu": format_milli(node.cpu_milli),
        "memory": format_mib(node.memory_mib),
        "pods": str(node.pods),
        "ephemeral-storage": "100Gi",
    }
    if node.gpus:
        if node.gpu_owner != OWNER_BIGK:  # where bigk assigns every GPU the device plugin does not run
            capacity[GPU_RESOURCE] = str(len(node.gpus))
        if node.gpu_owner == OWNER_MIXED:
            labels.setdefault(SHARING_LABEL, SHARING_MIXED)
        labels.setdefault(PRODUCT_LABEL, node.gpus[0].model)
        labels.setdefault(COUNT_LABEL, str(len(node.gpus)))
        labels.setdefault(MEMORY_LABEL, str(node.gpus[0].memory_mib))
    now = rfc3339()
    conditions = [
        {
            "type": t,
            "status": "False",
            "reason": f"Kubelet Has No {t}",
            "message": f"emulated kubelet: no {t}",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }
        for t in ("MemoryPressure", "DiskPressure", "PIDPressure")
    ]
    conditions.append(
        {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "emulated kubelet is posting ready status",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }
    )
    spec: dict[str, Any] = {}
    if node.taints:
        spec["taints"] = [
            {"key": t.key, "value": t.value, "effect": t.effect} if t.value else {"key": t.key, "effect": t.effect}
            for t in node.taints
        ]
    if node.unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node.name, "labels": labels, "annotations": {}},
        "spec": spec,
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": node_ip(node.name)},
                {"type": "Hostname", "address": node.name},
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": node.name,
                "containerRuntimeVersion": "emulated://1.0",
                "kernelVersion": "6.1.0-emulated",
                "kubeProxyVersion": EMULATOR_GIT_VERSION,
                "kubeletVersion": EMULATOR_GIT_VERSION,
                "machineID": hashlib.md5(node.name.encode()).hexdigest(),
                "operatingSystem": "linux",
                "osImage": "bigk emulated node",
                "systemUUID": hashlib.md5(node.name.encode()).hexdigest(),
            },
        },
    }
