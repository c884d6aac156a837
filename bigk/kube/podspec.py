"""What a pod spec asks of a node, read the way kube-scheduler reads it.

- resources: containers summed; each init container taken as a maximum, except
  sidecars (init containers with `restartPolicy: Always`), which run beside the
  app and are added, and which every later init container runs beside;
  pod-level requests (cpu, memory, hugepages) replace the containers' sum;
  RuntimeClass overhead is added (`resourcehelper.PodRequests`);
- host ports of the containers and sidecars (NodePorts);
- required node affinity (NodeAffinity), as `PodConstraints`;
- the PersistentVolumeClaims it mounts, including generic ephemeral volumes
  (claim `<pod>-<volume>`), resolved against storage objects later (`bigk.kube.volumes`);
- the filters bigk does not implement, as a refusal that names the plugin.

Everything is computed once per pod event, so a cycle pays nothing for pods that
use none of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.utils import parse_quantity

from bigk.cluster.affinity import REASON_NODE_AFFINITY, Clause, PodConstraints, Requirement, Term, combine
from bigk.cluster.model import GPU_RESOURCE, HostPort
from bigk.cluster.quantity import QuantityError, cpu_to_milli, memory_to_mib

# Resources kept as their own columns; every other requested resource is a scalar.
_CORE = frozenset({"cpu", "memory", "pods", GPU_RESOURCE})
_POD_LEVEL = ("cpu", "memory")  # plus hugepages-*

# In-tree cloud disks: kube-scheduler limits them per node (the legacy EBSLimits, GCEPDLimits,
# AzureDiskLimits plugins, today NodeVolumeLimits through CSI migration) and VolumeRestrictions
# refuses a node where another pod uses the same disk. bigk implements neither for inline disks.
_INLINE_DISKS = {
    "aws_elastic_block_store": "awsElasticBlockStore (EBSLimits)",
    "gce_persistent_disk": "gcePersistentDisk (GCEPDLimits)",
    "azure_disk": "azureDisk (AzureDiskLimits)",
    "rbd": "rbd",
    "iscsi": "iscsi",
}


@dataclass(frozen=True, slots=True)
class Resources:
    """A pod's effective request, in bigk's units (scalars in bytes or units, sorted by name)."""

    cpu_milli: int
    memory_mib: int
    gpus: int
    scalars: tuple[tuple[str, int], ...] = ()


def scalar_amount(value: Any) -> int:
    """A quantity of a resource without a column of its own, rounded up to whole units (bytes, devices)."""
    try:
        return int(math.ceil(parse_quantity(value)))
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise QuantityError(f"invalid quantity {value!r}") from exc


def _requests(resources: client.V1ResourceRequirements | None) -> dict[str, Any]:
    """A container's requests; a limit stands in for a missing request (API defaulting does the same)."""
    if resources is None:
        return {}
    out: dict[str, Any] = dict(resources.limits or {})
    out.update(resources.requests or {})
    return out


def _amounts(requests: Mapping[str, Any]) -> dict[str, int]:
    """Resource amounts by name in bigk's units (CPU milli, memory MiB, whole GPUs, others in base units)."""
    values: dict[str, int] = {}
    for name, quantity in requests.items():
        if name == "cpu":
            values[name] = cpu_to_milli(quantity)
        elif name == "memory":
            values[name] = memory_to_mib(quantity)
        elif name == GPU_RESOURCE:
            milli = cpu_to_milli(quantity)
            if milli % 1000:
                raise QuantityError(f"{GPU_RESOURCE} must be a whole number, got {quantity!r}")
            values[name] = milli // 1000
        elif name != "pods":
            values[name] = scalar_amount(quantity)
    return values


def _add(total: dict[str, int], more: Mapping[str, int]) -> None:
    for name, value in more.items():
        total[name] = total.get(name, 0) + value


def _maximum(total: dict[str, int], other: Mapping[str, int]) -> None:
    for name, value in other.items():
        if value > total.get(name, 0):
            total[name] = value


def pod_resources(spec: client.V1PodSpec) -> Resources:
    """kube-scheduler's effective request of a pod (raises QuantityError on a bad quantity)."""
    total: dict[str, int] = {}
    for container in spec.containers or []:
        _add(total, _amounts(_requests(container.resources)))
    if spec.init_containers:
        sidecars: dict[str, int] = {}
        init_peak: dict[str, int] = {}
        for container in spec.init_containers:
            own = _amounts(_requests(container.resources))
            if getattr(container, "restart_policy", None) == "Always":
                _add(total, own)  # a sidecar runs for the pod's whole life
                _add(sidecars, own)
                _maximum(init_peak, sidecars)
            else:
                beside = dict(own)
                _add(beside, sidecars)  # runs beside the sidecars started before it
                _maximum(init_peak, beside)
        _maximum(total, init_peak)
    pod_level = getattr(spec, "resources", None)
    if pod_level is not None and pod_level.requests:
        supported = {k: v for k, v in pod_level.requests.items() if k in _POD_LEVEL or k.startswith("hugepages-")}
        total.update(_amounts(supported))
    if spec.overhead:
        _add(total, _amounts(spec.overhead))
    others = total.keys() - _CORE
    scalars = tuple(sorted((k, total[k]) for k in others if total[k] > 0)) if others else ()
    return Resources(total.get("cpu", 0), total.get("memory", 0), total.get(GPU_RESOURCE, 0), scalars)


def host_ports(spec: client.V1PodSpec) -> tuple[HostPort, ...]:
    """Host ports of the app containers and sidecars (kube-scheduler's `GetHostPorts`)."""
    out = []
    for containers in (spec.containers or (), spec.init_containers or ()):
        for container in containers:
            if containers is spec.init_containers and getattr(container, "restart_policy", None) != "Always":
                continue
            for port in container.ports or ():
                if port.host_port and port.host_port > 0:
                    out.append(HostPort(int(port.host_port), port.protocol or "TCP", port.host_ip or "0.0.0.0"))
    return tuple(out)


def node_affinity_clause(selector: client.V1NodeSelector | None) -> Clause | None:
    """A required NodeSelector as a clause; None when the pod has none."""
    if selector is None:
        return None
    return Clause(tuple(_term(t) for t in selector.node_selector_terms or []), REASON_NODE_AFFINITY)


def _term(term: client.V1NodeSelectorTerm) -> Term:
    reqs = [Requirement(e.key, e.operator, tuple(e.values or ())) for e in term.match_expressions or []]
    reqs += [Requirement(f.key, f.operator if f.key == "metadata.name" else "Invalid", tuple(f.values or ()),
                         on_name=True) for f in term.match_fields or []]
    return Term(tuple(reqs))


def unsupported(spec: client.V1PodSpec) -> str:
    """Why bigk leaves the pod pending, naming the kube-scheduler plugin it does not implement; '' if none."""
    affinity = spec.affinity
    if affinity is not None:
        for kind, plugin_text in ((affinity.pod_affinity, "podAffinity"), (affinity.pod_anti_affinity,
                                                                           "podAntiAffinity")):
            if kind is not None and kind.required_during_scheduling_ignored_during_execution:
                return (f"InterPodAffinity: required {plugin_text} is not supported by bigk "
                        "(use preferredDuringScheduling, or a node selector)")
    for constraint in spec.topology_spread_constraints or []:
        if (constraint.when_unsatisfiable or "DoNotSchedule") == "DoNotSchedule":
            return ("PodTopologySpread: topologySpreadConstraints with whenUnsatisfiable=DoNotSchedule are not "
                    "supported by bigk (use ScheduleAnyway)")
    if getattr(spec, "resource_claims", None):
        return "DynamicResources: resourceClaims (DRA) are not supported by bigk"
    for volume in spec.volumes or []:
        for attr, name in _INLINE_DISKS.items():
            if getattr(volume, attr, None) is not None:
                return (f"NodeVolumeLimits/VolumeRestrictions: inline {name} volume {volume.name!r} is not supported "
                        "by bigk (use a PersistentVolumeClaim)")
    return ""


def pod_constraints(spec: client.V1PodSpec) -> PodConstraints | None:
    """Required node affinity and refusals; None for a pod with neither (most pods)."""
    clauses: tuple[Clause, ...] = ()
    affinity = spec.affinity
    if affinity is not None and affinity.node_affinity is not None:
        clause = node_affinity_clause(affinity.node_affinity.required_during_scheduling_ignored_during_execution)
        if clause is not None:
            clauses = (clause,)
    return combine(None, clauses, unsupported(spec))


def pod_claims(spec: client.V1PodSpec, pod_name: str) -> tuple[str, ...]:
    """PersistentVolumeClaims the pod mounts, generic ephemeral volumes included (claim `<pod>-<volume>`)."""
    out = []
    for volume in spec.volumes or []:
        if volume.persistent_volume_claim is not None and volume.persistent_volume_claim.claim_name:
            out.append(volume.persistent_volume_claim.claim_name)
        elif getattr(volume, "ephemeral", None) is not None:
            out.append(f"{pod_name}-{volume.name}")
    return tuple(out)


def node_scalars(allocatable: Mapping[str, Any]) -> dict[str, int]:
    """A node's allocatable resources other than cpu, memory, pods and GPUs; unparsable ones are left out."""
    out = {}
    for name, value in allocatable.items():
        if name in _CORE:
            continue
        try:
            out[name] = scalar_amount(value)
        except QuantityError:
            continue
    return out
