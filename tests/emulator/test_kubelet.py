"""The simulated kubelet: bound pods run, end on time, fail on request, wait for volumes, terminate gracefully."""

from __future__ import annotations

import time

from bigk.cluster.model import Node
from bigk.emulator import EmulatedCluster
from bigk.emulator.api import CONFIGMAPS, PODS
from tests.emulator.conftest import pod as must_pod
from tests.emulator.conftest import pod_body

DURATION = "bigk.io/expected-duration-seconds"


def test_bound_pod_runs_then_succeeds(sim: EmulatedCluster) -> None:
    sim.api.create(PODS, "default", pod_body("job", annotations={DURATION: "4"}))
    time.sleep(0.1)
    assert must_pod(sim, "job")["status"]["phase"] == "Pending"  # unbound pods never start
    started = time.monotonic()
    sim.api.bind("default", "job", {"target": {"name": "cpu-0"}})
    running = sim.wait_for_phase("job", "Running", timeout=5)
    status = running["status"]
    assert status["podIP"] and status["hostIP"] and status["startTime"]
    assert {c["type"] for c in status["conditions"] if c["status"] == "True"} >= {"PodScheduled", "Ready"}
    assert "running" in status["containerStatuses"][0]["state"]
    done = sim.wait_for_phase("job", "Succeeded", timeout=5)
    elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 2  # 0.5 s start + 4 s run, × 0.05
    terminated = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")


def test_sim_fail_annotation_fails_the_pod(sim: EmulatedCluster) -> None:
    sim.api.create(PODS, "default", pod_body("bad", node="cpu-1", annotations={DURATION: "1",
                                                                           "bigk.io/sim-fail": "true"}))
    failed = sim.wait_for_phase("bad", "Failed", timeout=5)
    assert failed["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 1


def test_pod_waits_for_its_configmap_volume(sim: EmulatedCluster) -> None:
    body = pod_body("needs-conf", node="cpu-0", annotations={DURATION: "100"})
    body["spec"]["volumes"] = [{"name": "conf", "configMap": {"name": "late"}}]
    sim.api.create(PODS, "default", body)
    time.sleep(0.2)
    pod = must_pod(sim, "needs-conf")
    assert pod["status"]["phase"] == "Pending"
    assert pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ContainerCreating"
    sim.api.create(CONFIGMAPS, "default", {"metadata": {"name": "late"}})
    sim.wait_for_phase("needs-conf", "Running", timeout=5)


def test_running_pod_deletion_is_graceful_then_final(sim: EmulatedCluster) -> None:
    sim.api.create(PODS, "default", pod_body("svc", node="cpu-0", annotations={DURATION: "1000"}))
    sim.wait_for_phase("svc", "Running", timeout=5)
    code, obj = sim.api.delete(PODS, "default", "svc")
    assert code == 200 and obj["metadata"]["deletionTimestamp"]
    assert sim.pod("svc") is not None  # terminating for a moment
    sim.wait_for(lambda: sim.pod("svc") is None, timeout=5)


def test_pod_bound_to_unknown_node_stays_pending(sim: EmulatedCluster) -> None:
    sim.api.create(PODS, "default", pod_body("lost", node="no-such-node", annotations={DURATION: "1"}))
    time.sleep(0.3)
    assert must_pod(sim, "lost")["status"]["phase"] == "Pending"


def test_default_duration_applies_without_annotation() -> None:
    with EmulatedCluster([], spark_driver=False, gpu_readings=False, time_scale=0.01, default_duration=10) as c:
        c.add_node(Node("n", 1000, 1024))
        c.api.create(PODS, "default", pod_body("plain", node="n"))
        c.wait_for_phase("plain", "Running", timeout=5)
        c.wait_for_phase("plain", "Succeeded", timeout=5)  # 10 s × 0.01


def test_node_can_turn_not_ready_and_back(sim: EmulatedCluster) -> None:
    node = sim.set_node_ready("cpu-1", False)
    assert node is not None
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"][0]
    assert ready["status"] == "False"
    assert {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"} in node["spec"]["taints"]
    node = sim.set_node_ready("cpu-1", True)
    assert node is not None and "taints" not in node["spec"]
    sim.remove_node("cpu-1")
    assert sim.store.get("nodes", "", "cpu-1") is None


def test_a_stopped_cluster_starts_again_on_the_same_url() -> None:
    cluster = EmulatedCluster([], kubelet=False, spark_driver=False, gpu_readings=False)
    url = cluster.start()
    assert cluster.start() == url  # already running: same URL
    cluster.stop()
    cluster.stop()  # idempotent
    assert cluster.start() == url  # tests/emulator/test_restart.py: the same objects, pods run on
    cluster.stop()
