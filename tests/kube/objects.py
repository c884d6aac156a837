"""Builders for Kubernetes objects as the API serves them (dicts and client models)."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client

from bigk.cluster import labels as L

_API = client.ApiClient()


def to_model(data: dict[str, Any], kind: str) -> Any:
    """Deserialise a dict the way the client does for an API response."""
    return _API.deserialize(json.dumps(data), kind, "application/json")


def pod_dict(name: str, *, namespace: str = "default", cpu: str = "1", memory: str = "1Gi", gpus: int = 0,
             scheduler: str = L.SCHEDULER_NAME, app: str = "", role: str = "",
             annotations: dict[str, str] | None = None,
             labels: dict[str, str] | None = None, node: str = "", phase: str = "Pending",
             gated: bool = False, created: str = "2026-11-25T16:00:00Z",
             tolerations: list[dict[str, str]] | None = None) -> dict[str, Any]:
    limits: dict[str, str] = {}
    if gpus:
        limits["nvidia.com/gpu"] = str(gpus)
    pod_labels = dict(labels or {})
    if app:
        pod_labels[L.SPARK_APP_SELECTOR] = app
    if role:
        pod_labels[L.SPARK_ROLE] = role
    spec: dict[str, Any] = {
        "schedulerName": scheduler,
        "containers": [{"name": "main", "image": "spark",
                        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": limits}}],
    }
    if node:
        spec["nodeName"] = node
    if tolerations:
        spec["tolerations"] = tolerations
    if gated:
        spec["schedulingGates"] = [{"name": "example.com/wait"}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "resourceVersion": "1",
                         "creationTimestamp": created, "labels": pod_labels, "annotations": dict(annotations or {})},
            "spec": spec, "status": {"phase": phase}}


def pod(name: str, **kwargs: Any) -> client.V1Pod:
    return to_model(pod_dict(name, **kwargs), "V1Pod")


def node_dict(name: str, *, cpu: str = "32", memory: str = "128Gi", gpus: int = 0, model: str = "",
              gpu_memory_mib: int | None = None, readings: Any = None, taints: list[dict[str, str]] | None = None,
              unschedulable: bool = False, ready: str | None = "True",
              labels: dict[str, str] | None = None) -> dict[str, Any]:
    alloc = {"cpu": cpu, "memory": memory, "pods": "110"}
    if gpus:
        alloc["nvidia.com/gpu"] = str(gpus)
    node_labels = {"kubernetes.io/hostname": name, **(labels or {})}
    if model:
        node_labels["nvidia.com/gpu.product"] = model
    if gpu_memory_mib is not None:
        node_labels["nvidia.com/gpu.memory"] = str(gpu_memory_mib)
    annotations = {}
    if readings is not None:
        annotations[L.GPU_READINGS_ANNOTATION] = readings if isinstance(readings, str) else json.dumps(readings)
    status: dict[str, Any] = {"allocatable": alloc, "capacity": dict(alloc)}
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": ready}]
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "resourceVersion": "1", "labels": node_labels, "annotations": annotations},
            "spec": {"taints": taints or [], "unschedulable": unschedulable}, "status": status}


def node(name: str, **kwargs: Any) -> client.V1Node:
    return to_model(node_dict(name, **kwargs), "V1Node")
