"""Fixtures: an emulated cluster on loopback and a scenario harness on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bigk.cluster.model import Gpu, Node, Taint
from bigk.emulator import EmulatedCluster
from bigk.kube.client import api_client
from tests.kube.harness import Harness


def small_cluster() -> list[Node]:
    cpu = [Node(f"cpu-{i}", 32_000, 131_072, labels={"bigk.io/pool": "cpu"}) for i in range(2)]
    gpu = [Node("gpu-0", 64_000, 524_288, gpus=[Gpu(i, "A100", 81_920) for i in range(4)],
                labels={"bigk.io/pool": "gpu-a100", "nvidia.com/gpu.product": "A100"},
                taints=[Taint("nvidia.com/gpu", "present", "NoSchedule")])]
    return cpu + gpu


@pytest.fixture
def emulator() -> Iterator[EmulatedCluster]:
    cluster = EmulatedCluster(small_cluster(), kubelet=False, spark_driver=False, gpu_readings=False,
                              bookmark_interval=0.2)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def harness(emulator: EmulatedCluster) -> Iterator[Harness]:
    h = Harness(api_client(server=emulator.url), namespace="default")
    yield h
    h.close()
