"""PersistentVolumeClaims as kube-scheduler's volume filters see them, resolved into node constraints.

For every pod that mounts claims, `resolve_pod` applies, per claim:
- VolumeBinding: a fully bound claim (volumeName + `pv.kubernetes.io/bind-completed`)
  restricts the pod to its PersistentVolume's node affinity; an unbound claim of a
  `WaitForFirstConsumer` class with a provisioner may go to any node the class's
  allowedTopologies admit, and bigk writes `volume.kubernetes.io/selected-node` on
  it before it binds the pod (the provisioner then creates the volume there); a
  claim that already names a selected node pins the pod to it. A missing claim or
  class, an unbound `Immediate` claim, a claim pre-bound but not yet bound, a
  missing PV, or a `WaitForFirstConsumer` class without a provisioner (static local
  volumes, which bigk does not match) leave the pod pending with that reason.
- VolumeZone: a bound PV's zone/region labels must match the node's.
- VolumeRestrictions: a `ReadWriteOncePod` claim another pod uses keeps the pod pending.
- NodeVolumeLimits: each claim counts one attachment of its CSI driver (a scalar
  resource `attachable-volumes-csi-<driver>`, limited by the node's CSINode).

Pure functions over small frozen records; `bigk.kube.storage` keeps them current.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from kubernetes import client

from bigk.cluster.affinity import (
    REASON_STORAGE_TOPOLOGY,
    REASON_VOLUME_AFFINITY,
    REASON_VOLUME_ZONE,
    Clause,
    Requirement,
    Term,
    combine,
    pin_to_node,
)
from bigk.cluster.labels import SELECTED_NODE_ANNOTATION
from bigk.cluster.model import Pod
from bigk.cluster.state import ATTACH_PREFIX
from bigk.kube.podspec import node_affinity_clause

BIND_COMPLETED_ANNOTATION = "pv.kubernetes.io/bind-completed"
BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"
# VolumeZone reads these PV labels; a value may list several zones joined by "__".
ZONE_LABELS = ("topology.kubernetes.io/zone", "topology.kubernetes.io/region",
               "failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region")


@dataclass(frozen=True)
class ClaimInfo:
    """What the scheduler needs of one PersistentVolumeClaim."""

    namespace: str
    name: str
    storage_class: str
    volume_name: str = ""
    bind_completed: bool = False
    selected_node: str = ""
    access_modes: tuple[str, ...] = ()
    deleting: bool = False

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class VolumeInfo:
    """What the scheduler needs of one PersistentVolume."""

    name: str
    node_affinity: Clause | None = None
    zones: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (label, allowed values)
    csi_driver: str = ""


@dataclass(frozen=True)
class ClassInfo:
    """What the scheduler needs of one StorageClass."""

    name: str
    provisioner: str
    binding_mode: str = "Immediate"
    allowed_topologies: Clause | None = None


@dataclass
class StorageView:
    """Claims by "namespace/name", volumes and classes by name, CSI attach limits by node."""

    claims: dict[str, ClaimInfo] = field(default_factory=dict)
    volumes: dict[str, VolumeInfo] = field(default_factory=dict)
    classes: dict[str, ClassInfo] = field(default_factory=dict)
    attach_limits: dict[str, dict[str, int]] = field(default_factory=dict)  # node -> driver -> count


@dataclass(frozen=True)
class PodVolumes:
    """A pod's claims resolved: extra clauses, a refusal, attachments per driver, claims to select a node for."""

    clauses: tuple[Clause, ...] = ()
    refusal: str = ""
    attach: tuple[tuple[str, int], ...] = ()
    to_select: tuple[str, ...] = ()  # claim names awaiting `volume.kubernetes.io/selected-node`


# ---- translation ---------------------------------------------------------------------------


def _meta(obj: Any) -> tuple[client.V1ObjectMeta, str]:
    """An object's metadata and name; ValueError (the object is skipped) without a name."""
    meta = obj.metadata
    if meta is None or not meta.name:
        raise ValueError(f"{type(obj).__name__} without metadata.name")
    return meta, str(meta.name)


def claim_from_v1(obj: client.V1PersistentVolumeClaim) -> ClaimInfo:
    meta, name = _meta(obj)
    spec = obj.spec or client.V1PersistentVolumeClaimSpec()
    annotations = meta.annotations or {}
    return ClaimInfo(
        namespace=meta.namespace or "default", name=name,
        storage_class=annotations.get(BETA_CLASS_ANNOTATION, spec.storage_class_name or ""),
        volume_name=spec.volume_name or "", bind_completed=BIND_COMPLETED_ANNOTATION in annotations,
        selected_node=annotations.get(SELECTED_NODE_ANNOTATION, ""),
        access_modes=tuple(spec.access_modes or ()), deleting=meta.deletion_timestamp is not None)


def volume_from_v1(obj: client.V1PersistentVolume) -> VolumeInfo:
    meta, name = _meta(obj)
    spec = obj.spec or client.V1PersistentVolumeSpec()
    labels = meta.labels or {}
    affinity = node_affinity_clause(spec.node_affinity.required if spec.node_affinity else None)
    zones = tuple((k, tuple(v for v in labels[k].split("__") if v)) for k in ZONE_LABELS if k in labels)
    return VolumeInfo(name,
                      replace(affinity, reason=REASON_VOLUME_AFFINITY) if affinity is not None else None,
                      zones, spec.csi.driver if spec.csi is not None else "")


def class_from_v1(obj: client.V1StorageClass) -> ClassInfo:
    terms = []
    for term in obj.allowed_topologies or []:
        reqs = tuple(Requirement(e.key, "In", tuple(e.values or ())) for e in term.match_label_expressions or [])
        terms.append(Term(reqs))
    topology = Clause(tuple(terms), REASON_STORAGE_TOPOLOGY) if terms else None
    return ClassInfo(_meta(obj)[1], obj.provisioner or "", obj.volume_binding_mode or "Immediate", topology)


def attach_limits_from_v1(obj: client.V1CSINode) -> dict[str, int]:
    """driver -> how many volumes of it the node can attach (only drivers that publish a limit)."""
    out = {}
    for driver in (obj.spec.drivers if obj.spec else None) or []:
        if driver.allocatable is not None and driver.allocatable.count is not None:
            out[driver.name] = int(driver.allocatable.count)
    return out


# ---- resolution ----------------------------------------------------------------------------


def resolve_pod(pod: Pod, view: StorageView, users: Mapping[str, set[str]] | None = None) -> PodVolumes:
    """The volume filters' verdict for `pod` (see the module docstring). `users`: claim key -> pods using it."""
    clauses: list[Clause] = []
    attach: dict[str, int] = {}
    to_select: list[str] = []
    refusal = ""
    for name in pod.claims:
        claim = view.claims.get(f"{pod.namespace}/{name}")
        if claim is None:
            refusal = refusal or f'VolumeBinding: persistentvolumeclaim "{name}" not found'
            continue
        if claim.deleting:
            refusal = refusal or f'VolumeBinding: persistentvolumeclaim "{name}" is being deleted'
            continue
        if "ReadWriteOncePod" in claim.access_modes and users is not None:
            others = sorted(users.get(claim.key, set()) - {pod.key})
            if others:
                refusal = refusal or (f'VolumeRestrictions: persistentvolumeclaim "{name}" is ReadWriteOncePod and '
                                      f"in use by pod {others[0]}")
        if claim.volume_name and claim.bind_completed:
            volume = view.volumes.get(claim.volume_name)
            if volume is None:
                refusal = refusal or (f'VolumeBinding: persistentvolumeclaim "{name}" is bound to persistentvolume '
                                      f'"{claim.volume_name}", which does not exist')
                continue
            if volume.node_affinity is not None:
                clauses.append(volume.node_affinity)
            if volume.zones:
                clauses.append(Clause((Term(tuple(Requirement(k, "In", v) for k, v in volume.zones)),),
                                      REASON_VOLUME_ZONE))
            if volume.csi_driver:
                attach[volume.csi_driver] = attach.get(volume.csi_driver, 0) + 1
            continue
        klass = view.classes.get(claim.storage_class) if claim.storage_class else None
        if claim.volume_name or klass is None or klass.binding_mode != WAIT_FOR_FIRST_CONSUMER:
            refusal = refusal or (f'VolumeBinding: pod has unbound immediate PersistentVolumeClaims ("{name}"'
                                  + (f", storage class {claim.storage_class!r} not found"
                                     if claim.storage_class and klass is None else "") + ")")
            continue
        if not klass.provisioner or klass.provisioner == NO_PROVISIONER:
            refusal = refusal or (f'VolumeBinding: persistentvolumeclaim "{name}" needs a pre-provisioned '
                                  f"PersistentVolume (storage class {klass.name!r} has no provisioner); bigk does not "
                                  "bind pre-provisioned volumes: pre-bind the volume to the claim (claimRef)")
            continue
        if claim.selected_node:
            clauses.append(pin_to_node(claim.selected_node))
        else:
            to_select.append(name)
        if klass.allowed_topologies is not None:
            clauses.append(klass.allowed_topologies)
        attach[klass.provisioner] = attach.get(klass.provisioner, 0) + 1
    return PodVolumes(tuple(clauses), refusal, tuple(sorted(attach.items())), tuple(to_select))


def claim_users(pods: Iterable[Pod]) -> dict[str, set[str]]:
    """Claim key -> keys of the pods that hold a node and mount it."""
    users: dict[str, set[str]] = {}
    for pod in pods:
        if pod.node:
            for name in pod.claims:
                users.setdefault(f"{pod.namespace}/{name}", set()).add(pod.key)
    return users


def apply(pod: Pod, resolved: PodVolumes, bound: bool) -> Pod:
    """The pod with its volumes' attachments in its request and, if pending, their constraints."""
    request = pod.request
    if resolved.attach:
        scalars = dict(request.scalars)
        for driver, count in resolved.attach:
            scalars[ATTACH_PREFIX + driver] = scalars.get(ATTACH_PREFIX + driver, 0) + count
        request = replace(request, scalars=tuple(sorted(scalars.items())))
    if bound:
        return pod if request is pod.request else replace(pod, request=request)
    constraints = combine(pod.constraints, resolved.clauses, resolved.refusal)
    if request is pod.request and constraints is pod.constraints:
        return pod
    return replace(pod, request=request, constraints=constraints)
