"""`bigk agent --once` against the embedded emulated cluster, read back the way the scheduler reads nodes."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pynvml
import pytest
from kubernetes import client
from typer.testing import CliRunner

from bigk.cli.main import app
from bigk.cluster.labels import GPU_READINGS_ANNOTATION
from bigk.cluster.model import Gpu, Node, PodRequest
from bigk.cluster.readings import decode
from bigk.cluster.state import ClusterState
from bigk.emulator import cluster as emulator
from bigk.gpu.agent import Agent, NodeAnnotationPublisher, make_core_api
from bigk.gpu.nvml import NvmlReader, read_records
from bigk.kube.translate import node_from_v1
from tests.gpu.fake_nvml import FakeNvml, err, healthy_gpu


def _annotations(node: client.V1Node) -> dict[str, str]:
    return dict((node.metadata.annotations if node.metadata else None) or {})


@pytest.fixture
def cluster() -> Iterator[emulator.EmulatedCluster]:
    gpus = [Gpu(i, "A100", 81920) for i in range(3)]
    node = Node("gpu-1", 64000, 512000, gpus=gpus, labels={"bigk.io/pool": "a100"})
    # the emulator's own simulated GPU readings are off: only the agent writes the annotation
    emu = emulator.EmulatedCluster([node], kubelet=False, spark_driver=False, gpu_readings=False)
    emu.start()
    yield emu
    emu.stop()


def test_agent_readings_reach_the_scheduler_and_keep_it_off_a_sick_gpu(
        cluster: emulator.EmulatedCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    sick = healthy_gpu(1)
    sick["ecc"] = 4
    lost_util = healthy_gpu(2, util=0)
    lost_util["utilization"] = err(pynvml.NVML_ERROR_UNKNOWN)
    FakeNvml([healthy_gpu(0, util=55), sick, lost_util]).install(monkeypatch)

    result = CliRunner().invoke(app, ["agent", "--node", "gpu-1", "--once", "--kube-server", cluster.url])
    assert result.exit_code == 0, result.output

    api = client.CoreV1Api(client.ApiClient(client.Configuration(host=cluster.url)))
    v1node = api.read_node("gpu-1")
    records = decode(_annotations(v1node)[GPU_READINGS_ANNOTATION])
    assert [r.healthy for r in records] == [True, False, True]
    assert records[1].health_reasons == ("ecc_uncorrected",)

    node = node_from_v1(v1node)
    assert [g.uuid for g in node.gpus] == ["GPU-0000-0", "GPU-0000-1", "GPU-0000-2"]
    state = ClusterState([node])
    now = records[0].observed_at + 1
    two = PodRequest(1000, 1000, gpu_count=2, gpu_milli=1000)
    assert state.default_gpus(0, two, now=now) == (0, 2)  # GPU 1 is sick, the unknown utilisation is not
    three = PodRequest(1000, 1000, gpu_count=3, gpu_milli=1000)
    assert not state.feasible(three, now=now)[0]


def test_agent_loop_rides_out_api_errors_and_dropped_connections(
        cluster: emulator.EmulatedCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeNvml([healthy_gpu(0), healthy_gpu(1), healthy_gpu(2)]).install(monkeypatch)
    cluster.faults.add("PATCH", r"/api/v1/nodes/gpu-1$", 500, count=2)
    cluster.faults.add("PATCH", r"/api/v1/nodes/gpu-1$", 0, count=1)  # connection dropped
    api = make_core_api(kube_server=cluster.url)
    with NvmlReader() as reader:
        agent = Agent("gpu-1", lambda: read_records(reader), NodeAnnotationPublisher(api, timeout_s=5),
                      interval_s=0.02, max_backoff_s=0.1)
        stop = threading.Event()
        thread = threading.Thread(target=agent.run_forever, args=(stop,))
        thread.start()
        try:
            annotation = None
            for _ in range(300):
                reader_api = client.CoreV1Api(client.ApiClient(client.Configuration(host=cluster.url)))
                annotation = _annotations(reader_api.read_node("gpu-1")).get(GPU_READINGS_ANNOTATION)
                if annotation:
                    break
                stop.wait(0.05)
        finally:
            stop.set()
            thread.join(10)
    assert cluster.faults.pending == 0, "the agent gave up before the faults were used up"
    assert annotation and len(decode(annotation)) == 3
