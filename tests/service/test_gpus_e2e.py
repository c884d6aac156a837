"""GPUs end to end, on the emulator and (marked `cluster`) the real control plane with simulated nodes.

A spec asking for `model: A100` lands on nodes GPU feature discovery labels `NVIDIA-A100-SXM4-80GB`;
a run whose GPUs stay idle is named by `bigk get gpus --idle` within the configured window; a share
that uses more memory than it asked for shows as over-share.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from bigk.cli.main import app
from tests.service.conftest import ON_BOTH_CLUSTERS, Running, wait_for

pytestmark = ON_BOTH_CLUSTERS

IDLE_MINUTES = 0.1  # 6 s of readings (the simulated GPUs publish every 2 s)


def _spec(name: str, gpu: str, annotations: dict[str, str]) -> str:
    notes = "".join(f"      {k}: \"{v}\"\n" for k, v in annotations.items())
    return textwrap.dedent(f"""\
        apiVersion: bigk.io/v1
        kind: SparkJob
        metadata:
          name: {name}
        spec:
          type: Python
          image: bigk/spark-apps:0.1
          mainApplicationFile: local:///opt/app.py
          expectedDurationSeconds: 2000
          executor:
            cores: 1
            memory: 1g
            instances: 2
            gpu: {gpu}
            annotations:
        """) + notes


def _start_run(svc: Running, job: str) -> str:
    with svc.client() as c:
        resp = c.post(f"/api/v1/jobs/{job}/run")
        assert resp.status_code in (200, 201, 202), resp.text
        return str(resp.json()["id"])


def _executor_nodes(svc: Running, run: str) -> list[str]:
    with svc.client() as c:
        pods = c.get(f"/api/v1/runs/{run}").json()["pods"]
    nodes = [p["node"] for p in pods if p["role"] == "executor" and p["node"]]
    return nodes if len(nodes) == 2 else []


def test_a100_spec_lands_on_gfd_labelled_nodes_and_idle_run_is_named(
        tmp_path: Path, serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "idle.yaml").write_text(_spec("idle-a100", "{count: 1, model: A100}",
                                           {"bigk.io/sim-gpu-utilization": "0"}))
    svc = serve(specs, gpu_idle_minutes=IDLE_MINUTES, gpu_sample_s=0.5)
    run = _start_run(svc, "idle-a100")
    nodes = wait_for(lambda: _executor_nodes(svc, run), 30, "both executors placed")
    with svc.client() as c:
        labelled = {n["name"]: n for n in c.get("/api/v1/nodes").json()}
    assert all(n.startswith("gpu-a100-") for n in nodes), nodes
    assert {labelled[n]["gpu_model"] for n in nodes} == {"NVIDIA-A100-SXM4-80GB"}

    def idle() -> list[dict[str, Any]]:
        with svc.client() as c:
            data = c.get("/api/v1/gpus/idle").json()
        return [g for g in data["idle"] if run in g["runs"]]

    found = wait_for(lambda: idle() if len(idle()) == 2 else None, 40, "both GPUs of the run reported idle")
    assert all(g["jobs"] == ["idle-a100"] and g["idle_s"] >= IDLE_MINUTES * 60 for g in found)
    assert sorted(g["node"] for g in found) == sorted(nodes)
    assert all(h["run"] == run for g in found for h in g["holders"])
    with svc.client() as c:
        gpus = c.get("/api/v1/gpus").json()
        text = c.get("/metrics").text
    noted = [g for g in gpus if any(n.startswith("idle-") for n in g["notes"])]
    assert len(noted) == 2
    assert 'bigk_gpus_idle{cluster="default",job_name="idle-a100",queue="default"} 2.0' in text
    result = CliRunner().invoke(app, ["get", "gpus", "--idle", "--server", svc.url], env={"BIGK_TOKEN": svc.token})
    assert result.exit_code == 0, result.output
    assert run in result.output and "idle-a100" in result.output


def test_a_share_over_its_memory_shows_in_get_gpus_and_metrics(
        tmp_path: Path, serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "greedy.yaml").write_text(_spec("greedy", "{fraction: 0.25, memory: 2Gi, model: T4}",
                                             {"bigk.io/sim-gpu-memory-mib": "9000"}))
    svc = serve(specs, gpu_sample_s=0.5)
    run = _start_run(svc, "greedy")
    nodes = wait_for(lambda: _executor_nodes(svc, run), 30, "both executors placed")
    assert all(n.startswith("gpu-t4-") for n in nodes), nodes  # the T4 pool is bigk's sharing pool

    def over() -> list[dict[str, Any]]:
        with svc.client() as c:
            return [g for g in c.get("/api/v1/gpus/findings").json()["over_share"] if run in g["runs"]]

    found = wait_for(over, 30, "the over-share finding")
    assert found[0]["memory_allowed_mib"] in (2048, 4096) and found[0]["memory_used_mib"] >= 9000
    with svc.client() as c:
        gpus = c.get("/api/v1/gpus").json()
        text = httpx.get(f"{svc.url}/metrics").text
    assert any("over-share" in g["notes"] for g in gpus)
    assert 'bigk_gpus_over_share{cluster="default",pool="gpu-t4"}' in text
