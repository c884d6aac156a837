"""The GPU watch on the emulator: GPUs busy without bigk, named; device conflicts seen on a mixed node."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bigk.cluster.config import load_cluster, parse_cluster
from bigk.emulator import EmulatedCluster
from bigk.emulator.api import PODS
from bigk.gpu.findings import Findings, WatchSettings
from bigk.kube.client import api_client
from bigk.service.gpu_watch import GpuWatch
from tests.service.conftest import ROOT

SETTINGS = WatchSettings(idle_minutes=0.05, threshold_pct=5.0, max_gap_s=5.0)  # 3 s of readings


def _pod(name: str, *, scheduler: str, gpus: int = 0, annotations: dict[str, str] | None = None) -> dict:
    resources: dict = {"requests": {"cpu": "1", "memory": "1Gi"}}
    if gpus:
        resources["limits"] = {"nvidia.com/gpu": str(gpus)}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "annotations": {"bigk.io/expected-duration-seconds": "1000",
                                                       **(annotations or {})}},
            "spec": {"schedulerName": scheduler, "containers": [{"name": "main", "image": "x",
                                                                 "resources": resources}]}}


def _sample_until(watch: GpuWatch, check: str, timeout: float = 15.0) -> Findings:
    deadline = time.monotonic() + timeout
    while True:
        found = watch.sample()
        if getattr(found, check):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {check} finding within {timeout} s")
        time.sleep(0.3)


@pytest.fixture
def emu() -> Iterator[EmulatedCluster]:
    with EmulatedCluster(load_cluster(ROOT / "jobspecs" / "cluster.yaml"), time_scale=0.05, gpu_interval=0.3,
                         spark_driver=False) as cluster:
        yield cluster


def test_a_gpu_busy_without_bigk_is_found_and_the_other_schedulers_pod_named(emu: EmulatedCluster) -> None:
    emu.api.create(PODS, "default", _pod("notebook", scheduler="default-scheduler", gpus=1))
    emu.api.bind("default", "notebook", {"target": {"name": "gpu-a100-1"}})
    emu.wait_for_phase("notebook", "Running", timeout=5)
    emu.gpus.set_external_use("gpu-t4-1", 3, 6000, 70.0)  # a process outside Kubernetes
    watch = GpuWatch(api_client(server=emu.url), time.time, SETTINGS)
    found = _sample_until(watch, "foreign")
    deadline = time.monotonic() + 10
    while len(found.foreign) < 2 and time.monotonic() < deadline:
        time.sleep(0.3)
        found = watch.sample()
    busy = {(f.node, f.gpu): f for f in found.foreign}
    assert busy[("gpu-a100-1", 0)].other_pods == ("default/notebook",)  # the device plugin's choice, named
    assert busy[("gpu-t4-1", 3)].other_pods == () and busy[("gpu-t4-1", 3)].memory_used_mib == 6000
    assert found.idle == [] and found.conflicts == []
    assert "busy-without-bigk" in watch.notes()[("gpu-t4-1", 3)]


def test_a_mixed_node_shows_the_device_conflict() -> None:
    doc = {"pools": [{"name": "mixed", "count": 1, "cpu": 16, "memory": "64Gi",
                      "gpu": {"model": "NVIDIA-A100-SXM4-80GB", "count": 2, "sharing": "mixed"}}]}
    with EmulatedCluster(parse_cluster(doc), time_scale=0.05, gpu_interval=0.3, spark_driver=False) as emu:
        share = _pod("share", scheduler="bigk", annotations={"bigk.io/assigned-gpus": "0", "bigk.io/gpu-milli": "500",
                                                             "bigk.io/gpu-memory-mib": "4096"})
        emu.api.create(PODS, "default", share)
        emu.api.bind("default", "share", {"target": {"name": "mixed-0"}})
        emu.api.create(PODS, "default", _pod("whole", scheduler="bigk", gpus=1,
                                             annotations={"bigk.io/assigned-gpus": "1"}))  # bigk said GPU 1...
        emu.api.bind("default", "whole", {"target": {"name": "mixed-0"}})
        emu.wait_for_phase("whole", "Running", timeout=5)
        watch = GpuWatch(api_client(server=emu.url), time.time, SETTINGS)
        (conflict,) = watch.sample().conflicts  # ...the device plugin gave it GPU 0, which bigk had shared
        assert (conflict.node, conflict.gpu, conflict.whole_pod, conflict.share_pods) == (
            "mixed-0", 0, "default/whole", ("default/share",))
        assert "device-conflict" in watch.notes()[("mixed-0", 0)]
