"""Listing pods for readers that need only who a pod is and how it is doing.

The kubernetes client turns every listed pod into a tree of models (containers, volumes,
probes, managed fields): with thousands of pods that is most of the CPU of a reader that
lists them every few seconds, as the run ticker does, and it starves the API thread of the
interpreter. `list_pod_status` makes the same request (same RBAC) and builds each `V1Pod`
from its metadata (without managed fields), its status and the two spec fields such readers
use (`nodeName`, `schedulerName`).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from kubernetes import client


class PodMemo:
    """The pods one reader built last time, by uid: a pod whose resourceVersion did not change since is the same
    object again (a backlog's thousands of pending pods are listed every tick, and do not change)."""

    def __init__(self) -> None:
        self._built: dict[str, tuple[str, client.V1Pod]] = {}

    def light(self, items: list[dict[str, Any]]) -> list[client.V1Pod]:
        built, out = {}, []
        for item in items:
            meta = item.get("metadata") or {}
            uid, version = meta.get("uid") or "", meta.get("resourceVersion") or ""
            was = self._built.get(uid) if uid and version else None
            pod = was[1] if was is not None and was[0] == version else light_pod(item)
            if uid and version:
                built[uid] = (version, pod)
            out.append(pod)
        self._built = built  # pods gone from the listing are forgotten
        return out


def list_pod_status(core: client.CoreV1Api, memo: PodMemo | None = None, **kwargs: Any) -> list[client.V1Pod]:
    """`core.list_pod_for_all_namespaces(**kwargs).items`, each pod reduced to metadata, status and node (with
    `memo`, unchanged pods are the objects of the last call: callers must not change them)."""
    items = _list(core, kwargs)
    return memo.light(items) if memo is not None else [light_pod(item) for item in items]


def list_pods_on(core: client.CoreV1Api, nodes: Collection[str], **kwargs: Any) -> list[client.V1Pod]:
    """The pods of `core.list_pod_for_all_namespaces(**kwargs).items` bound to one of `nodes`, whole (as the client
    builds them). Pods bound to no node are left out by the API server (`spec.nodeName!=`, as kube-scheduler's
    informer of assigned pods asks), and the others of other nodes are not turned into models: a backlog's
    thousands of pending pods cost neither side anything."""
    unbound = "spec.nodeName!="
    kwargs["field_selector"] = f"{kwargs['field_selector']},{unbound}" if kwargs.get("field_selector") else unbound
    out = []
    for item in _list(core, kwargs):
        if (item.get("spec") or {}).get("nodeName") in nodes:
            pod = client.V1Pod.from_dict(item)
            assert pod is not None
            out.append(pod)
    return out


def _list(core: client.CoreV1Api, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    """The listed pods as JSON (the same request as the client's, same RBAC, same errors)."""
    response: Any = core.list_pod_for_all_namespaces(_preload_content=False, **kwargs)  # urllib3 response
    try:
        body = json.loads(response.data)
    finally:
        response.release_conn()
    return list(body.get("items") or [])


def light_pod(item: dict[str, Any]) -> client.V1Pod:
    """A pod's JSON as a `V1Pod` of its metadata (without managed fields), status, node and scheduler."""
    metadata = {k: v for k, v in (item.get("metadata") or {}).items() if k != "managedFields"}
    spec = item.get("spec") or {}
    pod = client.V1Pod.from_dict({"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
                                  "spec": {"containers": [], "nodeName": spec.get("nodeName"),
                                           "schedulerName": spec.get("schedulerName")},
                                  "status": item.get("status") or {}})
    assert pod is not None
    return pod
