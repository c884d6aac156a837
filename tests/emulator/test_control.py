"""The /emulator/v1 control endpoints a standalone emulator is driven with (curl-style)."""

from __future__ import annotations

import json

import httpx

from bigk.cluster.labels import GPU_READINGS_ANNOTATION
from bigk.emulator import EmulatedCluster
from tests.emulator.conftest import stored


def test_gpu_health_and_external_use_over_http(sim: EmulatedCluster) -> None:
    resp = httpx.put(f"{sim.url}/emulator/v1/nodes/gpu-0/gpus/2",
                     json={"healthy": False, "external_memory_mib": 10_000})
    assert resp.status_code == 200

    def gpu2() -> dict | None:
        text = stored(sim, "nodes", "gpu-0")["metadata"].get("annotations", {}).get(GPU_READINGS_ANNOTATION)
        gpu = json.loads(text)[2] if text else None
        return gpu if gpu and gpu["healthy"] is False and gpu["memory_free_mib"] == 71_920 else None

    assert sim.wait_for(gpu2, timeout=5)
    assert httpx.put(f"{sim.url}/emulator/v1/nodes/gpu-0/gpus/9", json={"healthy": False}).status_code == 404
    assert httpx.put(f"{sim.url}/emulator/v1/nodes/cpu-0/gpus/0", json={"healthy": False}).status_code == 404


def test_node_readiness_and_faults_over_http(bare: EmulatedCluster) -> None:
    assert httpx.put(f"{bare.url}/emulator/v1/nodes/cpu-0/ready", json={"ready": False}).status_code == 200
    conditions = stored(bare, "nodes", "cpu-0")["status"]["conditions"]
    assert [c["status"] for c in conditions if c["type"] == "Ready"] == ["False"]
    added = httpx.post(f"{bare.url}/emulator/v1/faults", json={"method": "GET", "path_regex": "/nodes$",
                                                               "status": 503, "count": 2})
    assert added.status_code == 201
    assert [httpx.get(f"{bare.url}/api/v1/nodes").status_code for _ in range(3)] == [503, 503, 200]
    httpx.post(f"{bare.url}/emulator/v1/faults", json={"path_regex": ".*", "status": 500, "count": 5})
    assert httpx.delete(f"{bare.url}/emulator/v1/faults").status_code == 200  # control paths ignore faults
    assert httpx.get(f"{bare.url}/api/v1/nodes").status_code == 200
    bad = httpx.post(f"{bare.url}/emulator/v1/faults", json={"path_regex": ".*", "status": 200})
    assert bad.status_code == 400 and bad.json()["kind"] == "Status"


def test_bad_control_requests_are_400(bare: EmulatedCluster) -> None:
    missing = httpx.post(f"{bare.url}/emulator/v1/faults", json={"status": 500})
    assert missing.status_code == 400 and "path_regex" in missing.json()["message"]
    assert httpx.get(f"{bare.url}/emulator/v1/nothing").status_code == 404
