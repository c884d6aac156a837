# mypy: disable-error-code="union-attr,index,arg-type"
"""The light pod listing (`bigk.kube.podlist`) reads what the full listing reads, on the emulator and kube-apiserver."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from bigk.cluster import labels as L
from bigk.emulator import EmulatedCluster
from bigk.kube.client import api_client
from bigk.kube.podlist import PodMemo, list_pod_status, list_pods_on
from tests.realk8s import RealCluster, clean_namespace


def _pod(name: str, run: str, role: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {L.RUN_LABEL: run, L.SPARK_ROLE: role}},
            "spec": {"schedulerName": "bigk",
                     "containers": [{"name": "main", "image": "busybox", "env": [{"name": "A", "value": "b"}],
                                     "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}


def _seen(pod: client.V1Pod) -> tuple[object, ...]:
    """Everything the run ticker reads of a pod."""
    cs = [(c.name, c.state.terminated.exit_code if c.state and c.state.terminated else None)
          for c in pod.status.container_statuses or []]
    return (pod.metadata.name, pod.metadata.namespace, pod.metadata.uid, pod.metadata.labels, pod.spec.node_name,
            pod.spec.scheduler_name, pod.status.phase, pod.status.reason, pod.status.message, cs)


def _check(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    node = core.list_node().items[0].metadata.name
    core.create_namespaced_pod("default", _pod("light-driver", "r-light", "driver"))
    core.create_namespaced_pod("default", _pod("light-exec", "r-light", "executor"))
    core.create_namespaced_pod("default", {**_pod("unlabelled", "x", "driver"),
                                           "metadata": {"name": "unlabelled"}})
    core.create_namespaced_pod_binding("light-driver", "default", {
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "light-driver"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node}}, _preload_content=False)  # answers a Status
    for _ in range(5):  # both listings at one resourceVersion (on kube-apiserver the bound driver starts running)
        full = {p.metadata.name: p for p in core.list_pod_for_all_namespaces(label_selector=L.RUN_LABEL).items}
        light = {p.metadata.name: p for p in list_pod_status(core, label_selector=L.RUN_LABEL)}
        if all(n in light and light[n].metadata.resource_version == p.metadata.resource_version
               for n, p in full.items()):
            break
    assert sorted(light) == sorted(full) == ["light-driver", "light-exec"]  # the selector is the server's
    for name in full:
        assert _seen(light[name]) == _seen(full[name])
        assert light[name].metadata.managed_fields is None and light[name].spec.containers == []
    assert light["light-driver"].spec.node_name == node
    # with a memo, a pod that did not change is the object of the last listing; one that changed is new
    memo = PodMemo()
    first = {p.metadata.name: p for p in list_pod_status(core, memo, label_selector=L.RUN_LABEL)}
    core.patch_namespaced_pod("light-exec", "default", {"metadata": {"labels": {"touched": "yes"}}})
    again = {p.metadata.name: p for p in list_pod_status(core, memo, label_selector=L.RUN_LABEL)}
    for name in ("light-driver", "light-exec"):  # (on kube-apiserver the bound driver may move on meanwhile)
        pod = again[name]
        same = pod.metadata.resource_version == first[name].metadata.resource_version
        assert (pod is first[name]) == same
    assert again["light-exec"] is not first["light-exec"] and again["light-exec"].metadata.labels["touched"] == "yes"
    # the GPU watch's listing: only the pods bound to the named nodes, each whole, as the client builds it
    for _ in range(5):  # compared at one resourceVersion (on kube-apiserver the bound driver may move on between)
        on = list_pods_on(core, {node}, label_selector=L.RUN_LABEL)
        now = [p for p in core.list_pod_for_all_namespaces(label_selector=L.RUN_LABEL).items
               if p.metadata.name == "light-driver"]
        assert [p.metadata.name for p in on] == ["light-driver"]
        if on[0].metadata.resource_version == now[0].metadata.resource_version:
            break
    assert on[0] == now[0]
    assert list_pods_on(core, set(), label_selector=L.RUN_LABEL) == []


def _refused(api: client.ApiClient) -> None:
    """An error status is raised as the full listing raises it."""
    core = client.CoreV1Api(api)
    with pytest.raises(client.ApiException) as full:
        core.list_pod_for_all_namespaces(label_selector="bad selector!!")
    with pytest.raises(client.ApiException) as light:
        list_pod_status(core, label_selector="bad selector!!")
    assert light.value.status == full.value.status >= 400


@pytest.fixture
def emulator() -> Iterator[EmulatedCluster]:
    from tests.kube.conftest import small_cluster

    cluster = EmulatedCluster(small_cluster(), kubelet=False, spark_driver=False, gpu_readings=False)
    cluster.start()
    yield cluster
    cluster.stop()


def test_light_listing_matches_the_full_one_on_the_emulator(emulator: EmulatedCluster) -> None:
    _check(api_client(server=emulator.url))
    _refused(api_client(server=emulator.url))


@pytest.mark.cluster
def test_light_listing_matches_the_full_one_on_kube_apiserver(control_plane: RealCluster, real_nodes: object) -> None:
    api = control_plane.api()
    try:
        _check(api)
        _refused(api)
    finally:
        clean_namespace(api, "default")
        time.sleep(0.1)
