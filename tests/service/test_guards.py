"""`bigk serve` and specs that cannot run: one fit rule with validate, and a cap on waiting runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.realk8s import cluster_params
from tests.service.conftest import Running, every_seconds, job_yaml, wait_for

pytestmark = pytest.mark.parametrize("cluster", cluster_params(), indirect=True)  # emulator and kube-apiserver


def test_a_never_fitting_job_gets_no_runs_and_healthy_jobs_run(tmp_path: Path,
                                                                serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "huge.yaml").write_text(job_yaml("huge", cron="* * * * *", instances=10_000, gpu=True))
    (specs / "ok.yaml").write_text(job_yaml("ok", cron="* * * * *", instances=1, duration=2))
    r = serve(specs, trigger_for=every_seconds(1))
    store = r.service.db()
    wait_for(lambda: any(run.state == "Succeeded" for run in store.list_runs("ok")), 30, "a healthy run to finish")
    wait_for(lambda: any("can never run" in e.message for e in store.events(job="huge")), 10,
             "a skipped fire of the never-fitting job")
    assert store.list_runs("huge") == []
    with r.client() as c:
        refused = c.post("/api/v1/jobs/huge/run")
        assert refused.status_code == 400
        assert "can never run on the cluster's" in refused.json()["detail"]
        problems = c.get("/api/v1/problems").json()["problems"]
    line = next(p for p in problems if "huge.yaml" in p)
    assert "spec.executor" in line and "bigk creates no runs of it" in line
    assert store.list_runs("huge") == []


def test_scheduled_fires_stop_while_a_run_waits_to_start(tmp_path: Path, serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "w.yaml").write_text(job_yaml("w", cron="* * * * *", instances=1, duration=2))
    r = serve(specs, trigger_for=every_seconds(1))
    svc = r.service
    assert svc.cluster is not None
    nodes = svc.cluster.node_names()
    try:
        for node in nodes:
            svc.cordon(node)  # nothing can start now: one run waits
        cordoned = svc.clock()
        store = svc.db()
        wait_for(lambda: any("maxPendingRuns is 1" in e.message for e in store.events(job="w")), 45,
                 "a fire skipped for the waiting run")  # on a loaded machine the cordons take a while to be seen
        time.sleep(3)  # three more fires
        later = [run for run in store.list_runs("w") if run.created_at > cordoned]
        waiting = [run for run in store.list_runs("w") if run.state in ("Pending", "Submitted")]
        assert len(later) <= 1 and len(waiting) == 1, [(run.state, run.reason) for run in store.list_runs("w")]
    finally:
        for node in nodes:
            svc.cordon(node, False)
