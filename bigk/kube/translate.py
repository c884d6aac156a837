"""Kubernetes objects (V1Node, V1Pod) to bigk's model (Node, Pod).

The scheduling core never sees a Kubernetes object: everything it needs is read
here, once, when an informer event arrives. Translation is strict about units and
lenient about junk: a malformed annotation is ignored (and logged), a malformed
resource quantity raises `TranslateError` so the caller can skip that one object.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from kubernetes import client

from bigk.cluster import annotations as annotations_format
from bigk.cluster import labels as L
from bigk.cluster.gpu_labels import COUNT_LABEL, MEMORY_LABEL, OWNER_BIGK, OWNER_MIXED, REPLICAS_LABEL, gpu_owner
from bigk.cluster.model import (
    GPU_MODEL_LABEL,
    GPU_RESOURCE,
    MILLI_GPU,
    Gpu,
    Node,
    Pod,
    PodRequest,
    Role,
    Taint,
    Toleration,
)
from bigk.cluster.quantity import QuantityError, cpu_to_milli, memory_to_mib
from bigk.cluster.readings import ReadingRecord, ReadingsFormatError, decode
from bigk.kube.podspec import host_ports, node_scalars, pod_claims, pod_constraints, pod_resources

log = logging.getLogger(__name__)

DEFAULT_GPU_MEMORY_MIB = 16384
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


class TranslateError(ValueError):
    """A Kubernetes object bigk cannot understand; the message names the object and field."""


# ---- pods ---------------------------------------------------------------------------------


def pod_key(pod: client.V1Pod) -> str:
    meta = pod.metadata or client.V1ObjectMeta()
    return f"{meta.namespace or 'default'}/{meta.name}"


def is_candidate(pod: client.V1Pod, scheduler_name: str = L.SCHEDULER_NAME) -> bool:
    """A pod bigk should place: names bigk, not bound, not terminating, not gated, pending."""
    spec, meta = pod.spec, pod.metadata
    if spec is None or meta is None:
        return False
    if spec.scheduler_name != scheduler_name or spec.node_name:
        return False
    if meta.deletion_timestamp is not None or spec.scheduling_gates:
        return False
    phase = pod.status.phase if pod.status is not None else None
    return phase in (None, "Pending")


def occupies_node(pod: client.V1Pod) -> bool:
    """A bound pod that still holds its node's resources (not finished)."""
    if pod.spec is None or not pod.spec.node_name:
        return False
    phase = pod.status.phase if pod.status is not None else None
    return phase not in TERMINAL_PHASES


def pod_from_v1(pod: client.V1Pod) -> Pod:
    """Translate a pod; raises TranslateError on quantities that cannot be parsed."""
    meta, spec = pod.metadata, pod.spec
    if meta is None or spec is None or not meta.name:
        raise TranslateError("pod without metadata.name or spec")
    where = f"pod {meta.namespace or 'default'}/{meta.name}"
    labels: dict[str, str] = dict(meta.labels or {})
    annotations: Mapping[str, str] = meta.annotations or {}
    try:
        request = pod_request(spec, annotations, where)
    except QuantityError as exc:
        raise TranslateError(f"{where}: {exc}") from None
    role_text = labels.get(L.SPARK_ROLE, "")
    role = Role(role_text) if role_text in (Role.DRIVER, Role.EXECUTOR) else Role.POD
    created = meta.creation_timestamp.timestamp() if meta.creation_timestamp is not None else 0.0
    return Pod(
        name=meta.name,
        request=request,
        namespace=meta.namespace or "default",
        priority=pod_priority(spec, annotations, where),
        queue=labels.get(L.QUEUE_LABEL) or annotations.get(L.QUEUE_LABEL) or "default",
        gang=labels.get(L.SPARK_APP_SELECTOR, ""),
        role=role,
        node_selector=dict(spec.node_selector or {}),
        tolerations=[toleration_from_v1(t) for t in spec.tolerations or []],
        preferred_pools=annotations_format.parse_names(annotations.get(L.POOLS_ANNOTATION, "")),
        created_at=created,
        node=spec.node_name or "",
        gpus=parse_assigned_gpus(annotations.get(L.ASSIGNED_GPUS_ANNOTATION, ""), where),
        constraints=pod_constraints(spec),
        claims=pod_claims(spec, meta.name),
    )


def pod_request(spec: client.V1PodSpec, annotations: Mapping[str, str], where: str = "pod") -> PodRequest:
    """Effective request as kube-scheduler computes it (`bigk.kube.podspec.pod_resources`), host ports included."""
    res = pod_resources(spec)
    cpu, mem, gpus = res.cpu_milli, res.memory_mib, res.gpus
    scalars, ports = res.scalars, host_ports(spec)
    models = frozenset(annotations_format.parse_names(annotations.get(L.GPU_MODELS_ANNOTATION, "")))
    share = _int_annotation(annotations, L.GPU_MILLI_ANNOTATION, where)
    if share is not None and 0 < share < MILLI_GPU:
        gpu_mem = _int_annotation(annotations, L.GPU_MEMORY_ANNOTATION, where) or 0
        return PodRequest(cpu, mem, gpu_count=1, gpu_milli=share, gpu_memory_mib=max(gpu_mem, 0), gpu_models=models,
                          scalars=scalars, host_ports=ports)
    if gpus > 0:
        return PodRequest(cpu, mem, gpu_count=gpus, gpu_milli=MILLI_GPU, gpu_models=models, scalars=scalars,
                          host_ports=ports)
    return PodRequest(cpu, mem, scalars=scalars, host_ports=ports)


def pod_priority(spec: client.V1PodSpec, annotations: Mapping[str, str], where: str = "pod") -> int:
    value = _int_annotation(annotations, L.PRIORITY_ANNOTATION, where)
    if value is not None:
        return value
    return int(spec.priority or 0)


def toleration_from_v1(tol: client.V1Toleration) -> Toleration:
    return Toleration(key=tol.key or "", operator=tol.operator or "Equal", value=tol.value or "",
                      effect=tol.effect or "")


def parse_assigned_gpus(text: str, where: str = "pod") -> tuple[int, ...]:
    """'0,1' -> (0, 1) (format in `bigk.cluster.annotations`); junk is logged and read as no assignment."""
    indices = annotations_format.parse_assigned_gpus(text)
    if indices is None:
        log.warning("event=bad_annotation object=%s annotation=%s value=%r", where, L.ASSIGNED_GPUS_ANNOTATION, text)
        return ()
    return indices


# ---- nodes --------------------------------------------------------------------------------


def gpu_nodes(objs: Iterable[client.V1Node]) -> Iterator[tuple[client.V1Node, Node]]:
    """(object, node) for every node with GPUs; a node bigk cannot read is skipped, as the cache skips it."""
    for v1 in objs:
        try:
            node = node_from_v1(v1)
        except TranslateError:
            continue
        if node.gpus:
            yield v1, node


def node_from_v1(node: client.V1Node) -> Node:
    """Translate a node; raises TranslateError on quantities that cannot be parsed."""
    meta = node.metadata
    if meta is None or not meta.name:
        raise TranslateError("node without metadata.name")
    where = f"node {meta.name}"
    status = node.status or client.V1NodeStatus()
    alloc: dict[str, Any] = dict(status.capacity or {})
    alloc.update(status.allocatable or {})
    labels: dict[str, str] = dict(meta.labels or {})
    try:
        cpu = cpu_to_milli(alloc.get("cpu", 0))
        mem = memory_to_mib(alloc.get("memory", 0))
        pods = int(cpu_to_milli(alloc.get("pods", 110)) // 1000)
        gpu_value = cpu_to_milli(alloc.get(GPU_RESOURCE, 0))
    except QuantityError as exc:
        raise TranslateError(f"{where}: {exc}") from None
    gpu_count = gpu_value // 1000
    owner = gpu_owner(labels)
    if owner == OWNER_BIGK:  # the device plugin does not advertise here: GPU feature discovery counts the GPUs
        gpu_count = max(gpu_count, _int_or_none(labels.get(COUNT_LABEL)) or 0)
    elif (_int_or_none(labels.get(REPLICAS_LABEL)) or 1) > 1:  # time-slicing/MPS replicas: count devices, not slots
        gpu_count = min(gpu_count, _int_or_none(labels.get(COUNT_LABEL)) or gpu_count)
    readings = parse_gpu_readings((meta.annotations or {}).get(L.GPU_READINGS_ANNOTATION, ""), where)
    model = labels.get(GPU_MODEL_LABEL, "")
    label_mem = _int_or_none(labels.get(MEMORY_LABEL))
    gpus = []
    for index in range(gpu_count):
        rec = readings.get(index)
        if rec is None:
            gpus.append(Gpu(index=index, model=model or "unknown", memory_mib=label_mem or DEFAULT_GPU_MEMORY_MIB))
            continue
        memory = label_mem or rec.memory_total_mib or DEFAULT_GPU_MEMORY_MIB
        gpus.append(Gpu(index=index, model=model or rec.model or "unknown", memory_mib=memory, uuid=rec.uuid,
                        reading=rec.to_model()))
    spec = node.spec
    taints = [Taint(t.key, t.value or "", t.effect or "NoSchedule") for t in (spec.taints if spec else None) or []]
    unschedulable = bool(spec.unschedulable) if spec else False
    return Node(name=meta.name, cpu_milli=cpu, memory_mib=mem, pods=pods, gpus=gpus, labels=labels,
                taints=taints, unschedulable=unschedulable or not node_ready(node),
                gpu_owner=owner if gpus else OWNER_MIXED, scalars=node_scalars(alloc))


def node_ready(node: client.V1Node) -> bool:
    """False only when the node says Ready is False/Unknown; a node with no conditions counts as ready."""
    for cond in (node.status.conditions if node.status else None) or []:
        if cond.type == "Ready":
            return cond.status == "True"
    return True


def parse_gpu_readings(text: str, where: str = "node") -> dict[int, ReadingRecord]:
    """The agent's readings (format owned by `bigk.cluster.readings`) by GPU index; bad entries are dropped."""
    if not text:
        return {}
    try:
        records = decode(text, f"{where} {L.GPU_READINGS_ANNOTATION}")
    except ReadingsFormatError as exc:
        log.warning("event=bad_annotation object=%s annotation=%s error=%s", where, L.GPU_READINGS_ANNOTATION, exc)
        records = _decode_each(text, where)
    return {r.index: r for r in records if r.index >= 0}


def _decode_each(text: str, where: str) -> list[ReadingRecord]:
    """Salvage the good entries of an annotation that has some bad ones."""
    try:
        data = json.loads(text)
    except ValueError:
        return []
    if not isinstance(data, list):
        return []
    out = []
    for item in data:
        try:
            out.extend(decode(json.dumps([item]), where))
        except (ReadingsFormatError, TypeError, ValueError):
            continue
    return out


# ---- helpers ------------------------------------------------------------------------------


def _int_or_none(value: Any) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _int_annotation(annotations: Mapping[str, str], name: str, where: str) -> int | None:
    text = annotations.get(name)
    if text is None or not str(text).strip():
        return None
    try:
        return int(str(text).strip())
    except ValueError:
        log.warning("event=bad_annotation object=%s annotation=%s value=%r", where, name, text)
        return None


