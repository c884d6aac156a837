"""Fixtures: a small emulated cluster on a random loopback port and official-client APIs on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from bigk.cluster.model import Gpu, Node, Taint
from bigk.emulator import EmulatedCluster


def small_nodes() -> list[Node]:
    """Two CPU nodes and one tainted 4×A100 node."""
    cpu = [Node(f"cpu-{i}", 16_000, 65_536, labels={"bigk.io/pool": "cpu"}) for i in range(2)]
    gpu = Node(
        "gpu-0",
        64_000,
        524_288,
        gpus=[Gpu(i, "A100", 81_920, uuid=f"GPU-gpu-0-{i}") for i in range(4)],
        labels={"bigk.io/pool": "gpu-a100", "nvidia.com/gpu.product": "A100"},
        taints=[Taint("nvidia.com/gpu", "present", "NoSchedule")],
    )
    return [*cpu, gpu]


def api_client(url: str) -> client.ApiClient:
    cfg = client.Configuration()
    cfg.host = url
    return client.ApiClient(cfg)


@pytest.fixture
def bare() -> Iterator[EmulatedCluster]:
    """The API alone: no kubelet, no Spark driver, no GPU readings."""
    with EmulatedCluster(small_nodes(), kubelet=False, spark_driver=False, gpu_readings=False,
                         bookmark_interval=0.2) as cluster:
        yield cluster


@pytest.fixture
def sim() -> Iterator[EmulatedCluster]:
    """Everything simulated, 20× faster than real time."""
    with EmulatedCluster(small_nodes(), time_scale=0.05, gpu_interval=0.1, bookmark_interval=0.2) as cluster:
        yield cluster


@pytest.fixture
def core(bare: EmulatedCluster) -> Iterator[client.CoreV1Api]:
    api = api_client(bare.url)
    yield client.CoreV1Api(api)
    api.close()


def pod_body(name: str, *, node: str = "", labels: dict[str, str] | None = None,
             annotations: dict[str, str] | None = None, scheduler: str = "bigk", cpu: str = "1") -> dict:
    """A minimal pod manifest."""
    spec: dict = {
        "schedulerName": scheduler,
        "containers": [{"name": "main", "image": "busybox", "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}],
    }
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}},
        "spec": spec,
    }


def binding(name: str, node: str, annotations: dict[str, str] | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, "annotations": annotations or {}},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }


def stored(cluster: EmulatedCluster, key: str, name: str, namespace: str = "") -> dict:
    """An object that must exist in the emulator's store."""
    obj = cluster.store.get(key, namespace, name)
    assert obj is not None, f"{key} {namespace}/{name} does not exist"
    return obj


def pod(cluster: EmulatedCluster, name: str, namespace: str = "default") -> dict:
    """A pod that must exist."""
    return stored(cluster, "pods", name, namespace)
