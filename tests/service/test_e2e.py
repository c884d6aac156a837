"""End to end over HTTP: `bigk serve` (in-process) on the emulated cluster fires, admits, runs and records."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bigk.service.authz import local_cluster
from tests.service.conftest import ON_BOTH_CLUSTERS, Running, every_seconds, job_yaml, wait_for

pytestmark = ON_BOTH_CLUSTERS


def _runs(svc: Running, job: str | None = None) -> list[dict[str, Any]]:
    with svc.client() as c:
        return list(c.get("/api/v1/runs", params={"job": job} if job else {}).json())


def _finished(svc: Running, job: str, n: int = 1) -> list[dict[str, Any]]:
    done = [r for r in _runs(svc, job) if r["state"] in ("Succeeded", "Failed", "TimedOut", "Cancelled")]
    return done if len(done) >= n else []


def test_scheduled_runs_are_admitted_as_gangs_finish_and_show_in_history(
        tmp_path: Path, serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    # A run lasts 4 s (80 s at the fixture's time scale) and cron fires every 2 s: fires come while it is active.
    (specs / "tick.yaml").write_text(job_yaml("tick", cron="* * * * *", instances=2, duration=80,
                                              schedule_extra="concurrencyPolicy: Forbid\n"))
    svc = serve(specs, trigger_for=every_seconds(2))
    [run] = wait_for(lambda: _finished(svc, "tick"), 30, "a scheduled run of tick to finish")[-1:]
    assert run["state"] == "Succeeded", run
    assert run["trigger"] == "schedule" and run["fire_time"] is not None
    assert run["submitted_at"] <= run["admitted_at"] <= run["running_at"] <= run["finished_at"]
    # every pod the run used is on record, executors included (the driver deleted them at its end)
    assert [p["role"] for p in run["pods"]] == ["driver", "executor", "executor"]
    assert all(p["node"] for p in run["pods"])
    with svc.client() as c:
        detail = c.get(f"/api/v1/runs/{run['id']}").json()
        kinds = [e["message"] for e in detail["events"]]
        assert any("Submitted -> Admitted" in k for k in kinds) and any("Running -> Succeeded" in k for k in kinds)
        hist = c.get("/api/v1/jobs/tick/history").json()
        assert hist["summary"]["runs"] >= 1 and hist["summary"]["success_rate"] == 1.0
        assert hist["summary"]["duration_p50_s"] > 0
        metrics = c.get("/metrics").text
        assert 'bigk_runs_total{job_name="tick",state="succeeded"}' in metrics
    # Forbid: a fire that came while the run was active was skipped, naming that run ...
    with svc.client() as c:
        events = c.get("/api/v1/events", params={"job": "tick", "limit": 1000}).json()
    skipped = [e for e in events if e["kind"] == "skipped" and "concurrencyPolicy Forbid" in e["message"]]
    assert any(e["run_id"] == run["id"] for e in skipped), [e["message"] for e in events]
    # ... so no two runs of tick were ever active together.
    runs = sorted(_runs(svc, "tick"), key=lambda r: r["created_at"])
    for a, b in zip(runs, runs[1:], strict=False):
        assert a["finished_at"] is not None and a["finished_at"] <= b["created_at"] + 0.5


def test_executors_wait_for_the_whole_gang_and_explain_why(tmp_path: Path, serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    # 4 whole-GPU executors run for a while; then a gang of 14 could start on the 16 whole GPUs (the A100s)
    # once they end, but not before: it waits whole, and says why.
    (specs / "busy.yaml").write_text(job_yaml("busy", instances=4, gpu=True, duration=2000))
    (specs / "big.yaml").write_text(job_yaml("big", instances=14, gpu=True))
    # 40 executors could never start on this cluster: no run is created at all.
    (specs / "huge.yaml").write_text(job_yaml("huge", instances=40, gpu=True))
    svc = serve(specs)
    with svc.client() as c:
        refused = c.post("/api/v1/jobs/huge/run")
        assert refused.status_code == 400 and "can never run on the cluster's" in refused.json()["detail"]
        busy = c.post("/api/v1/jobs/busy/run").json()
        wait_for(lambda: c.get(f"/api/v1/runs/{busy['id']}").json()["state"] == "Running", 20, "busy running")
        run = c.post("/api/v1/jobs/big/run").json()
        wait_for(lambda: c.get(f"/api/v1/runs/{run['id']}").json()["state"] == "Submitted", 10, "submission")
        why = wait_for(lambda: c.get(f"/api/v1/runs/{run['id']}/explain").json()["explanation"]
                       if "gpu" in c.get(f"/api/v1/runs/{run['id']}/explain").json()["explanation"].lower() else None,
                       10, "a GPU explanation")
        assert "1 driver + 14 executors" in why and "12 executors fit" in why  # 16 GPUs, 4 of them busy
        [exp] = c.get("/api/v1/explanations").json()
        assert exp["message"] == why and exp["executors_fit"] == 12
        queue = c.get("/api/v1/queue").json()
        assert [q["run"] for q in queue] == [run["id"]] and queue[0]["explanation"] == why
        pods = c.get(f"/api/v1/runs/{run['id']}").json()["pods"]
        assert [p["node"] for p in pods] == [""]  # not even the driver is bound: all or nothing
        cancelled = c.post(f"/api/v1/runs/{run['id']}/cancel").json()
        assert cancelled["state"] == "Cancelled"


def test_actions_need_the_token(tmp_path: Path, serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "a.yaml").write_text(job_yaml("a"))
    svc = serve(specs)
    with svc.client(token=False) as anon:
        for path in ("/api/v1/jobs/a/run", "/api/v1/jobs/a/suspend", "/api/v1/jobs/a/resume",
                     "/api/v1/runs/x/cancel", "/api/v1/nodes/cpu-0/drain", "/api/v1/nodes/cpu-0/cordon",
                     "/api/v1/pools/cpu/drain", "/api/v1/pools/cpu/uncordon", "/api/v1/jobs/a/clear-suspend"):
            resp = anon.post(path)
            assert resp.status_code == 401, path
            assert resp.headers["www-authenticate"] == "Bearer"
        # token-less reads: from loopback, and only when the cluster itself is local (open to this machine anyway)
        assert anon.get("/api/v1/jobs").status_code == (200 if local_cluster(svc.service) else 401)
    with svc.client() as c:
        bad = c.post("/api/v1/jobs/a/run", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
    assert _runs(svc) == []


def test_failed_runs_retry_with_backoff_then_give_up(tmp_path: Path, serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "flaky.yaml").write_text(job_yaml(
        "flaky", instances=1, duration=2, driver_annotations={"bigk.io/sim-fail": "true"},
        extra="restartPolicy:\n  type: OnFailure\n  retries: 2\n  backoffSeconds: 1\n"))
    svc = serve(specs)
    with svc.client() as c:
        first = c.post("/api/v1/jobs/flaky/run").json()
    runs = wait_for(lambda: (lambda rs: rs if len(rs) == 3 and all(r["state"] == "Failed" for r in rs) else None)(
        _runs(svc, "flaky")), 30, "three failed attempts")
    by_attempt = sorted(runs, key=lambda r: r["attempt"])
    assert [r["attempt"] for r in by_attempt] == [1, 2, 3]
    assert by_attempt[0]["id"] == first["id"]
    assert all(r["retry_of"] == first["id"] for r in by_attempt[1:])
    # exponential backoff: attempt 2 waited >= 1 s after attempt 1 ended, attempt 3 >= 2 s after attempt 2
    assert by_attempt[1]["submitted_at"] - by_attempt[0]["finished_at"] >= 1.0
    assert by_attempt[2]["submitted_at"] - by_attempt[1]["finished_at"] >= 2.0
    assert "driver failed" in by_attempt[0]["reason"]


def test_active_deadline_times_runs_out(tmp_path: Path, serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "slow.yaml").write_text(job_yaml("slow", instances=1, duration=2000, extra="activeDeadlineSeconds: 2\n"))
    svc = serve(specs)
    with svc.client() as c:
        run = c.post("/api/v1/jobs/slow/run").json()
        done = wait_for(lambda: (lambda r: r if r["state"] == "TimedOut" else None)(
            c.get(f"/api/v1/runs/{run['id']}").json()), 15, "the deadline")
    assert "activeDeadlineSeconds" in done["reason"]
    pods = svc.service.runs.pods.run_pods("default", run["id"]) if svc.service.runs else []
    assert wait_for(lambda: not svc.service.runs.pods.run_pods("default", run["id"]) if svc.service.runs else True,
                    10, "pods deleted") or pods == []


def test_suspend_resume_and_replace(tmp_path: Path, serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "r.yaml").write_text(job_yaml("r", cron="* * * * *", instances=1, duration=2000,
                                           schedule_extra="concurrencyPolicy: Replace\nfailedRunsHistoryLimit: 100\n"))
    svc = serve(specs, trigger_for=every_seconds(3))
    first = wait_for(lambda: _runs(svc, "r"), 10, "first fire")[0]
    def replaced() -> dict[str, Any] | None:
        runs = {r["id"]: r for r in _runs(svc, "r")}
        active = [r for r in runs.values() if r["state"] not in ("Succeeded", "Failed", "Cancelled", "TimedOut")]
        assert len(active) <= 1  # Replace never lets two runs overlap
        return runs[first["id"]] if len(runs) >= 2 and runs[first["id"]]["state"] == "Cancelled" else None

    old = wait_for(replaced, 10, "the second fire to replace the first run")
    newer = min((r for r in _runs(svc, "r") if r["id"] != first["id"]), key=lambda r: r["fire_time"])
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(newer["fire_time"]))
    assert old["reason"] == f"replaced by the fire at {stamp} (concurrencyPolicy Replace)"
    with svc.client() as c:
        assert c.post("/api/v1/jobs/r/suspend").json()["suspended"] is True
        count = len(_runs(svc, "r"))
        time.sleep(4)
        assert len(_runs(svc, "r")) == count  # nothing fired while suspended
        resumed = c.post("/api/v1/jobs/r/resume").json()
        assert resumed["suspended"] is False and resumed["next_fire"] is not None
    wait_for(lambda: len(_runs(svc, "r")) > count, 10, "a fire after resume")


def test_history_limits_prune_old_runs_but_keep_their_statistics(
        tmp_path: Path, serve: Callable[..., Running], cluster: Any) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "p.yaml").write_text(job_yaml("p", cron="0 3 * * *", instances=1, duration=10,
                                           schedule_extra="successfulRunsHistoryLimit: 1\n"))
    svc = serve(specs)
    ids = []
    with svc.client() as c:
        for _ in range(2):
            run_id = c.post("/api/v1/jobs/p/run").json()["id"]
            ids.append(run_id)
            wait_for(lambda: c.get(f"/api/v1/runs/{run_id}").json()["state"] == "Succeeded", 15,  # noqa: B023
                     "the run to finish")
        assert [r["id"] for r in c.get("/api/v1/runs", params={"job": "p"}).json()] == [ids[1]]
        assert c.get(f"/api/v1/runs/{ids[0]}").status_code == 404
        assert c.get("/api/v1/jobs/p/history").json()["summary"]["runs"] == 2
    from kubernetes import client as k8s

    core = k8s.CoreV1Api(cluster.api())

    def pods(run_id: str) -> int:
        return len(core.list_namespaced_pod("default", label_selector=f"bigk.io/run={run_id}").items)

    assert pods(ids[0]) == 0  # the pruned run's driver is deleted with it
    # the kept run keeps its driver; its executor goes once Spark has deleted it (on kube-apiserver a deletion is
    # graceful: the pod stays listed until its kubelet confirms, a moment after the driver has ended)
    wait_for(lambda: pods(ids[1]) == 1, 15, "the kept run's executor to be gone")
    assert pods(ids[1]) == 1
