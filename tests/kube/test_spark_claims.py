"""Spark's on-demand executor claims end to end on the emulator: the simulated driver creates each executor,
then its WaitForFirstConsumer claim; bigk waits for the claim, names the node on it, and binds the executor."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from kubernetes import client

from bigk.cluster.labels import SELECTED_NODE_ANNOTATION
from bigk.emulator import EmulatedCluster
from bigk.kube.client import api_client
from tests.kube.conftest import small_cluster
from tests.kube.harness import Harness

CONF = {
    "spark.executor.instances": "3",
    "spark.executor.cores": "1",
    "spark.executor.memory": "512m",
    "spark.kubernetes.executor.volumes.persistentVolumeClaim.data.mount.path": "/data",
    "spark.kubernetes.executor.volumes.persistentVolumeClaim.data.options.claimName": "OnDemand",
    "spark.kubernetes.executor.volumes.persistentVolumeClaim.data.options.storageClass": "local-wffc",
    "spark.kubernetes.executor.volumes.persistentVolumeClaim.data.options.sizeLimit": "10Gi",
}


@pytest.fixture
def spark_harness() -> Iterator[Harness]:
    with EmulatedCluster(small_cluster(), kubelet=True, spark_driver=True, gpu_readings=False, time_scale=0.05,
                         bookmark_interval=0.2) as cluster:
        h = Harness(api_client(server=cluster.url), namespace="default")
        try:
            yield h
        finally:
            h.close()


def test_on_demand_executor_claims_get_the_selected_node_of_their_executor(spark_harness: Harness) -> None:
    h = spark_harness
    client.StorageV1Api(h.api).create_storage_class({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "local-wffc"},
        "provisioner": "disk.example.com", "volumeBindingMode": "WaitForFirstConsumer"})
    loop = h.loop()
    h.pod("app-driver", app="spark-app", role="driver", cpu="500m", node_selector={"bigk.io/pool": "cpu"},
          annotations={"bigk.io/sim-spark-conf": json.dumps(CONF), "bigk.io/expected-duration-seconds": "600"})
    names = [f"app-exec-{i}" for i in (1, 2, 3)]
    h.wait(lambda: all(h.node_of(n) for n in names), timeout=30, what="executors bound")
    for i, name in enumerate(names, start=1):
        pod = h.read(name)
        assert pod is not None
        claim_name = pod.spec.volumes[0].persistent_volume_claim.claim_name
        assert claim_name == f"app-exec-{i}-pvc-0"
        claim = h.core.read_namespaced_persistent_volume_claim(claim_name, h.namespace)
        assert claim.spec.access_modes == ["ReadWriteOncePod"]
        assert (claim.metadata.annotations or {}).get(SELECTED_NODE_ANNOTATION) == h.node_of(name)
    assert loop.stats.bind_failed == 0
