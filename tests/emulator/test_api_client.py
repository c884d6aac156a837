# mypy: disable-error-code="union-attr,index,arg-type,attr-defined,misc,type-var,operator"
# (the official client types every field Optional and its methods take models; these tests pass dicts)
"""The emulated API through the official Python client: CRUD, selectors, conflicts, binding, eviction, leases."""

from __future__ import annotations

import json

import httpx
import pytest
from kubernetes import client, watch

from bigk.emulator import EmulatedCluster
from tests.emulator.conftest import api_client, binding, pod_body


def test_nodes_carry_capacity_labels_and_taints(core: client.CoreV1Api) -> None:
    nodes = {n.metadata.name: n for n in core.list_node().items}
    assert sorted(nodes) == ["cpu-0", "cpu-1", "gpu-0"]
    gpu = nodes["gpu-0"]
    assert gpu.status.capacity["nvidia.com/gpu"] == "4"
    assert gpu.status.allocatable["cpu"] == "64"
    assert gpu.status.allocatable["memory"] == "512Gi"
    assert gpu.metadata.labels["nvidia.com/gpu.product"] == "A100"
    assert gpu.metadata.labels["bigk.io/pool"] == "gpu-a100"
    assert [(t.key, t.effect) for t in gpu.spec.taints] == [("nvidia.com/gpu", "NoSchedule")]
    ready = [c for c in gpu.status.conditions if c.type == "Ready"]
    assert ready and ready[0].status == "True"
    assert "nvidia.com/gpu" not in nodes["cpu-0"].status.capacity


def test_create_get_list_delete_pod(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_pod("default", pod_body("p1"))
    assert created.status.phase == "Pending"
    assert created.spec.scheduler_name == "bigk"
    assert created.metadata.uid and int(created.metadata.resource_version) > 0
    got = core.read_namespaced_pod("p1", "default")
    assert got.metadata.uid == created.metadata.uid
    listed = core.list_namespaced_pod("default")
    assert [p.metadata.name for p in listed.items] == ["p1"]
    assert int(listed.metadata.resource_version) >= int(created.metadata.resource_version)
    core.delete_namespaced_pod("p1", "default")  # unbound: deleted at once
    with pytest.raises(client.ApiException) as err:
        core.read_namespaced_pod("p1", "default")
    assert err.value.status == 404
    assert json.loads(err.value.body)["reason"] == "NotFound"


def test_duplicate_create_is_409_already_exists(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", pod_body("dup"))
    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_pod("default", pod_body("dup"))
    assert err.value.status == 409
    assert json.loads(err.value.body)["reason"] == "AlreadyExists"


def test_invalid_bodies_are_rejected(bare: EmulatedCluster) -> None:
    url = f"{bare.url}/api/v1/namespaces/default/pods"
    containers = {"containers": [{"name": "c", "image": "x"}]}
    bad_name = httpx.post(url, json={"metadata": {"name": "Bad_Name"}, "spec": containers})
    assert bad_name.status_code == 422
    status = bad_name.json()
    assert status["kind"] == "Status" and status["reason"] == "Invalid" and "metadata.name" in status["message"]
    no_containers = httpx.post(url, json={"metadata": {"name": "nocontainers"}, "spec": {}})
    assert no_containers.status_code == 422
    assert "spec.containers" in no_containers.json()["message"]
    wrong_ns = httpx.post(url, json={"metadata": {"name": "p", "namespace": "other"},
                                     "spec": {"containers": [{"name": "c", "image": "x"}]}})
    assert wrong_ns.status_code == 400
    not_json = httpx.post(url, content=b"{not json", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["reason"] == "BadRequest"


def test_namespaces_are_created_on_demand(core: client.CoreV1Api) -> None:
    names = {n.metadata.name for n in core.list_namespace().items}
    assert {"default", "kube-system"} <= names
    core.create_namespaced_config_map("team-a", {"metadata": {"name": "cm"}, "data": {"k": "v"}})
    assert core.read_namespace("team-a").status.phase == "Active"
    assert core.read_namespaced_config_map("cm", "team-a").data == {"k": "v"}


def test_label_selectors(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", pod_body("a", labels={"app": "x", "tier": "web"}))
    core.create_namespaced_pod("default", pod_body("b", labels={"app": "y", "tier": "db"}))
    core.create_namespaced_pod("default", pod_body("c", labels={"app": "z"}))

    def names(selector: str) -> list[str]:
        return [p.metadata.name for p in core.list_namespaced_pod("default", label_selector=selector).items]

    assert names("app=x") == ["a"]
    assert names("app==y") == ["b"]
    assert names("app!=x") == ["b", "c"]
    assert names("app in (x,z)") == ["a", "c"]
    assert names("app notin (x,z)") == ["b"]
    assert names("tier") == ["a", "b"]
    assert names("!tier") == ["c"]
    assert names("app in (x,y),tier=db") == ["b"]
    with pytest.raises(client.ApiException) as err:
        names("app in (x")
    assert err.value.status == 400


def test_field_selectors(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", pod_body("unbound"))
    core.create_namespaced_pod("default", pod_body("bound", node="cpu-0"))
    core.create_namespaced_pod("default", pod_body("other", scheduler="default-scheduler"))

    def names(selector: str) -> list[str]:
        return [p.metadata.name for p in core.list_pod_for_all_namespaces(field_selector=selector).items]

    assert names("spec.nodeName=") == ["other", "unbound"]
    assert names("spec.nodeName=cpu-0") == ["bound"]
    assert names("spec.schedulerName=bigk,spec.nodeName=") == ["unbound"]
    assert names("metadata.name=bound") == ["bound"]
    assert names("metadata.namespace=default,status.phase=Pending") == ["bound", "other", "unbound"]
    assert names("status.phase!=Pending") == []


def test_stale_update_is_409_conflict(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", pod_body("p"))
    first = core.read_namespaced_pod("p", "default")
    second = core.read_namespaced_pod("p", "default")
    first.metadata.labels = {"v": "1"}
    core.replace_namespaced_pod("p", "default", first)
    second.metadata.labels = {"v": "2"}
    with pytest.raises(client.ApiException) as err:
        core.replace_namespaced_pod("p", "default", second)
    assert err.value.status == 409
    assert json.loads(err.value.body)["reason"] == "Conflict"
    assert core.read_namespaced_pod("p", "default").metadata.labels == {"v": "1"}


def test_pod_spec_is_immutable_except_allowed_fields(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", pod_body("p"))
    with pytest.raises(client.ApiException) as err:
        core.patch_namespaced_pod("p", "default", {"spec": {"schedulerName": "other"}})
    assert err.value.status == 422
    core.patch_namespaced_pod("p", "default", {"metadata": {"annotations": {"a": "b"}}})
    assert core.read_namespaced_pod("p", "default").metadata.annotations == {"a": "b"}


def test_binding_sets_node_once_and_copies_annotations(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", pod_body("p"))
    resp = core.create_namespaced_pod_binding(
        "p", "default", binding("p", "gpu-0", {"bigk.io/assigned-gpus": "1,2"}), _preload_content=False
    )
    assert resp.status == 201
    assert json.loads(resp.data)["status"] == "Success"
    pod = core.read_namespaced_pod("p", "default")
    assert pod.spec.node_name == "gpu-0"
    assert pod.metadata.annotations["bigk.io/assigned-gpus"] == "1,2"
    assert any(c.type == "PodScheduled" and c.status == "True" for c in pod.status.conditions)
    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_pod_binding("p", "default", binding("p", "cpu-1"), _preload_content=False)
    assert err.value.status == 409
    assert "already assigned" in json.loads(err.value.body)["message"]
    assert core.read_namespaced_pod("p", "default").spec.node_name == "gpu-0"


def test_binding_refuses_missing_and_gated_pods(core: client.CoreV1Api) -> None:
    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_pod_binding("ghost", "default", binding("ghost", "cpu-0"), _preload_content=False)
    assert err.value.status == 404
    gated = pod_body("gated")
    gated["spec"]["schedulingGates"] = [{"name": "bigk.io/wait"}]
    core.create_namespaced_pod("default", gated)
    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_pod_binding("gated", "default", binding("gated", "cpu-0"), _preload_content=False)
    assert err.value.status == 409
    core.patch_namespaced_pod("gated", "default", [{"op": "remove", "path": "/spec/schedulingGates"}])
    core.create_namespaced_pod_binding("gated", "default", binding("gated", "cpu-0"), _preload_content=False)
    assert core.read_namespaced_pod("gated", "default").spec.node_name == "cpu-0"


def test_status_subresource_changes_only_status(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", pod_body("p"))
    patch = {
        "metadata": {"labels": {"ignored": "yes"}},
        "status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                   "message": "0/3 nodes fit"}]},
    }
    core.patch_namespaced_pod_status("p", "default", patch)
    pod = core.read_namespaced_pod("p", "default")
    cond = [c for c in pod.status.conditions if c.type == "PodScheduled"][0]
    assert (cond.status, cond.reason, cond.message) == ("False", "Unschedulable", "0/3 nodes fit")
    assert not (pod.metadata.labels or {}).get("ignored")


def test_eviction_deletes_the_pod(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", pod_body("victim"))
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name="victim", namespace="default"),
                             delete_options=client.V1DeleteOptions(grace_period_seconds=0))
    core.create_namespaced_pod_eviction("victim", "default", body)
    with pytest.raises(client.ApiException) as err:
        core.read_namespaced_pod("victim", "default")
    assert err.value.status == 404
    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_pod_eviction("victim", "default", body)
    assert err.value.status == 404


def test_bound_pod_deletion_is_graceful(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", pod_body("p", node="cpu-0"))
    deleted = core.delete_namespaced_pod("p", "default")
    assert deleted.metadata.deletion_timestamp is not None  # no kubelet here: it stays terminating
    assert core.read_namespaced_pod("p", "default").metadata.deletion_grace_period_seconds == 30
    core.delete_namespaced_pod("p", "default", grace_period_seconds=0)
    assert core.list_namespaced_pod("default").items == []


def test_cordon_with_strategic_merge_and_annotate_with_merge_patch(core: client.CoreV1Api) -> None:
    core.patch_node("cpu-1", {"spec": {"unschedulable": True}})
    assert core.read_node("cpu-1").spec.unschedulable is True
    core.patch_node("cpu-1", {"metadata": {"annotations": {"ops/reason": "disk"}}})
    node = core.read_node("cpu-1")
    assert node.metadata.annotations["ops/reason"] == "disk"
    assert node.status.capacity["cpu"] == "16"  # the main endpoint never drops status
    core.patch_node("cpu-1", [{"op": "replace", "path": "/spec/unschedulable", "value": False}])
    assert not core.read_node("cpu-1").spec.unschedulable


def test_owner_deletion_collects_dependents(core: client.CoreV1Api) -> None:
    owner = core.create_namespaced_pod("default", pod_body("owner"))
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "owner", "uid": owner.metadata.uid, "controller": True}
    dep = pod_body("dependent")
    dep["metadata"]["ownerReferences"] = [ref]
    core.create_namespaced_pod("default", dep)
    core.create_namespaced_config_map("default", {"metadata": {"name": "conf", "ownerReferences": [ref]}})
    core.delete_namespaced_pod("owner", "default")
    assert core.list_namespaced_pod("default").items == []
    assert core.list_namespaced_config_map("default").items == []


def test_list_pages_with_limit_and_continue(core: client.CoreV1Api) -> None:
    for i in range(5):
        core.create_namespaced_pod("default", pod_body(f"p{i}"))
    page = core.list_namespaced_pod("default", limit=2)
    names = [p.metadata.name for p in page.items]
    while page.metadata._continue:
        page = core.list_namespaced_pod("default", limit=2, _continue=page.metadata._continue)
        names += [p.metadata.name for p in page.items]
    assert names == [f"p{i}" for i in range(5)]


def test_lease_crud_and_optimistic_concurrency(bare: EmulatedCluster) -> None:
    api = api_client(bare.url)
    leases = client.CoordinationV1Api(api)
    body = client.V1Lease(
        metadata=client.V1ObjectMeta(name="bigk-leader", namespace="kube-system"),
        spec=client.V1LeaseSpec(holder_identity="a", lease_duration_seconds=15),
    )
    created = leases.create_namespaced_lease("kube-system", body)
    assert created.spec.holder_identity == "a"
    mine = leases.read_namespaced_lease("bigk-leader", "kube-system")
    theirs = leases.read_namespaced_lease("bigk-leader", "kube-system")
    mine.spec.holder_identity = "b"
    leases.replace_namespaced_lease("bigk-leader", "kube-system", mine)
    theirs.spec.holder_identity = "c"
    with pytest.raises(client.ApiException) as err:
        leases.replace_namespaced_lease("bigk-leader", "kube-system", theirs)
    assert err.value.status == 409
    assert leases.read_namespaced_lease("bigk-leader", "kube-system").spec.holder_identity == "b"
    assert [x.metadata.name for x in leases.list_namespaced_lease("kube-system").items] == ["bigk-leader"]
    leases.delete_namespaced_lease("bigk-leader", "kube-system")
    assert leases.list_namespaced_lease("kube-system").items == []
    api.close()


def test_events_are_one_storage_seen_through_both_groups(bare: EmulatedCluster) -> None:
    api = api_client(bare.url)
    core, events = client.CoreV1Api(api), client.EventsV1Api(api)
    core.create_namespaced_event("default", {
        "metadata": {"name": "p.1"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Scheduled", "message": "bound to cpu-0", "type": "Normal", "count": 1,
    })
    events.create_namespaced_event("default", {
        "metadata": {"name": "p.2"}, "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "FailedScheduling", "note": "0/3 nodes fit", "type": "Warning", "action": "Scheduling",
        "reportingController": "bigk", "reportingInstance": "bigk-0", "eventTime": "2026-01-01T00:00:00.000000Z",
    })
    # kubectl describe reads core/v1 with an involvedObject selector
    seen = core.list_namespaced_event("default", field_selector="involvedObject.name=p").items
    assert [(e.reason, e.message) for e in seen] == [("Scheduled", "bound to cpu-0"),
                                                    ("FailedScheduling", "0/3 nodes fit")]
    assert seen[1].reporting_component == "bigk"
    new_style = events.list_namespaced_event("default", field_selector="regarding.name=p").items
    assert [(e.reason, e.note, e.deprecated_count) for e in new_style] == [("Scheduled", "bound to cpu-0", 1),
                                                                          ("FailedScheduling", "0/3 nodes fit", None)]
    events.patch_namespaced_event("p.2", "default", {"note": "0/4 nodes fit"})
    assert core.read_namespaced_event("p.2", "default").message == "0/4 nodes fit"
    streamed = [(e["type"], e["raw_object"]["note"]) for e in watch.Watch().stream(
        events.list_namespaced_event, "default", timeout_seconds=1)]
    assert streamed == [("ADDED", "bound to cpu-0"), ("ADDED", "0/4 nodes fit")]
    events.delete_namespaced_event("p.1", "default")
    assert [e.metadata.name for e in core.list_namespaced_event("default").items] == ["p.2"]
    api.close()


def test_services_and_networkpolicies_apply(bare: EmulatedCluster) -> None:
    api = api_client(bare.url)
    net = client.NetworkingV1Api(api)
    body = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "app-policy"}, "spec": {"podSelector": {"matchLabels": {"a": "b"}}}}
    net.create_namespaced_network_policy("default", body)
    assert net.read_namespaced_network_policy("app-policy", "default").spec.pod_selector.match_labels == {"a": "b"}
    core = client.CoreV1Api(api)
    svc = core.create_namespaced_service("default", {"metadata": {"name": "svc"},
                                                     "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}})
    assert svc.spec.cluster_ip and svc.spec.ports[0].target_port == 80
    api.close()


def test_discovery_and_version(bare: EmulatedCluster) -> None:
    api = api_client(bare.url)
    version = client.VersionApi(api).get_code()
    assert version.git_version.endswith("bigk-emulator")
    resources = {r.name for r in client.CoreV1Api(api).get_api_resources().resources}
    assert {"pods", "pods/binding", "pods/eviction", "pods/status", "nodes", "configmaps", "events"} <= resources
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {"coordination.k8s.io", "events.k8s.io", "networking.k8s.io"} <= groups
    api.close()


def test_list_with_resource_version(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", pod_body("a"))
    current = core.list_namespaced_pod("default").metadata.resource_version
    assert len(core.list_namespaced_pod("default", resource_version="0").items) == 1
    assert len(core.list_namespaced_pod("default", resource_version=current).items) == 1
    with pytest.raises(client.ApiException) as err:
        core.list_namespaced_pod("default", resource_version=str(int(current) + 100))
    assert err.value.status == 504
    core.create_namespaced_pod("default", pod_body("b"))
    with pytest.raises(client.ApiException) as err:
        core.list_namespaced_pod("default", resource_version=current, resource_version_match="Exact")
    assert err.value.status == 410


def test_server_side_apply_creates_then_merges_without_duplicating(bare: EmulatedCluster) -> None:
    url = f"{bare.url}/api/v1/namespaces/default/services/app-svc"
    headers = {"Content-Type": "application/apply-patch+yaml"}
    params = {"fieldManager": "fabric8", "force": "true"}
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "app-svc"},
            "spec": {"clusterIP": "None", "ports": [{"name": "rpc", "port": 7078}], "selector": {"a": "b"}}}
    created = httpx.patch(url, params=params, headers=headers, content=json.dumps(body))
    assert created.status_code == 201
    body["spec"]["ports"] = [{"name": "rpc", "port": 7078}, {"name": "ui", "port": 4040}]
    again = httpx.patch(url, params=params, headers=headers, content=json.dumps(body))
    assert again.status_code == 200
    assert [p["port"] for p in again.json()["spec"]["ports"]] == [7078, 4040]
    assert again.json()["metadata"]["uid"] == created.json()["metadata"]["uid"]


def test_priority_class_sets_pod_priority(bare: EmulatedCluster, core: client.CoreV1Api) -> None:
    api = api_client(bare.url)
    client.SchedulingV1Api(api).create_priority_class({"metadata": {"name": "batch-high"}, "value": 1000})
    body = pod_body("important")
    body["spec"]["priorityClassName"] = "batch-high"
    assert core.create_namespaced_pod("default", body).spec.priority == 1000
    body = pod_body("unknown-class")
    body["spec"]["priorityClassName"] = "nope"
    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_pod("default", body)
    assert err.value.status == 403
    api.close()
