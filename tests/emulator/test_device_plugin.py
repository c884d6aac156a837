"""The simulated device plugin: nvidia.com/gpu devices chosen as a kubelet does, blind to bigk's shares."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest

from bigk.cluster.config import load_cluster
from bigk.cluster.devices import (
    DEVICE_ALLOCATIONS_ANNOTATION,
    DeviceAllocation,
    conflicts,
    decode_allocations,
    encode_allocations,
)
from bigk.cluster.labels import ASSIGNED_GPUS_ANNOTATION, GPU_MEMORY_ANNOTATION, GPU_MILLI_ANNOTATION
from bigk.emulator import EmulatedCluster
from bigk.emulator.api import PODS
from tests.emulator.conftest import pod_body, small_nodes, stored

LONG = {"bigk.io/expected-duration-seconds": "1000"}


@pytest.fixture
def gfd() -> Iterator[EmulatedCluster]:
    """The default cluster file: an A100 pool the device plugin assigns, a T4 pool bigk assigns."""
    with EmulatedCluster(load_cluster("jobspecs/cluster.yaml"), time_scale=0.05, gpu_interval=0.1,
                         spark_driver=False) as cluster:
        yield cluster


def _whole(cluster: EmulatedCluster, name: str, node: str, gpus: int) -> None:
    body = pod_body(name, annotations=dict(LONG))
    body["spec"]["containers"][0]["resources"]["limits"] = {"nvidia.com/gpu": str(gpus)}
    cluster.api.create(PODS, "default", body)
    cluster.api.bind("default", name, {"target": {"name": node}})


def _share(cluster: EmulatedCluster, name: str, node: str, gpu: int) -> None:
    annotations = {**LONG, ASSIGNED_GPUS_ANNOTATION: str(gpu), GPU_MILLI_ANNOTATION: "250",
                   GPU_MEMORY_ANNOTATION: "4096"}
    cluster.api.create(PODS, "default", pod_body(name, annotations=annotations))
    cluster.api.bind("default", name, {"target": {"name": node}})


def _wait(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _allocations(cluster: EmulatedCluster, node: str) -> dict[str, tuple[int, ...]]:
    text = (stored(cluster, "nodes", node)["metadata"].get("annotations") or {}).get(DEVICE_ALLOCATIONS_ANNOTATION)
    return {a.pod: a.devices for a in decode_allocations(text).values()}


def test_gfd_labels_and_owners_reach_the_node_objects(gfd: EmulatedCluster) -> None:
    a100, t4 = stored(gfd, "nodes", "gpu-a100-0"), stored(gfd, "nodes", "gpu-t4-0")
    assert a100["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-80GB"
    assert a100["status"]["allocatable"]["nvidia.com/gpu"] == "8"
    assert t4["metadata"]["labels"]["nvidia.com/gpu.product"] == "Tesla-T4"
    assert "nvidia.com/gpu" not in t4["status"]["allocatable"]  # no device plugin where bigk assigns the GPUs
    assert t4["metadata"]["labels"]["nvidia.com/gpu.count"] == "4"


def test_devices_are_recorded_on_the_node_and_given_back_when_the_pod_goes(gfd: EmulatedCluster) -> None:
    _whole(gfd, "two", "gpu-a100-0", 2)
    gfd.wait_for_phase("two", "Running", timeout=5)
    assert _allocations(gfd, "gpu-a100-0") == {"default/two": (0, 1)}
    gfd.api.delete(PODS, "default", "two", {"gracePeriodSeconds": 0})
    gfd.wait_for(lambda: _allocations(gfd, "gpu-a100-0") == {}, timeout=5)


def test_a_restarted_device_plugin_forgets_pods_that_are_gone() -> None:
    """Like the kubelet's device manager: a checkpoint entry of a pod that no longer exists frees its devices."""
    cluster = EmulatedCluster(load_cluster("jobspecs/cluster.yaml"), time_scale=0.05, spark_driver=False)
    stale = encode_allocations([DeviceAllocation("uid-of-a-deleted-pod", "default/gone", (0, 1, 2, 3))])

    def checkpoint(node: dict) -> None:
        node["metadata"].setdefault("annotations", {})[DEVICE_ALLOCATIONS_ANNOTATION] = stale

    cluster.api.update_object("nodes", "", "gpu-a100-0", checkpoint)
    with cluster:
        cluster.wait_for(lambda: _allocations(cluster, "gpu-a100-0") == {}, timeout=5)
        _whole(cluster, "eight", "gpu-a100-0", 8)  # all eight devices are free again
        cluster.wait_for_phase("eight", "Running", timeout=5)


def test_the_kubelet_refuses_what_it_cannot_give(gfd: EmulatedCluster) -> None:
    _whole(gfd, "on-t4", "gpu-t4-0", 1)  # bigk's sharing pool: no nvidia.com/gpu there
    failed = gfd.wait_for_phase("on-t4", "Failed", timeout=5)
    assert failed["status"]["reason"] == "OutOfnvidia.com/gpu"
    _whole(gfd, "six", "gpu-a100-1", 6)
    gfd.wait_for_phase("six", "Running", timeout=5)
    _whole(gfd, "three", "gpu-a100-1", 3)
    failed = gfd.wait_for_phase("three", "Failed", timeout=5)
    assert failed["status"]["reason"] == "UnexpectedAdmissionError"
    assert "Requested: 3, Available: 2" in failed["status"]["message"]


def test_on_a_mixed_node_the_device_plugin_hands_out_a_shared_gpu() -> None:
    """The conflict the sharing pools prevent, visible: bigk shared GPU 0; the plugin gives it away again."""
    with EmulatedCluster(small_nodes(), time_scale=0.05, gpu_interval=0.1, spark_driver=False) as cluster:
        assert stored(cluster, "nodes", "gpu-0")["metadata"]["labels"]["bigk.io/gpu-sharing"] == "mixed"
        _share(cluster, "share", "gpu-0", 0)
        _whole(cluster, "whole", "gpu-0", 1)
        cluster.wait_for_phase("whole", "Running", timeout=5)
        node = stored(cluster, "nodes", "gpu-0")
        plugin = decode_allocations(node["metadata"]["annotations"][DEVICE_ALLOCATIONS_ANNOTATION])
        (conflict,) = conflicts("gpu-0", plugin, {"default/share": (0,)})
        assert (conflict.gpu, conflict.whole_pod, conflict.share_pods) == (0, "default/whole", ("default/share",))
        readings = cluster.wait_for(lambda: [r for r in json.loads(
            stored(cluster, "nodes", "gpu-0")["metadata"]["annotations"].get("bigk.io/gpu-readings", "[]"))
            if r["index"] == 0 and r["memory_free_mib"] < 81_920 - 4096], timeout=5)
        assert readings  # the share's memory and the whole pod's, on one GPU


@pytest.mark.cluster
def test_on_the_real_control_plane_the_simulated_kubelet_gives_devices_and_refuses(control_plane: object,
                                                                                  real_nodes: object) -> None:
    """The same device plugin runs in the simulated kubelet of nodes registered with a real kube-apiserver."""
    from kubernetes import client

    from tests.realk8s import RealCluster, clean_namespace

    assert isinstance(control_plane, RealCluster)
    api = control_plane.api()
    core = client.CoreV1Api(api)

    def pod(name: str, node: str, gpus: int) -> dict:
        body = pod_body(name, node=node, scheduler="default-scheduler", annotations=dict(LONG))
        body["spec"]["containers"][0]["resources"]["limits"] = {"nvidia.com/gpu": str(gpus)}
        body["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = str(gpus)
        body["spec"]["tolerations"] = [{"operator": "Exists"}]
        return body

    def phase(name: str) -> str:
        return str(core.read_namespaced_pod(name, "default").status.phase)

    def allocations(node: str) -> dict[str, tuple[int, ...]]:
        text = (core.read_node(node).metadata.annotations or {}).get(DEVICE_ALLOCATIONS_ANNOTATION)
        return {a.pod: a.devices for a in decode_allocations(text).values()}

    try:
        core.create_namespaced_pod("default", pod("dp-two", "gpu-a100-1", 2))
        core.create_namespaced_pod("default", pod("dp-t4", "gpu-t4-1", 1))
        _wait(lambda: phase("dp-t4") == "Failed")
        assert core.read_namespaced_pod("dp-t4", "default").status.reason == "OutOfnvidia.com/gpu"
        _wait(lambda: allocations("gpu-a100-1").get("default/dp-two") == (0, 1))
        _wait(lambda: phase("dp-two") == "Running")
    finally:
        clean_namespace(api, "default")
