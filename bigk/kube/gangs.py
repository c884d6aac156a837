"""Gangs and snapshots from what the informers see: Spark applications as scheduling units.

A gang is the set of pods with one `spark-app-selector`. Its minimum and maximum
come from the driver's `bigk.io/min-executors` / `bigk.io/max-executors`
annotations; the request of one executor comes from an executor pod when one
exists (exact), else from the driver's `bigk.io/executor-request` annotation
(written by the spec renderer), else it is estimated as the driver's own request
(logged), so that executors not yet created can still be reserved.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from bigk.cluster import labels as L
from bigk.cluster.model import Gang, Node, Pod, PodRequest, Queue, Role, Toleration
from bigk.kube.cache import PodEntry
from bigk.scheduler.types import Snapshot

log = logging.getLogger(__name__)

_warned: set[str] = set()


def encode_executor_request(request: PodRequest, node_selector: Mapping[str, str] | None = None,
                            tolerations: Iterable[Toleration] = ()) -> str:
    """The driver annotation value describing one executor (bigk units)."""
    return json.dumps({
        "cpu_milli": request.cpu_milli, "memory_mib": request.memory_mib, "gpu_count": request.gpu_count,
        "gpu_milli": request.gpu_milli, "gpu_memory_mib": request.gpu_memory_mib,
        "gpu_models": sorted(request.gpu_models), "node_selector": dict(node_selector or {}),
        "tolerations": [{"key": t.key, "operator": t.operator, "value": t.value, "effect": t.effect}
                        for t in tolerations],
    }, separators=(",", ":"), sort_keys=True)


def decode_executor_request(text: str) -> tuple[PodRequest, dict[str, str], list[Toleration]] | None:
    """Inverse of `encode_executor_request`; None for anything malformed."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            return None
        req = PodRequest(
            cpu_milli=_nonneg(data.get("cpu_milli", 0)), memory_mib=_nonneg(data.get("memory_mib", 0)),
            gpu_count=_nonneg(data.get("gpu_count", 0)), gpu_milli=_nonneg(data.get("gpu_milli", 0)),
            gpu_memory_mib=_nonneg(data.get("gpu_memory_mib", 0)),
            gpu_models=frozenset(str(m) for m in data.get("gpu_models") or ()),
        )
        if req.gpu_count and not req.gpu_milli:
            req = PodRequest(req.cpu_milli, req.memory_mib, req.gpu_count, 1000, req.gpu_memory_mib, req.gpu_models)
        selector = {str(k): str(v) for k, v in (data.get("node_selector") or {}).items()}
        tolerations = [Toleration(key=str(t.get("key", "")), operator=str(t.get("operator", "Equal")),
                                  value=str(t.get("value", "")), effect=str(t.get("effect", "")))
                       for t in data.get("tolerations") or ()]
        return req, selector, tolerations
    except (ValueError, TypeError, AttributeError):
        return None


def _nonneg(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("boolean where a number belongs")
    number = int(value)
    if number < 0:
        raise ValueError("negative")
    return number


def _int_annotation(entry: PodEntry, name: str) -> int | None:
    text = entry.annotations.get(name, "").strip()
    if not text:
        return None
    try:
        return max(0, int(text))
    except ValueError:
        return None


def gangs_from_entries(entries: Iterable[PodEntry]) -> dict[str, Gang]:
    """One Gang per Spark application that has a driver (bound or pending)."""
    members: dict[str, list[PodEntry]] = {}
    for entry in entries:
        if entry.pod.gang:
            members.setdefault(entry.pod.gang, []).append(entry)
    gangs: dict[str, Gang] = {}
    for name, group in members.items():
        driver = next((e for e in group if e.pod.role is Role.DRIVER), None)
        if driver is None:
            continue  # executors without a driver: placed one by one
        gangs[name] = _gang(name, driver, [e for e in group if e.pod.role is Role.EXECUTOR])
    return gangs


def _gang(name: str, driver: PodEntry, executors: list[PodEntry]) -> Gang:
    d = driver.pod
    minimum = _int_annotation(driver, L.MIN_EXECUTORS_ANNOTATION) or 0
    maximum = max(_int_annotation(driver, L.MAX_EXECUTORS_ANNOTATION) or minimum, minimum)
    selector, tolerations, pools = d.node_selector, d.tolerations, d.preferred_pools
    if executors:
        model = min(executors, key=lambda e: e.pod.name).pod
        request = model.request
        selector, tolerations, pools = model.node_selector, model.tolerations, model.preferred_pools
    else:
        decoded = decode_executor_request(driver.annotations.get(L.EXECUTOR_REQUEST_ANNOTATION, ""))
        if decoded is not None:
            request, selector, tolerations = decoded
        else:
            request = d.request
            if minimum and name not in _warned:
                _warned.add(name)
                log.warning("event=executor_request_estimated gang=%s reason=no_%s_annotation", name,
                            L.EXECUTOR_REQUEST_ANNOTATION.replace("bigk.io/", ""))
    return Gang(name=name, queue=d.queue, priority=d.priority, driver=d.request, executor=request,
                min_executors=minimum, max_executors=maximum, namespace=d.namespace, created_at=d.created_at,
                node_selector=dict(selector), tolerations=list(tolerations), preferred_pools=tuple(pools))


QueueSource = Mapping[str, Queue] | Callable[[], Mapping[str, Queue]] | None


def build_snapshot(nodes: list[Node], entries: list[PodEntry], queues: QueueSource = None) -> Snapshot:
    """The core's input: nodes, bound and pending pods, gangs, queues."""
    resolved = queues() if callable(queues) else queues
    pods: list[Pod] = [e.pod for e in entries]
    return Snapshot(nodes=nodes, pods=pods, queues=dict(resolved or {}), gangs=gangs_from_entries(entries))
