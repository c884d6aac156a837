"""Restart safety: after a crash, runs are found again by label, never resubmitted, and missed fires run once."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client

from tests.realk8s import ClusterUnderTest
from tests.service.conftest import ON_BOTH_CLUSTERS, ROOT, Running, every_seconds, job_yaml, wait_for

pytestmark = ON_BOTH_CLUSTERS

TERMINAL = {"Succeeded", "Failed", "Cancelled", "TimedOut"}


def _driver_pods(cluster: ClusterUnderTest, run_id: str) -> list[Any]:
    core = client.CoreV1Api(cluster.api())
    return list(core.list_namespaced_pod("default", label_selector=f"bigk.io/run={run_id},spark-role=driver").items)


def test_crash_then_restart_adopts_runs_and_fires_a_missed_time_once(
        tmp_path: Path, serve: Callable[..., Running], cluster: ClusterUnderTest) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    keep_all = "successfulRunsHistoryLimit: 100\n"
    (specs / "m.yaml").write_text(job_yaml("m", cron="* * * * *", instances=1, duration=60,
                                           schedule_extra="startingDeadlineSeconds: 30\n" + keep_all))
    state = tmp_path / "state"
    a = serve(specs, state=state, trigger_for=every_seconds(4))
    first = wait_for(lambda: [r for r in a.service.store.list_runs("m") if r.state == "Running"]
                     if a.service.store else None, 15, "a running scheduled run")[0]
    a.crash()
    crashed_at = time.time()
    time.sleep(5)  # at least one fire time passes while nothing runs
    b = serve(specs, state=state, trigger_for=every_seconds(4))
    assert b.service.store is not None
    store = b.service.store
    wait_for(lambda: store.get_run(first.id).state == "Succeeded", 20, "the adopted run to finish")
    after = wait_for(lambda: sorted((r for r in store.list_runs("m") if r.fire_time and r.fire_time > crashed_at),
                                    key=lambda r: r.fire_time or 0), 15, "a fire after the crash")
    late = after[0]
    # Every 4 s fire time from the crash until that run was created passed with no service running.
    passed = [t for t in range(math.ceil(crashed_at), int(late.created_at) + 1) if t % 4 == 0]
    assert passed and late.fire_time == passed[-1]  # coalesced into the latest missed time ...
    assert late.created_at - late.fire_time < 30  # ... fired within startingDeadlineSeconds
    assert [r.id for r in after if r.fire_time in passed] == [late.id]  # ... and only once
    if len(passed) > 1:
        assert any(e.kind == "coalesced" for e in store.events(job="m"))  # the skipped times are on record
    fire_times = [r.fire_time for r in store.list_runs("m")]
    assert len(fire_times) == len(set(fire_times))  # no fire time ran twice
    assert len(_driver_pods(cluster, first.id)) == 1  # adopted, not submitted again
    events = store.events(run_id=first.id)
    assert sum("Pending -> Submitted" in e.message for e in events) == 1


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("BIGK_TOKEN", None)
    return subprocess.Popen([sys.executable, "-m", "bigk.cli.main", "serve", *args], cwd=ROOT, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _server_url(state: Path, proc: subprocess.Popen[bytes], log: Path) -> str:
    def ready() -> str | None:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            return (state / "server").read_text().strip() or None
        except OSError:
            return None

    return str(wait_for(ready, 60, "bigk serve to listen", interval=0.2))


def test_kill_9_during_runs_loses_and_duplicates_nothing(tmp_path: Path, cluster: ClusterUnderTest) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "long.yaml").write_text(job_yaml("long", instances=2, duration=120))  # 6 s at the test time scale
    state = tmp_path / "state"
    log = tmp_path / "serve.log"
    args = [*cluster.cli_args(), "--submit-mode", "direct", "--listen", "127.0.0.1:0", "--state-dir",
            str(state), "--specs", str(specs), "--lease-seconds", "3", "--no-kickoff"]
    proc = _spawn(args, log)
    try:
        url = _server_url(state, proc, log)
        token = (state / "token").read_text().strip()
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=auth, timeout=10) as c:
            ids = [c.post("/api/v1/jobs/long/run").json()["id"] for _ in range(3)]
            wait_for(lambda: sum(c.get(f"/api/v1/runs/{i}").json()["state"] == "Running" for i in ids) >= 2, 30,
                     "runs to be running")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        (state / "server").unlink()
        proc = _spawn(args, log)
        url = _server_url(state, proc, log)
        with httpx.Client(base_url=url, headers=auth, timeout=10) as c:
            final = wait_for(lambda: (lambda rs: rs if all(r["state"] in TERMINAL for r in rs) else None)(
                [c.get(f"/api/v1/runs/{i}").json() for i in ids]), 45, "all runs to finish after restart")
            assert [r["state"] for r in final] == ["Succeeded"] * 3, [(r["state"], r["reason"]) for r in final]
            assert len(c.get("/api/v1/runs", params={"job": "long"}).json()) == 3  # nothing duplicated
            for run in final:
                assert len(_driver_pods(cluster, run["id"])) == 1
                submits = [e for e in run["events"] if "-> Submitted" in e["message"]]
                assert len(submits) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert "event=serve_stopped" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _missed_total(url: str, job: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    prefix = f'bigk_runs_missed_total{{job_name="{job}"}} '
    return next((float(line[len(prefix):]) for line in text.splitlines() if line.startswith(prefix)), 0.0)


def test_a_fire_found_past_its_deadline_is_recorded_and_counted_as_missed(
        tmp_path: Path, serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "d.yaml").write_text(job_yaml("d", cron="* * * * *", instances=1, duration=60,
                                           schedule_extra="startingDeadlineSeconds: 1\n"))
    state = tmp_path / "state"
    a = serve(specs, state=state, trigger_for=every_seconds(6))
    before = _missed_total(a.url, "d")
    a.stop()  # graceful: the lease is released, so the next service leads (and processes fires) at once
    time.sleep(6 - time.time() % 6 + 2)  # a fire time passes while nothing runs, and is 2 s (> 1 s deadline) old
    b = serve(specs, state=state, trigger_for=every_seconds(6))
    assert b.service.store is not None
    store = b.service.store
    missed = wait_for(lambda: [e for e in store.events(job="d") if e.kind == "missed"], 10, "a missed fire on record")
    assert "beyond startingDeadlineSeconds" in missed[0].message
    assert _missed_total(b.url, "d") == before + len(missed)
