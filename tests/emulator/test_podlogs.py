"""pods/log on the emulator: simulated Spark driver and executor logs, read with the official client."""

from __future__ import annotations

import threading

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from bigk.emulator import EmulatedCluster
from bigk.emulator.api import PODS
from tests.emulator.conftest import api_client, pod_body
from tests.emulator.test_driver import bind_all, driver_body, executors


def test_driver_and_executor_logs_tell_the_application(sim: EmulatedCluster) -> None:
    core = client.CoreV1Api(api_client(sim.url))
    sim.api.create(PODS, "default", driver_body("etl", {"spark.executor.instances": "2"}, duration="4"))
    sim.wait_for(lambda: len(executors(sim, "spark-etl")) == 2, timeout=5)
    bind_all(sim, "spark-etl")
    sim.wait_for(lambda: all(p["status"].get("phase") == "Running" for p in executors(sim, "spark-etl")), 5)
    executor = executors(sim, "spark-etl")[0]["metadata"]["name"]
    text = core.read_namespaced_pod_log(executor, "default")
    assert "Successfully registered with driver" in text
    sim.wait_for_phase("etl", "Succeeded", timeout=5)
    log = core.read_namespaced_pod_log("etl", "default")
    lines = log.splitlines()
    assert "Submitted application: etl" in lines[1]
    assert sum("Registered executor" in line for line in lines) == 2
    assert lines[-2].endswith("Successfully stopped SparkContext") and "Shutdown hook called" in lines[-1]
    assert core.read_namespaced_pod_log("etl", "default", tail_lines=1) == lines[-1] + "\n"
    stamped = core.read_namespaced_pod_log("etl", "default", timestamps=True).splitlines()
    assert stamped[0].split(" ", 1)[1] == lines[0] and stamped[0][:4].isdigit() and stamped[0][10] == "T"


def test_follow_streams_lines_until_the_pod_ends(sim: EmulatedCluster) -> None:
    core = client.CoreV1Api(api_client(sim.url))
    sim.api.create(PODS, "default", driver_body("stream", {"spark.executor.instances": "1"}, duration="6"))
    sim.wait_for(lambda: len(executors(sim, "spark-stream")) == 1, timeout=5)
    got: list[str] = []

    def follow() -> None:
        resp = core.read_namespaced_pod_log("stream", "default", follow=True, _preload_content=False)
        for chunk in resp.stream(256):
            got.append(chunk.decode())

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    sim.wait_for(lambda: "Submitted application" in "".join(got), timeout=5)
    assert "Registered executor" not in "".join(got)  # the executor has not run yet
    bind_all(sim, "spark-stream")
    reader.join(timeout=10)
    assert not reader.is_alive(), "follow did not end with the pod"
    text = "".join(got)
    assert "Registered executor 1" in text and text.rstrip().endswith("Shutdown hook called")


def test_errors_are_kube_apiservers(sim: EmulatedCluster) -> None:
    core = client.CoreV1Api(api_client(sim.url))
    sim.api.create(PODS, "default", pod_body("waiting"))
    with pytest.raises(ApiException) as waiting:
        core.read_namespaced_pod_log("waiting", "default")
    assert waiting.value.status == 400 and "is waiting to start" in waiting.value.body
    sim.api.create(PODS, "default", driver_body("prev", {"spark.executor.instances": "0"}, duration="2"))
    sim.wait_for_phase("prev", "Succeeded", timeout=5)
    with pytest.raises(ApiException) as previous:
        core.read_namespaced_pod_log("prev", "default", previous=True)
    assert previous.value.status == 400 and "previous terminated container" in previous.value.body
    with pytest.raises(ApiException) as other:
        core.read_namespaced_pod_log("prev", "default", container="sidecar")
    assert other.value.status == 400 and "is not valid for pod prev" in other.value.body
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_pod_log("nope", "default")
    assert missing.value.status == 404
