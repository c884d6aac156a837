"""An emulated cluster stopped and started again, as a machine is: the API refuses connections while it is down,
serves the same objects on the same port when it is back, and pods keep the time they ran (#18)."""

from __future__ import annotations

import time

import pytest
import urllib3
from kubernetes import client

from bigk.emulator import EmulatedCluster, EmulatorError
from bigk.emulator.api import PODS
from tests.emulator.conftest import api_client, pod_body, small_nodes

DURATION = "bigk.io/expected-duration-seconds"


def _phase(cluster: EmulatedCluster, name: str) -> str:
    pod = cluster.pod(name)
    assert pod is not None, name
    return str(pod["status"].get("phase"))


def test_stopped_cluster_refuses_then_serves_the_same_objects_and_pods_run_on() -> None:
    with EmulatedCluster(small_nodes(), time_scale=0.05, gpu_interval=0.1, bookmark_interval=0.2) as cluster:
        url = cluster.url
        core = client.CoreV1Api(api_client(url))
        # long: 60 s × 0.05 = 3 s of run time; short: 10 s × 0.05 = 0.5 s, which passes while the cluster is down
        cluster.api.create(PODS, "default", pod_body("long", node="cpu-0", annotations={DURATION: "60"}))
        cluster.api.create(PODS, "default", pod_body("short", node="cpu-1", annotations={DURATION: "10"}))
        cluster.wait_for_phase("long", "Running", timeout=5)
        cluster.wait_for_phase("short", "Running", timeout=5)
        version = core.read_namespaced_pod("long", "default").metadata.resource_version

        cluster.stop()
        assert not cluster.running
        with pytest.raises(urllib3.exceptions.MaxRetryError, match="Connection refused"):
            core.list_namespaced_pod("default", _request_timeout=2, _preload_content=False)
        time.sleep(2.0)  # short's 0.5 s pass while stopped: nothing moves (no kubelet runs)
        assert _phase(cluster, "short") == "Running"

        assert cluster.start() == url  # same port: clients configured before reconnect
        restarted_at = time.monotonic()
        assert cluster.running
        back = core.read_namespaced_pod("long", "default")
        assert back.metadata.resource_version == version and back.status.phase == "Running"
        # short ran its time while the cluster was down: it ends at once, not 0.5 s after the restart
        cluster.wait_for_phase("short", "Succeeded", timeout=0.4)
        # long keeps the time it already ran: it started before the stop and runs 3 s, stop included, so it ends
        # at most 1 s after the restart (the stop took 2 s); restarted afresh it would end 3 s after it. The bound
        # sits between the two, a second from each, so a slow machine does not decide it.
        cluster.wait_for_phase("long", "Succeeded", timeout=5)
        assert time.monotonic() - restarted_at < 2.0
        assert {n.metadata.name for n in core.list_node().items} == {"cpu-0", "cpu-1", "gpu-0"}
        # and it stops and starts again any number of times
        cluster.stop()
        cluster.start()
        assert core.read_namespaced_pod("short", "default").status.phase == "Succeeded"


def test_a_stopped_cluster_can_come_back_without_its_pods() -> None:
    with EmulatedCluster(small_nodes(), time_scale=0.05, gpu_interval=0.1, bookmark_interval=0.2) as cluster:
        core = client.CoreV1Api(api_client(cluster.url))
        cluster.api.create(PODS, "default", pod_body("job", node="cpu-0", annotations={DURATION: "60"}))
        cluster.wait_for_phase("job", "Running", timeout=5)
        with pytest.raises(EmulatorError, match="stopped"):
            cluster.remove_pods()
        cluster.stop()
        assert cluster.remove_pods() == 1
        cluster.start()
        assert core.list_namespaced_pod("default").items == []
        assert len(core.list_node().items) == 3
