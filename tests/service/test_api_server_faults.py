"""`bigk serve` when its API server forgets everything (the issue's incident, on the emulator).

The emulated cluster is killed and started again on the same port, empty, as after etcd is
restored from an old backup or a control plane is rebuilt. bigk must notice on its own: runs
whose pods vanished fail with a reason that says so and are retried per their policy, and new
runs are scheduled on the new, empty nodes (no phantom gang holds room there).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bigk.cluster.config import load_cluster
from bigk.emulator import EmulatedCluster
from bigk.service.app import Service, ServiceConfig
from tests.service.conftest import ROOT, TIME_SCALE, job_yaml, wait_for


def _cluster(port: int = 0) -> EmulatedCluster:
    cluster = EmulatedCluster(load_cluster(ROOT / "jobspecs" / "cluster.yaml"), port=port, time_scale=TIME_SCALE)
    cluster.start()
    return cluster


@pytest.fixture
def forgetful() -> Iterator[list[EmulatedCluster]]:
    clusters = [_cluster()]
    yield clusters
    clusters[-1].stop()


def test_runs_recover_after_the_api_server_lost_its_state(tmp_path: Path, forgetful: list[EmulatedCluster]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "long.yaml").write_text(job_yaml("long", instances=2, duration=4000, extra="""\
        restartPolicy:
          type: OnFailure
          retries: 1
          backoffSeconds: 0
        """))
    (specs / "short.yaml").write_text(job_yaml("short", instances=2, duration=20))
    svc = Service(ServiceConfig(specs=[specs], kube_server=forgetful[0].url, state_dir=tmp_path / "state",
                                submit_mode="direct", tick_s=0.2, reload_s=0.3, leader_lease_s=3.0)).start()
    try:
        wait_for(lambda: svc.is_leader, 10, "leadership")
        store = svc.db()
        first = svc.run_now("long")
        wait_for(lambda: store.get_run(first.id).state == "Running", 30, "the long run running")
        port = forgetful[0].port
        forgetful[0].stop()
        forgetful.append(_cluster(port))  # the same address, nothing remembered
        started = time.monotonic()
        failed = wait_for(lambda: (lambda r: r if r.state == "Failed" else None)(store.get_run(first.id)), 30,
                          "the run whose pods vanished to fail")
        assert "not found" in failed.reason and "restarted" in failed.reason
        retry = wait_for(lambda: next((r for r in store.list_runs("long") if r.retry_of == first.id), None), 10,
                         "the retry the policy asks for")
        wait_for(lambda: store.get_run(retry.id).state == "Running", 30, "the retry running on the new server")
        fresh = svc.run_now("short")
        wait_for(lambda: store.get_run(fresh.id).state == "Succeeded", 30, "a new run to complete")
        assert time.monotonic() - started < 60  # well inside the 300 s watch timeout of the report
        informer = svc.loop.pod_informer
        assert informer.stats.lists >= 2
    finally:
        svc.stop()
