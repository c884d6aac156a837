"""Claims resolved the way kube-scheduler's volume filters treat them (VolumeBinding, VolumeZone,
VolumeRestrictions, NodeVolumeLimits)."""

from __future__ import annotations

from typing import Any

from bigk.cluster.model import Pod, PodRequest
from bigk.cluster.state import ATTACH_PREFIX
from bigk.kube.volumes import (
    StorageView,
    apply,
    attach_limits_from_v1,
    claim_from_v1,
    claim_users,
    class_from_v1,
    resolve_pod,
    volume_from_v1,
)
from tests.kube.objects import to_model


def claim(name: str, sc: str | None = "fast", volume: str = "", completed: bool = False, node: str = "",
          modes: tuple[str, ...] = ("ReadWriteOnce",)) -> Any:
    annotations = {}
    if completed:
        annotations["pv.kubernetes.io/bind-completed"] = "yes"
    if node:
        annotations["volume.kubernetes.io/selected-node"] = node
    spec: dict[str, Any] = {"accessModes": list(modes), "resources": {"requests": {"storage": "1Gi"}}}
    if sc is not None:
        spec["storageClassName"] = sc
    if volume:
        spec["volumeName"] = volume
    return claim_from_v1(to_model({"metadata": {"name": name, "namespace": "ns", "annotations": annotations},
                                   "spec": spec}, "V1PersistentVolumeClaim"))


def storage_class(name: str, mode: str = "WaitForFirstConsumer", provisioner: str = "ebs.csi.aws.com",
                  topologies: list[dict[str, Any]] | None = None) -> Any:
    data: dict[str, Any] = {"metadata": {"name": name}, "provisioner": provisioner, "volumeBindingMode": mode}
    if topologies:
        data["allowedTopologies"] = topologies
    return class_from_v1(to_model(data, "V1StorageClass"))


def volume(name: str, zone: str = "", node: str = "", driver: str = "ebs.csi.aws.com") -> Any:
    labels = {"topology.kubernetes.io/zone": zone} if zone else {}
    spec: dict[str, Any] = {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                            "csi": {"driver": driver, "volumeHandle": name}}
    if node:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}
    return volume_from_v1(to_model({"metadata": {"name": name, "labels": labels}, "spec": spec},
                                   "V1PersistentVolume"))


def view(*claims: Any, volumes: tuple[Any, ...] = (), classes: tuple[Any, ...] = ()) -> StorageView:
    return StorageView({c.key: c for c in claims}, {v.name: v for v in volumes}, {c.name: c for c in classes})


def pod(*claims: str, name: str = "p", node: str = "") -> Pod:
    return Pod(name, PodRequest(100, 64), namespace="ns", claims=claims, node=node)


def test_wait_for_first_consumer_claim_is_selected_at_bind_and_counts_one_attachment() -> None:
    v = view(claim("spark-pvc-0"), classes=(storage_class("fast"),))
    r = resolve_pod(pod("spark-pvc-0"), v)
    assert (r.refusal, r.clauses, r.to_select) == ("", (), ("spark-pvc-0",))
    assert r.attach == (("ebs.csi.aws.com", 1),)
    p = apply(pod("spark-pvc-0"), r, bound=False)
    assert p.request.scalars == ((ATTACH_PREFIX + "ebs.csi.aws.com", 1),) and p.constraints is None


def test_a_selected_node_pins_the_pod_and_allowed_topologies_restrict_it() -> None:
    topo = [{"matchLabelExpressions": [{"key": "topology.kubernetes.io/zone", "values": ["z1"]}]}]
    v = view(claim("c", node="n2"), classes=(storage_class("fast", topologies=topo),))
    r = resolve_pod(pod("c"), v)
    assert r.to_select == ()
    c = apply(pod("c"), r, bound=False).constraints
    assert c is not None
    assert c.admits("n2", {"topology.kubernetes.io/zone": "z1"})
    assert not c.admits("n1", {"topology.kubernetes.io/zone": "z1"})
    assert not c.admits("n2", {"topology.kubernetes.io/zone": "z2"})


def test_bound_claims_follow_the_volume_node_affinity_and_zone() -> None:
    v = view(claim("c", volume="pv1", completed=True), volumes=(volume("pv1", zone="z1__z2", node="n1"),))
    c = apply(pod("c"), resolve_pod(pod("c"), v), bound=False).constraints
    assert c is not None
    assert c.admits("n1", {"kubernetes.io/hostname": "n1", "topology.kubernetes.io/zone": "z2"})
    assert not c.admits("n1", {"kubernetes.io/hostname": "n1", "topology.kubernetes.io/zone": "z3"})
    assert not c.admits("n2", {"kubernetes.io/hostname": "n2", "topology.kubernetes.io/zone": "z1"})


def test_reasons_a_pod_waits() -> None:
    classes = (storage_class("fast"), storage_class("slow", mode="Immediate"),
               storage_class("local", provisioner="kubernetes.io/no-provisioner"))
    cases = {
        "missing": (view(classes=classes), 'persistentvolumeclaim "missing" not found'),
        "imm": (view(claim("imm", sc="slow"), classes=classes), "unbound immediate PersistentVolumeClaims"),
        "noclass": (view(claim("noclass", sc=None), classes=classes), "unbound immediate"),
        "gone-class": (view(claim("gone-class", sc="nope"), classes=classes), "storage class 'nope' not found"),
        "prebound": (view(claim("prebound", volume="pv9"), classes=classes), "unbound immediate"),
        "lost": (view(claim("lost", volume="pv9", completed=True), classes=classes), '"pv9", which does not exist'),
        "local": (view(claim("local", sc="local"), classes=classes), "needs a pre-provisioned PersistentVolume"),
    }
    for name, (v, text) in cases.items():
        refusal = resolve_pod(pod(name), v).refusal
        assert refusal.startswith("VolumeBinding: ") and text in refusal, (name, refusal)


def test_read_write_once_pod_claim_in_use_elsewhere() -> None:
    v = view(claim("c", modes=("ReadWriteOncePod",)), classes=(storage_class("fast"),))
    users = claim_users([pod("c", name="holder", node="n1")])
    assert resolve_pod(pod("c"), v, users).refusal.startswith("VolumeRestrictions: ")
    assert resolve_pod(pod("c", name="holder", node="n1"), v, users).refusal == ""


def test_csinode_limits() -> None:
    obj = to_model({"metadata": {"name": "n1"}, "spec": {"drivers": [
        {"name": "ebs.csi.aws.com", "nodeID": "i-1", "allocatable": {"count": 25}},
        {"name": "efs.csi.aws.com", "nodeID": "i-1"}]}}, "V1CSINode")
    assert attach_limits_from_v1(obj) == {"ebs.csi.aws.com": 25}
