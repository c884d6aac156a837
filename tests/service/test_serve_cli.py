"""The README's first command: `bigk serve` with no cluster options shows runs happening within seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from bigk.service.store import Store, default_database_url
from tests.service.conftest import ROOT, wait_for


def test_bigk_serve_on_a_fresh_machine_runs_the_example_specs(tmp_path: Path) -> None:
    state = tmp_path / "state"
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIGK_")}
    # Test-only options: a private state dir, any free port, simulated run times at 1/20.
    argv = [sys.executable, "-m", "bigk.cli.main", "serve", "--state-dir", str(state), "--listen", "127.0.0.1:0",
            "--time-scale", "0.05"]
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        def url() -> str | None:
            assert proc.poll() is None, log.read_text()[-3000:]
            path = state / "server"
            return path.read_text().strip() if path.exists() else None

        base = wait_for(url, 60, "bigk serve to listen", interval=0.2)
        with httpx.Client(base_url=base, timeout=10) as c:
            jobs = {j["name"] for j in c.get("/api/v1/jobs").json()}
            assert {"nightly-etl", "gpu-scoring", "gpu-features"} <= jobs  # the example specs
            done = wait_for(lambda: [r for r in c.get("/api/v1/runs").json() if r["state"] == "Succeeded"], 30,
                            "a run to succeed", interval=0.5)
            assert all(len(r["pods"]) >= 1 for r in done)
            assert c.get("/readyz").status_code == 200
            # GPU and pool gauges come from the scheduler's view of the cluster
            wait_for(lambda: 'bigk_gpu_allocated_milli{' in c.get("/metrics").text, 15, "GPU gauges", interval=0.5)
            assert 'bigk_pool_capacity{' in c.get("/metrics").text
            assert c.get("/healthz").json() == {"status": "ok"}
        assert (state / "token").stat().st_mode & 0o077 == 0  # generated token, private
        token = (state / "token").read_text().strip()
        late = httpx.post(f"{base}/api/v1/jobs/gpu-features/run", headers={"Authorization": f"Bearer {token}"})
        assert late.status_code == 201
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        text = log.read_text()
        for line in ("event=run_state", "to=Admitted", "to=Succeeded", "event=serve_stopped"):
            assert line in text, line
        # The run still going at SIGTERM is recorded as cancelled with the embedded cluster, not left dangling.
        run = Store(default_database_url(state)).get_run(late.json()["id"])
        assert run.state == "Cancelled" and "embedded emulated cluster" in run.reason
        assert not (state / "server").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
