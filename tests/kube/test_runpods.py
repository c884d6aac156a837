# mypy: disable-error-code="union-attr,index,arg-type"
"""The run ticker's watch-fed pods (`ClusterPods.follow`, `bigk.kube.runpods`) read what a listing reads, on the
emulator and kube-apiserver, and are never read stale from a server that restarted empty."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import urllib3
from kubernetes import client

from bigk.cluster import labels as L
from bigk.emulator import EmulatedCluster
from bigk.kube.client import api_client
from bigk.kube.podlist import list_pod_status
from bigk.kube.runpods import RunPodIndex
from bigk.service.submitters import ClusterPods
from tests.kube.conftest import small_cluster
from tests.kube.test_podlist import _pod, _seen
from tests.realk8s import RealCluster, clean_namespace


def _listed(core: client.CoreV1Api) -> dict[str, list[tuple[object, ...]]]:
    """What a listing says now: every run's pods as the ticker reads them, in the listing's order."""
    out: dict[str, list[tuple[object, ...]]] = {}
    for pod in list_pod_status(core, label_selector=L.RUN_LABEL):
        out.setdefault(pod.metadata.labels[L.RUN_LABEL], []).append(_seen(pod))
    return out


def _read(pods: ClusterPods) -> dict[str, list[tuple[object, ...]]]:
    return {run: [_seen(p) for p in found] for run, found in pods.pods_by_run().items()}


def _until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _follows_the_listing(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    node = core.list_node().items[0].metadata.name
    pods = ClusterPods(api)
    pods.follow()
    try:
        feed = pods._feed
        assert feed is not None
        _until(lambda: feed.current() is not None, "the first list")
        core.create_namespaced_pod("default", _pod("w-driver", "r-w", "driver"))
        core.create_namespaced_pod("default", _pod("w-exec-2", "r-w", "executor"))
        core.create_namespaced_pod("default", _pod("w-exec-1", "r-w", "executor"))
        core.create_namespaced_pod("default", _pod("v-driver", "r-v", "driver"))
        core.create_namespaced_pod("default", {**_pod("unlabelled", "x", "driver"), "metadata": {"name": "unlabelled"}})
        core.create_namespaced_pod_binding("w-driver", "default", {
            "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "w-driver"},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}, _preload_content=False)
        core.delete_namespaced_pod("v-driver", "default", grace_period_seconds=0)
        core.patch_namespaced_pod("w-exec-1", "default", {"metadata": {"labels": {"touched": "yes"}}})
        # the watch catches up with the listing (on kube-apiserver the bound driver also starts running meanwhile)
        _until(lambda: _read(pods) == _listed(core), "the watch-fed pods to read as the listing does")
        read = _read(pods)
        assert list(read) == ["r-w"]  # the deleted run is gone, the unlabelled pod never came
        names = [s[0] for s in read["r-w"]]  # (on kube-apiserver the running driver may add executors)
        assert names == sorted(names) and {"w-driver", "w-exec-1", "w-exec-2"} <= set(names)  # the listing's order
        assert feed.informer.stats.events >= 5 and feed.informer.stats.lists == 1  # from the watch, not relists
        light = pods.pods_by_run()["r-w"][0]
        assert light.metadata.managed_fields is None and light.spec.containers == []
    finally:
        pods.stop()


def test_watch_fed_run_pods_read_as_the_listing_on_the_emulator() -> None:
    cluster = EmulatedCluster(small_cluster(), kubelet=False, spark_driver=False, gpu_readings=False,
                              bookmark_interval=0.2)
    cluster.start()
    try:
        _follows_the_listing(api_client(server=cluster.url))
    finally:
        cluster.stop()


@pytest.mark.cluster
def test_watch_fed_run_pods_read_as_the_listing_on_kube_apiserver(control_plane: RealCluster,
                                                                  real_nodes: object) -> None:
    api = control_plane.api()
    try:
        _follows_the_listing(api)
    finally:
        clean_namespace(api, "default")
        time.sleep(0.1)


def test_a_server_restarted_empty_is_never_read_from_the_stale_cache() -> None:
    """The cluster answers again, empty, before the informer noticed: the reader lists (its versions are behind
    the cache's), so the run pods that went away with the old server are gone at once, never read stale."""
    first = EmulatedCluster(small_cluster(), kubelet=False, spark_driver=False, gpu_readings=False,
                            bookmark_interval=0.2)
    first.start()
    api = api_client(server=first.url)
    core = client.CoreV1Api(api)
    pods = ClusterPods(api, list_timeout_s=2)
    pods.follow()
    second = None
    try:
        for i in range(30):  # the old server's versions run well ahead of the new one's
            core.create_namespaced_pod("default", _pod(f"old-{i}", f"r-{i}", "driver"))
        _until(lambda: len(pods.pods_by_run()) == 30, "the 30 runs in the cache")
        port = first.port
        first.stop()
        with pytest.raises(urllib3.exceptions.MaxRetryError):  # a cluster that does not answer: as a listing
            pods.pods_by_run()
        second = EmulatedCluster(small_cluster(), port=port, kubelet=False, spark_driver=False,
                                 gpu_readings=False, bookmark_interval=0.2)
        second.start()
        core.create_namespaced_pod("default", _pod("new-driver", "r-new", "driver"))
        assert list(pods.pods_by_run()) == ["r-new"]  # listed from the new server (its version is behind)
        _until(lambda: pods._feed.current() is not None and list(pods._feed.current()) == ["r-new"],
               "the informer to list the new server")
        assert list(pods.pods_by_run()) == ["r-new"]
    finally:
        pods.stop()
        (second or first).stop()


def test_the_index_keeps_a_pod_under_its_current_run_only() -> None:
    def pod(name: str, uid: str, run: str | None) -> client.V1Pod:
        labels = {L.RUN_LABEL: run} if run else {}
        return client.V1Pod(metadata=client.V1ObjectMeta(name=name, namespace="default", uid=uid, labels=labels))

    index = RunPodIndex(L.RUN_LABEL)
    index.replace([pod("b", "u-b", "r1"), pod("a", "u-a", "r1"), pod("c", "u-c", "r2")])
    assert {r: [p.metadata.name for p in ps] for r, ps in index.by_run().items()} == {"r1": ["a", "b"],
                                                                                      "r2": ["c"]}
    index.upsert(pod("c", "u-c", "r1"))  # relabelled: moves
    index.upsert(pod("b", "u-b", None))  # label removed: gone
    index.delete(pod("a", "u-a", "r1"))
    index.delete(pod("zz", "u-zz", "r9"))  # unknown: nothing
    assert {r: [p.metadata.name for p in ps] for r, ps in index.by_run().items()} == {"r1": ["c"]}
