"""Simulated GPU readings on the node annotation the real agent writes."""

from __future__ import annotations

import json

from bigk.cluster.labels import ASSIGNED_GPUS_ANNOTATION, GPU_MEMORY_ANNOTATION, GPU_READINGS_ANNOTATION
from bigk.emulator import EmulatedCluster
from bigk.emulator.api import PODS
from tests.emulator.conftest import pod_body, stored

# The agent's format (bigk.cluster.readings), written through the same encoder.
KEYS = {"index", "uuid", "model", "memory_total_mib", "memory_free_mib", "utilization_pct", "temperature_c",
        "healthy", "observed_at", "health_reasons"}


def readings(cluster: EmulatedCluster, node: str) -> list[dict]:
    annotations = stored(cluster, "nodes", node)["metadata"].get("annotations") or {}
    return json.loads(annotations[GPU_READINGS_ANNOTATION]) if GPU_READINGS_ANNOTATION in annotations else []


def test_idle_gpus_report_full_memory_and_cpu_nodes_report_nothing(sim: EmulatedCluster) -> None:
    sim.wait_for(lambda: readings(sim, "gpu-0"), timeout=5)
    gpus = readings(sim, "gpu-0")
    assert [g["index"] for g in gpus] == [0, 1, 2, 3]
    for gpu in gpus:
        assert set(gpu) == KEYS
        assert gpu["model"] == "A100" and gpu["memory_free_mib"] == gpu["memory_total_mib"] == 81_920
        assert gpu["healthy"] is True and gpu["utilization_pct"] == 0.0
    assert readings(sim, "cpu-0") == []


def test_running_pods_use_memory_on_their_assigned_gpus(sim: EmulatedCluster) -> None:
    first = sim.wait_for(lambda: readings(sim, "gpu-0"), timeout=5)[0]["observed_at"]
    frac = pod_body("frac", annotations={ASSIGNED_GPUS_ANNOTATION: "1", GPU_MEMORY_ANNOTATION: "20000",
                                         "bigk.io/gpu-milli": "250", "bigk.io/expected-duration-seconds": "1000"})
    sim.api.create(PODS, "default", frac)
    sim.api.bind("default", "frac", {"target": {"name": "gpu-0"}})
    whole = pod_body("whole", annotations={"bigk.io/expected-duration-seconds": "1000"})
    whole["spec"]["containers"][0]["resources"]["limits"] = {"nvidia.com/gpu": "2"}
    sim.api.create(PODS, "default", whole)
    sim.api.bind("default", "whole", {"target": {"name": "gpu-0"}})
    sim.wait_for_phase("frac", "Running", timeout=5)
    sim.wait_for_phase("whole", "Running", timeout=5)

    def settled() -> list[dict] | None:
        gpus = readings(sim, "gpu-0")
        return gpus if gpus[1]["memory_free_mib"] < 81_920 and gpus[0]["memory_free_mib"] < 81_920 else None

    gpus = sim.wait_for(settled, timeout=5)
    # The simulated device plugin gives the whole-GPU pod GPUs 0 and 1: like the real one, it does not know
    # that bigk shared GPU 1 out (this node is "mixed": the conflict docs/gpus.md's sharing pools prevent).
    assert gpus[0]["memory_free_mib"] == 81_920 - int(81_920 * 0.9)
    assert gpus[1]["memory_free_mib"] == 0  # the share's 20000 MiB plus the whole pod's 90 %, capped
    assert gpus[0]["utilization_pct"] > 70
    assert gpus[2]["memory_free_mib"] == gpus[3]["memory_free_mib"] == 81_920
    assert gpus[0]["temperature_c"] > gpus[3]["temperature_c"]
    assert gpus[0]["observed_at"] > first


def test_gpu_can_be_marked_unhealthy_and_busy(sim: EmulatedCluster) -> None:
    sim.set_gpu_health("gpu-0", 3, False)
    sim.gpus.set_external_use("gpu-0", 2, 30_000)
    gpus = sim.wait_for(lambda: readings(sim, "gpu-0") if readings(sim, "gpu-0")[3]["healthy"] is False else None,
                        timeout=5)
    assert [g["healthy"] for g in gpus] == [True, True, True, False]
    assert sim.wait_for(lambda: readings(sim, "gpu-0")[2]["memory_free_mib"] == 51_920, timeout=5)

