"""Scenarios for the Kubernetes semantics Spark pods meet on real clusters (part of `scenarios.ALL`).

Each scenario registers its own Node objects (labelled with a scenario id, deleted at the end) and pins
its pods to them with required node affinity, so it means the same on the emulator and on a real API
server, whatever other nodes exist.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from bigk.cluster.labels import SELECTED_NODE_ANNOTATION
from bigk.kube.loop import SchedulerLoop
from tests.kube.harness import HOSTNAME, Harness, unique

SCENARIO_LABEL = "bigk.io/scenario"
PROVISIONER = "bigk-test.example.com"  # no such provisioner runs: claims are provisioned by nobody


def make_node(h: Harness, name: str, *, labels: dict[str, str], taints: list[dict[str, str]] | None = None,
              cpu: str = "4", memory: str = "8Gi") -> str:
    """Register a ready node with exactly `taints` (deleted when the harness closes)."""
    core = h.core
    alloc = {"cpu": cpu, "memory": memory, "pods": "110"}
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {HOSTNAME: name, **labels}},
            "status": {"capacity": alloc, "allocatable": alloc, "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": now,
                 "lastTransitionTime": now}]}}
    core.create_node(body)
    h.cleanups.append(lambda: core.delete_node(name))
    # A real API server taints every new node node.kubernetes.io/not-ready (TaintNodesByCondition);
    # its kubelet's readiness and the node lifecycle controller clear it. Keep exactly the wanted taints.
    for _ in range(10):  # controllers annotate new nodes too (the TTL controller): retry on a conflict
        node = core.read_node(name)
        node.spec.taints = taints or None
        try:
            core.replace_node(name, node)
            return name
        except client.ApiException as exc:
            if exc.status != 409:
                raise
    raise AssertionError(f"could not set the taints of node {name}")


def scenario_nodes(h: Harness, loop: SchedulerLoop, names: list[str]) -> None:
    h.wait(lambda: set(names) <= {n.name for n in loop.cache.nodes() if not n.unschedulable},
           what="scenario nodes in bigk's cache")


def affinity(sid: str, *exprs: dict[str, Any], fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Required node affinity: the scenario's nodes, plus `exprs` / `fields`."""
    term: dict[str, Any] = {"matchExpressions": [{"key": SCENARIO_LABEL, "operator": "In", "values": [sid]}, *exprs]}
    if fields:
        term["matchFields"] = fields
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}


def explained(h: Harness, loop: SchedulerLoop, name: str, text: str) -> str:
    key = f"{h.namespace}/{name}"
    return h.wait(lambda: text in loop.explanations().get(key, "") and loop.explanations()[key],
                  what=f"{name} explained with {text!r}")


def node_affinity_and_taints(h: Harness) -> None:
    """Required node affinity with every operator and matchFields; NoSchedule and NoExecute taints filter,
    whatever tolerationSeconds says; PreferNoSchedule only ranks nodes."""
    sid = unique("aff")
    mine = {SCENARIO_LABEL: sid}
    a = make_node(h, f"{sid}-a", labels={**mine, "disk": "ssd", "cores": "64"})
    b = make_node(h, f"{sid}-b", labels={**mine, "disk": "hdd", "cores": "8"},
                  taints=[{"key": "dedicated", "value": "etl", "effect": "NoSchedule"}])
    c = make_node(h, f"{sid}-c", labels={**mine, "disk": "hdd", "cores": "8"},
                  taints=[{"key": "evict", "effect": "NoExecute"}])
    d = make_node(h, f"{sid}-d", labels={**mine, "disk": "hdd", "cores": "8", "soft": "yes"},
                  taints=[{"key": "spare", "effect": "PreferNoSchedule"}])
    loop = h.loop()
    scenario_nodes(h, loop, [a, b, c, d])
    etl = {"key": "dedicated", "operator": "Equal", "value": "etl", "effect": "NoSchedule"}
    evict = {"key": "evict", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}
    pods = {
        "ssd": ({"affinity": affinity(sid, {"key": "disk", "operator": "In", "values": ["ssd"]})}, {a}),
        "many-cores": ({"affinity": affinity(sid, {"key": "cores", "operator": "Gt", "values": ["32"]})}, {a}),
        "by-name": ({"affinity": affinity(sid, fields=[{"key": "metadata.name", "operator": "In", "values": [b]}]),
                     "tolerations": [etl]}, {b}),
        "evictable": ({"affinity": affinity(sid, {"key": "disk", "operator": "NotIn", "values": ["ssd"]},
                                            {"key": "soft", "operator": "DoesNotExist"}),
                       "tolerations": [evict]}, {c}),
        "only-soft": ({"affinity": affinity(sid, {"key": "cores", "operator": "Lt", "values": ["16"]})}, {d}),
        "avoids-soft": ({"affinity": affinity(sid, {"key": "disk", "operator": "Exists"},
                                              {"key": "cores", "operator": "In", "values": ["8"]}),
                         "tolerations": [etl, evict]}, {b, c}),
        "tolerates-all": ({"affinity": affinity(sid, {"key": "cores", "operator": "Lt", "values": ["16"]}),
                           "tolerations": [{"operator": "Exists"}]}, {b, c, d}),
    }
    for name, (spec, _) in pods.items():
        h.pod(name, extra_spec=spec)
    h.pod("nowhere", extra_spec={"affinity": affinity(sid, {"key": "disk", "operator": "In", "values": ["nvme"]})})
    h.pod("untolerated", extra_spec={"affinity": affinity(
        sid, fields=[{"key": "metadata.name", "operator": "In", "values": [b]}])})
    for name, (_, allowed) in pods.items():
        h.wait(lambda name=name: h.node_of(name), what=f"{name} bound")  # type: ignore[misc]
        assert h.node_of(name) in allowed, (name, h.node_of(name), allowed)
    assert "node affinity mismatch" in explained(h, loop, "nowhere", "no node could ever hold it")
    assert "untolerated taint" in explained(h, loop, "untolerated", "no node could ever hold it")
    assert h.node_of("nowhere") == h.node_of("untolerated") == ""


def init_containers_and_overhead(h: Harness) -> None:
    """The request is max(containers + sidecars, each init container beside the sidecars before it) plus the
    RuntimeClass overhead the API server sets: 3 of the node's 4 CPUs here, so 1.1 CPU more does not fit."""
    sid = unique("init")
    node = make_node(h, f"{sid}-n", labels={SCENARIO_LABEL: sid}, cpu="4")
    node_api = client.NodeV1Api(h.api)
    node_api.create_runtime_class({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                                   "metadata": {"name": sid}, "handler": "runc",
                                   "overhead": {"podFixed": {"cpu": "500m", "memory": "64Mi"}}})
    h.cleanups.append(lambda: node_api.delete_runtime_class(sid))
    loop = h.loop()
    scenario_nodes(h, loop, [node])
    pin = affinity(sid)

    def container(name: str, cpu: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "image": h.image, "resources": {"requests": {"cpu": cpu, "memory": "16Mi"}}, **extra}

    h.pod("app", cpu="1", extra_spec={"affinity": pin, "runtimeClassName": sid, "initContainers": [
        container("sidecar", "1", restartPolicy="Always"), container("setup", "1500m")]})
    h.wait(lambda: h.node_of("app") == node, what="app bound")
    app = h.read("app")
    assert app is not None and app.spec.overhead == {"cpu": "500m", "memory": "64Mi"}  # set by admission
    h.pod("too-big", cpu="1100m", extra_spec={"affinity": pin})
    assert "insufficient cpu" in explained(h, loop, "too-big", "insufficient cpu")
    # Ahead of too-big in the queue: at equal priority an older too-big is the head and holds the free CPU for
    # itself (backfill protection), so "fits" bound only when both were created in the same second
    # (creationTimestamp's resolution; then the name decides) and timed out on a loaded machine.
    h.pod("fits", cpu="1", priority=1, extra_spec={"affinity": pin})
    h.wait(lambda: h.node_of("fits") == node, what="a pod in the last CPU bound")
    assert h.node_of("too-big") == ""


def host_ports(h: Harness) -> None:
    """A host port is held per node, protocol and address: the third pod asking for TCP 18080 on two nodes
    waits, a UDP one does not."""
    sid = unique("ports")
    nodes = [make_node(h, f"{sid}-{i}", labels={SCENARIO_LABEL: sid}) for i in range(2)]
    loop = h.loop()
    scenario_nodes(h, loop, nodes)

    def spec(port: int, protocol: str = "TCP") -> dict[str, Any]:
        return {"affinity": affinity(sid), "containers": [{
            "name": "main", "image": h.image, "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
            "ports": [{"containerPort": 80, "hostPort": port, "protocol": protocol}]}]}

    for i in range(3):
        h.pod(f"web-{i}", extra_spec=spec(18080))
    h.wait(lambda: sum(1 for i in range(3) if h.node_of(f"web-{i}")) == 2, what="two web pods bound")
    placed = sorted(h.node_of(f"web-{i}") for i in range(3) if h.node_of(f"web-{i}"))
    assert placed == sorted(nodes)
    waiting = next(f"web-{i}" for i in range(3) if not h.node_of(f"web-{i}"))
    explained(h, loop, waiting, "host port conflict")
    h.pod("dns", extra_spec=spec(18080, "UDP"))
    h.wait(lambda: h.node_of("dns") in nodes, what="UDP pod bound")
    assert not h.node_of(waiting)


def _claim(h: Harness, name: str, storage_class: str, annotations: dict[str, str] | None = None,
           volume: str = "") -> client.V1PersistentVolumeClaim:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                            "resources": {"requests": {"storage": "1Gi"}}}
    if volume:
        spec["volumeName"] = volume
    return h.core.create_namespaced_persistent_volume_claim(h.namespace, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "annotations": dict(annotations or {})}, "spec": spec})


def _storage_class(h: Harness, name: str, mode: str) -> None:
    storage = client.StorageV1Api(h.api)
    storage.create_storage_class({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                  "metadata": {"name": name}, "provisioner": PROVISIONER,
                                  "volumeBindingMode": mode})
    h.cleanups.append(lambda: storage.delete_storage_class(name))


def _mounting(sid: str, *claims: str) -> dict[str, Any]:
    return {"affinity": affinity(sid), "volumes": [
        {"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)]}


def wait_for_first_consumer_claims(h: Harness) -> None:
    """Spark's on-demand executor claims (WaitForFirstConsumer): a pod whose claim is not created yet waits;
    once it exists bigk writes volume.kubernetes.io/selected-node on it, then binds the pod there. A claim
    that already names a node pins the pod to it; an unbound Immediate claim makes the pod wait."""
    sid = unique("wffc")
    nodes = [make_node(h, f"{sid}-{i}", labels={SCENARIO_LABEL: sid}) for i in range(2)]
    wffc, immediate = f"{sid}-wffc", f"{sid}-imm"
    _storage_class(h, wffc, "WaitForFirstConsumer")
    _storage_class(h, immediate, "Immediate")
    loop = h.loop()
    scenario_nodes(h, loop, nodes)
    h.pod("exec-1", extra_spec=_mounting(sid, "exec-1-pvc-0"))
    explained(h, loop, "exec-1", 'VolumeBinding: persistentvolumeclaim "exec-1-pvc-0" not found')
    assert h.node_of("exec-1") == ""
    _claim(h, "exec-1-pvc-0", wffc)
    h.wait(lambda: h.node_of("exec-1") in nodes, what="exec-1 bound once its claim exists")
    claim = h.core.read_namespaced_persistent_volume_claim("exec-1-pvc-0", h.namespace)
    assert (claim.metadata.annotations or {}).get(SELECTED_NODE_ANNOTATION) == h.node_of("exec-1")

    target = nodes[1] if h.node_of("exec-1") == nodes[0] else nodes[0]
    _claim(h, "pinned-pvc", wffc, {SELECTED_NODE_ANNOTATION: target})
    h.pod("pinned", extra_spec=_mounting(sid, "pinned-pvc"))
    h.wait(lambda: h.node_of("pinned") == target, what="pod follows its claim's selected node")

    _claim(h, "imm-pvc", immediate)
    h.pod("immediate", extra_spec=_mounting(sid, "imm-pvc"))
    explained(h, loop, "immediate", "VolumeBinding: pod has unbound immediate PersistentVolumeClaims")
    assert h.node_of("immediate") == ""


def shared_unbound_claim_gets_one_node(h: Harness) -> None:
    """Two pods that share one unbound WaitForFirstConsumer claim and fit only on different nodes: the claim
    names one node, the first pod goes there, the second waits for room on that same node."""
    sid = unique("shared")
    nodes = [make_node(h, f"{sid}-{i}", labels={SCENARIO_LABEL: sid}, cpu="4") for i in range(2)]
    _storage_class(h, f"{sid}-wffc", "WaitForFirstConsumer")
    claim = h.core.create_namespaced_persistent_volume_claim(h.namespace, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "shared"},
        "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": f"{sid}-wffc",
                 "resources": {"requests": {"storage": "1Gi"}}}})
    assert claim.metadata.name == "shared"
    loop = h.loop(start=False)
    h.pod("a", cpu="3", extra_spec=_mounting(sid, "shared"))
    h.pod("b", cpu="3", extra_spec=_mounting(sid, "shared"))
    loop.start()
    scenario_nodes(h, loop, nodes)
    h.wait(lambda: h.node_of("a") or h.node_of("b"), what="one of the pods bound")
    first, second = ("a", "b") if h.node_of("a") else ("b", "a")
    explained(h, loop, second, "volume provisioned for another node")
    selected = h.core.read_namespaced_persistent_volume_claim("shared", h.namespace).metadata.annotations
    assert selected[SELECTED_NODE_ANNOTATION] == h.node_of(first) and h.node_of(second) == ""


def bound_claim_follows_volume(h: Harness) -> None:
    """A pod whose claim is bound goes where its PersistentVolume's node affinity allows."""
    sid = unique("pv")
    nodes = [make_node(h, f"{sid}-{i}", labels={SCENARIO_LABEL: sid}) for i in range(2)]
    loop = h.loop()
    scenario_nodes(h, loop, nodes)
    pv = f"{sid}-vol"
    claim = _claim(h, "data", "", {"pv.kubernetes.io/bind-completed": "yes"}, volume=pv)
    h.core.create_persistent_volume({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "",
                 "persistentVolumeReclaimPolicy": "Retain", "csi": {"driver": PROVISIONER, "volumeHandle": sid},
                 "claimRef": {"namespace": h.namespace, "name": "data", "uid": claim.metadata.uid},
                 "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                     {"key": HOSTNAME, "operator": "In", "values": [nodes[1]]}]}]}}}})
    h.cleanups.append(lambda: h.core.delete_persistent_volume(pv))
    h.pod("reader", extra_spec=_mounting(sid, "data"))
    h.wait(lambda: h.node_of("reader") == nodes[1], what="pod placed by its volume's node affinity")


def existing_pods_anti_affinity(h: Harness) -> None:
    """A pod another scheduler placed, with required anti-affinity against `app=<id>` per host, keeps bigk's
    matching pods off its node; a matching pod that may only use that node waits and says why."""
    sid = unique("anti")
    a = make_node(h, f"{sid}-a", labels={SCENARIO_LABEL: sid})
    b = make_node(h, f"{sid}-b", labels={SCENARIO_LABEL: sid})
    h.pod("holder", extra_spec={"nodeName": a, "schedulerName": "default-scheduler", "affinity": {
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": sid}}, "topologyKey": HOSTNAME}]}}})
    loop = h.loop()
    scenario_nodes(h, loop, [a, b])
    for i in range(2):
        h.pod(f"exec-{i}", labels={"app": sid}, extra_spec={"affinity": affinity(sid)})
    h.pod("other", labels={"app": "unrelated"}, extra_spec={"affinity": affinity(
        sid, fields=[{"key": "metadata.name", "operator": "In", "values": [a]}])})
    h.pod("stuck", labels={"app": sid}, extra_spec={"affinity": affinity(
        sid, fields=[{"key": "metadata.name", "operator": "In", "values": [a]}])})
    for name, node in (("exec-0", b), ("exec-1", b), ("other", a)):
        h.wait(lambda name=name, node=node: h.node_of(name) == node, what=f"{name} on {node}")  # type: ignore[misc]
    explained(h, loop, "stuck", "existing pods' anti-affinity")
    assert h.node_of("stuck") == ""


def storage_objects_as_the_server_checks_them(h: Harness) -> None:
    """What the API server refuses and answers for storage objects (differences the emulator once had):
    a CSI driver name must be a DNS subdomain, a claim needs access modes and a storage request, and
    deleting a StorageClass or PersistentVolume answers with the deleted object."""
    sid = unique("sto")
    pv = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"{sid}-bad"},
          "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                   "csi": {"driver": "example.com/not-a-subdomain", "volumeHandle": sid}}}
    fields = _refused_fields(lambda: h.core.create_persistent_volume(pv))
    assert "spec.csi.driver" in fields, fields
    for spec, field in (({"resources": {"requests": {"storage": "1Gi"}}}, "spec.accessModes"),
                        ({"accessModes": ["ReadWriteOnce"]}, "spec.resources[storage]")):
        fields = _refused_fields(lambda spec=spec: h.core.create_namespaced_persistent_volume_claim(  # type: ignore[misc]
            h.namespace, {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": f"{sid}-c"},
                          "spec": spec}))
        assert field in fields, fields
    storage = client.StorageV1Api(h.api)
    storage.create_storage_class({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                  "metadata": {"name": sid}, "provisioner": PROVISIONER})
    gone = storage.delete_storage_class(sid)
    assert (gone.provisioner, gone.volume_binding_mode, gone.reclaim_policy) == (PROVISIONER, "Immediate", "Delete")
    pv["metadata"]["name"], pv["spec"]["csi"]["driver"] = sid, PROVISIONER  # type: ignore[index]
    h.core.create_persistent_volume(pv)
    assert h.core.delete_persistent_volume(sid).metadata.name == sid


def _refused_fields(create: Any) -> list[str]:
    try:
        create()
    except client.ApiException as exc:
        assert exc.status == 422, exc
        causes = (json.loads(exc.body).get("details") or {}).get("causes") or []
        return [str(c.get("field")) for c in causes]
    raise AssertionError("the server accepted an invalid object")


ALL = [node_affinity_and_taints, init_containers_and_overhead, host_ports, wait_for_first_consumer_claims,
       shared_unbound_claim_gets_one_node, bound_claim_follows_volume, existing_pods_anti_affinity,
       storage_objects_as_the_server_checks_them]
