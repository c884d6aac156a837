"""Queues in a running `bigk serve` on the emulated cluster: declared in the specs, hot-reloaded, shown with
live usage over HTTP and in /metrics, and a queue under its guarantee taking back GPUs another queue borrowed."""

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
  guarantee: {gpu: 8}
---
apiVersion: bigk.io/v1
kind: Queue
metadata: {name: ml.training}
spec:
  guarantee: {gpu: 8}
  priority: {default: 0}
---
apiVersion: bigk.io/v1
kind: Queue
metadata: {name: batch}
spec:
  weight: WEIGHT
"""


def _queues(svc: Running) -> dict[str, dict[str, Any]]:
    with svc.client() as c:
        return {q["name"]: q for q in c.get("/api/v1/queues").json()}


def _run(svc: Running, job: str) -> dict[str, Any]:
    with svc.client() as c:
        resp = c.post(f"/api/v1/jobs/{job}/run")
        assert resp.status_code == 201, resp.text
        return dict(resp.json())


def _admissions(svc: Running, queue: str) -> float:
    """Gangs admitted so far in `queue`, from the admission latency histogram's count."""
    prefix = f'bigk_scheduler_gang_admission_latency_seconds_count{{cluster="default",queue="{queue}"}} '
    with svc.client() as c:
        lines = c.get("/metrics").text.splitlines()
    return next((float(line[len(prefix):]) for line in lines if line.startswith(prefix)), 0.0)


def _state(svc: Running, run_id: str) -> dict[str, Any]:
    with svc.client() as c:
        return dict(c.get(f"/api/v1/runs/{run_id}").json())


def test_queues_are_served_with_live_usage_and_reloaded_keeping_the_last_good_tree(
        tmp_path: Path, serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "queues.yaml").write_text(QUEUES.replace("WEIGHT", "1"))
    (specs / "train.yaml").write_text(job_yaml("train", instances=2, duration=400, gpu=True,
                                               extra="queue: root.ml.training\n"))
    svc = serve(specs)
    assert sorted(_queues(svc)) == ["batch", "ml", "ml.training"]
    admitted_before = _admissions(svc, "ml.training")  # the registry is the process's: other tests count too
    run = _run(svc, "train")
    busy = wait_for(lambda: (q := _queues(svc))["ml.training"]["running_runs"] == 1 and q, 20, "train running")
    assert busy["ml.training"]["allocated"]["gpu"] == 2 and busy["ml"]["allocated"]["gpu"] == 2  # the parent sums
    assert busy["ml.training"]["dominant_share"] > 0 and busy["ml.training"]["guarantee"] == {"gpu": 8}
    with svc.client() as c:
        text = c.get("/metrics").text
        detail = c.get("/api/v1/queues/root.ml.training").json()
    assert 'bigk_queue_allocated{cluster="default",queue="ml.training",resource="gpu"} 2.0' in text
    assert 'bigk_queue_guaranteed{cluster="default",queue="ml",resource="gpu"} 8.0' in text
    assert _admissions(svc, "ml.training") == admitted_before + 1
    assert detail["name"] == "ml.training" and detail["parent"] == "ml" and detail["priority"]["default"] == 0
    assert _state(svc, run["id"])["queue"] == "ml.training"
    # A broken queue file: its problem is served, the tree in use stays as it was.
    (specs / "queues.yaml").write_text(QUEUES.replace("WEIGHT", "1").replace("guarantee: {gpu: 8}\n  priority",
                                                                             "guarantee: {gpu: 9}\n  priority"))
    with svc.client() as c:
        problems = wait_for(lambda: c.get("/api/v1/problems").json()["problems"], 10, "the queue problem")
    assert any("add up to more gpu than ml itself is guaranteed" in p for p in problems), problems
    assert sorted(_queues(svc)) == ["batch", "ml", "ml.training"] and svc.service.catalog.view.queues_kept
    # Fixed, with a change: the new tree is served.
    (specs / "queues.yaml").write_text(QUEUES.replace("WEIGHT", "3"))
    wait_for(lambda: _queues(svc)["batch"]["weight"] == 3, 10, "the new weight")
    assert not svc.service.catalog.view.queues_kept


def test_a_queue_under_its_guarantee_takes_back_gpus_another_queue_borrowed(
        tmp_path: Path, serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "queues.yaml").write_text(QUEUES.replace("WEIGHT", "1"))
    # batch has no guarantee: its 16 whole-GPU executors borrow every A100 of the cluster.
    (specs / "hog.yaml").write_text(job_yaml("hog", instances=16, duration=4000, gpu=True,
                                             extra="queue: batch\npriority: 100\n"))
    (specs / "train.yaml").write_text(job_yaml("train", instances=4, duration=40, gpu=True,
                                               extra="queue: ml.training\n"))
    svc = serve(specs)
    hog = _run(svc, "hog")
    wait_for(lambda: _queues(svc)["batch"]["allocated"].get("gpu") == 16, 30, "hog holding all 16 A100s")
    assert _queues(svc)["batch"]["borrowed"]["gpu"] == 16
    train = _run(svc, "train")  # ml.training is under its 8-GPU guarantee: it reclaims, priority 0 < 100 or not
    done = wait_for(lambda: _state(svc, train["id"])["state"] in ("Running", "Succeeded") and _state(svc, train["id"]),
                    40, "train to run on reclaimed GPUs")
    assert done["state"] in ("Running", "Succeeded")
    lost = wait_for(lambda: (r := _state(svc, hog["id"]))["state"] not in ("Running", "Admitted", "Submitted") and r,
                    20, "hog to be stopped")
    assert lost["state"] == "Failed" and "evicted by the scheduler (reclaimed by" in lost["reason"], lost
    with svc.client() as c:
        text = c.get("/metrics").text
    assert 'bigk_scheduler_preemptions_total{cluster="default",queue="batch"}' in text


def test_a_queues_file_alone_declares_the_queues_and_is_reloaded(tmp_path: Path,
                                                                  serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "queues.yaml").write_text(QUEUES.replace("WEIGHT", "1"))  # ignored: the file below wins
    (specs / "job.yaml").write_text(job_yaml("job", extra="queue: team\n"))
    helm = tmp_path / "helm-queues.yaml"  # what the chart mounts from its `queues` values
    helm.write_text("apiVersion: bigk.io/v1\nkind: Queue\nmetadata: {name: team}\n")
    svc = serve(specs, queues_file=helm)
    assert sorted(_queues(svc)) == ["team"]
    with svc.client() as c:
        assert c.get("/api/v1/problems").json()["problems"] == []
        assert c.get("/api/v1/jobs/job").json()["queue"] == "team"
    helm.write_text("apiVersion: bigk.io/v1\nkind: Queue\nmetadata: {name: team}\nspec: {weight: 5}\n")
    wait_for(lambda: _queues(svc)["team"]["weight"] == 5, 10, "the queues file reloaded")
