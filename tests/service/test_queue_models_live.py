"""A per-model GPU maximum in a running `bigk serve` on the emulated cluster: a run that needs A100s beyond its
queue's A100 maximum waits with that limit as its explanation, and starts when the queue's A100s free up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.service.conftest import Running, job_yaml, wait_for

QUEUES = """\
apiVersion: bigk.io/v1
kind: Queue
metadata: {name: ml}
spec:
  max: {gpu: 12, gpuByModel: {A100: 4}}
"""


def _a100_job(name: str, executors: int, duration: int) -> str:
    text = job_yaml(name, instances=executors, duration=duration, gpu=True, extra="queue: ml\n")
    return text.replace("      count: 1\n", "      count: 1\n      model: A100\n")


def _get(svc: Running, path: str) -> Any:
    with svc.client() as c:
        resp = c.get(path)
        assert resp.status_code == 200, resp.text
        return resp.json()


def _run(svc: Running, job: str) -> str:
    with svc.client() as c:
        resp = c.post(f"/api/v1/jobs/{job}/run")
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])


def test_a_model_maximum_holds_a_run_back_and_lets_it_go_when_room_frees(
        tmp_path: Path, serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "queues.yaml").write_text(QUEUES)
    (specs / "first.yaml").write_text(_a100_job("first", 3, 300))
    (specs / "second.yaml").write_text(_a100_job("second", 2, 20))
    svc = serve(specs)
    ml = _get(svc, "/api/v1/queues/ml")
    assert ml["max"] == {"gpu": 12, "gpuByModel": {"A100": 4}}
    first = _run(svc, "first")
    wait_for(lambda: _get(svc, "/api/v1/queues/ml")["allocated"].get("gpuByModel") == {"A100": 3}, 30,
             "first holding 3 A100s")
    second = _run(svc, "second")  # 2 more A100s would make 5 > 4
    why = wait_for(lambda: (e := _get(svc, f"/api/v1/runs/{second}/explain")["explanation"] or "")
                   and "A100 GPU maximum" in e and e, 30, "second waiting at the A100 maximum")
    assert "queue ml would exceed its A100 GPU maximum (4 GPUs): 3 GPUs of A100 in use, 2 GPUs more needed" in why
    detail = _get(svc, "/api/v1/queues/ml")
    assert [w["state"] for w in detail["waiting"]] == ["queue-maximum"]
    assert detail["allocated"]["gpuByProduct"] == {"NVIDIA-A100-SXM4-80GB": 3}
    assert _get(svc, f"/api/v1/runs/{first}")["state"] == "Running"
    assert _get(svc, f"/api/v1/runs/{second}")["state"] not in ("Running", "Succeeded")
    with svc.client() as c:
        text = c.get("/metrics").text
    assert 'bigk_queue_gpu_model_allocated{cluster="default",model="A100",queue="ml"} 3.0' in text
    assert 'bigk_queue_gpu_model_max{cluster="default",model="A100",queue="ml"} 4.0' in text
    # first ends: its A100s free up and second starts on them.
    done = wait_for(lambda: (r := _get(svc, f"/api/v1/runs/{second}"))["state"] in ("Running", "Succeeded") and r,
                    60, "second to start once first's A100s are free")
    assert _get(svc, f"/api/v1/runs/{first}")["state"] == "Succeeded", done
