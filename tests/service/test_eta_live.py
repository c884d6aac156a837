"""`bigk serve` with the example gpu-features spec run a dozen times: waiting runs get a queue position,
an estimated start with a range and what they wait for; `whatif` and `run --dry-run` answer without
creating anything; the CLI shows it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bigk import metrics
from tests.cli_main import run_main
from tests.service.conftest import ROOT, Running, wait_for

DURATION_S = 6000  # x the fixture's time scale 0.05: each run holds its GPUs 300 s. The checks on the waiting runs
# below (several forecasts on a loaded 2-core machine) must all see them still waiting: with 20 s and then 60 s the
# first waiting run had sometimes started (and left the board) before `bigk explain` was asked. The running runs
# are cancelled once the checks are done, so the waiting ones start then.


def _specs(tmp_path: Path) -> Path:
    specs = tmp_path / "specs"
    specs.mkdir()
    text = (ROOT / "jobspecs" / "gpu-features.yaml").read_text()
    assert "expectedDurationSeconds: 60" in text
    (specs / "gpu-features.yaml").write_text(text.replace("expectedDurationSeconds: 60",
                                                          f"expectedDurationSeconds: {DURATION_S}"))
    return specs


def _settled(client, run_ids: list[str]) -> list[dict]:
    """The explain answers of the waiting runs, once 8 runs hold the A100s, 4 wait and the board covers them."""
    runs = {r["id"]: r for r in client.get("/api/v1/runs", params={"job": "gpu-features"}).json()}
    waiting = [rid for rid in run_ids if runs[rid]["state"] in ("Pending", "Submitted")]
    started = [rid for rid in run_ids if runs[rid]["state"] in ("Admitted", "Running")]
    if len(waiting) != 4 or len(started) != 8:
        return []
    board = client.get("/api/v1/eta").json()
    if sorted(r["run"] for r in board["runs"]) != sorted(waiting):
        return []
    out = [client.get(f"/api/v1/runs/{rid}/explain").json() for rid in waiting]
    return out if all(b.get("eta") and b["eta"]["eta"] is not None for b in out) else []


def test_a_dozen_gpu_features_runs_get_positions_and_etas(tmp_path: Path, serve: Callable[..., Running],
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    r = serve(_specs(tmp_path))
    c = r.client()
    ids = [c.post("/api/v1/jobs/gpu-features/run").json()["id"] for _ in range(12)]
    # 16 A100s, 2 per run: 8 run, 4 wait. Each waiting run gets an estimate.
    waiting = wait_for(lambda: _settled(c, ids), 30, "four waiting runs with ETAs")
    now = r.service.clock()
    positions = sorted(w["eta"]["position"] for w in waiting)
    assert positions == list(range(1, len(waiting) + 1))
    for w in waiting:
        eta = w["eta"]
        assert eta["waiting"] == len(waiting) and eta["queue"] == "ml.training"
        assert eta["eta_low"] <= eta["eta"] <= eta["eta_high"]
        assert eta["eta"] > now - 1  # in the future (it cannot start before a running run ends)
        assert "GPUs (NVIDIA-A100-SXM4-80GB) free up on gpu-a100-" in eta["waits_for"]
        assert "after gpu-features-" in eta["waits_for"]
    first = min(waiting, key=lambda w: w["eta"]["position"])
    last = max(waiting, key=lambda w: w["eta"]["position"])
    assert first["eta"]["eta"] <= last["eta"]["eta"]

    # describe and list carry the same estimate
    detail = c.get(f"/api/v1/runs/{first['run']}").json()
    assert detail["eta"]["position"] == first["eta"]["position"]
    listed = {row["id"]: row for row in c.get("/api/v1/runs", params={"job": "gpu-features"}).json()}
    assert listed[first["run"]]["eta"]["eta"] is not None
    assert all(listed[rid]["eta"] is None for rid in ids if listed[rid]["state"] == "Running")

    # the queue's next ETA: the earliest among its waiting runs on the board (no other queue has any)
    board = {row["run"]: row for row in c.get("/api/v1/eta").json()["runs"]}
    queues = {q["name"]: q for q in c.get("/api/v1/queues").json()}
    still = {run["id"] for run in c.get("/api/v1/runs", params={"job": "gpu-features"}).json()
             if run["state"] in ("Pending", "Submitted", "Admitted")}
    soonest = min(board[rid]["eta"] for rid in still if rid in board)
    assert abs(queues["ml.training"]["next_eta"] - soonest) < 2.0  # (a board refreshed between the two reads)
    assert all(q["next_eta"] is None for name, q in queues.items() if name != "ml.training"), queues

    # run --dry-run: behind the waiting runs, and nothing is created
    before = len(c.get("/api/v1/runs", params={"job": "gpu-features"}).json())
    dry = c.get("/api/v1/jobs/gpu-features/whatif").json()
    assert dry["starts_now"] is False and dry["eta"] is not None and dry["eta"] >= last["eta"]["eta_low"]
    assert len(dry["behind"]) == len(waiting)
    assert "free up on gpu-a100-" in dry["waits_for"]
    # whatif on a new spec: a CPU-only job starts now, on a CPU node
    small = ("apiVersion: bigk.io/v1\nkind: SparkJob\nmetadata: {name: tiny-report}\nspec:\n  type: Python\n"
             "  image: bigk/spark-apps:0.1\n  mainApplicationFile: local:///opt/app.py\n"
             "  executor: {cores: 1, memory: 1g, instances: 1}\n")
    import yaml

    now_answer = c.post("/api/v1/whatif", json=yaml.safe_load(small)).json()
    assert now_answer["starts_now"] is True and now_answer["placement"]
    assert now_answer["waits_for"].startswith("would start now on ")
    assert now_answer["known_job"] is False
    assert len(c.get("/api/v1/runs", params={"job": "gpu-features"}).json()) == before
    assert c.get("/api/v1/runs", params={"job": "tiny-report"}).json() == []
    bad = c.post("/api/v1/whatif", json={"kind": "SparkJob", "metadata": {"name": "x"}})
    assert bad.status_code == 400 and "not a valid SparkJob" in bad.json()["detail"]

    # the CLI shows it where people look
    monkeypatch.setenv("BIGK_SERVER", r.url)
    monkeypatch.setenv("BIGK_TOKEN", r.token)
    code, out, err = run_main(("explain", first["run"]), monkeypatch, capsys)
    assert code == 0, err
    assert f"position {first['eta']['position']} of {len(waiting)}" in out
    assert "in queue ml.training" in out and "ETA" in out and "p10" in out and "p90" in out
    assert "after gpu-features-" in out
    code, out, err = run_main(("get", "runs"), monkeypatch, capsys)
    assert code == 0, err
    assert "ETA" in out.splitlines()[0]
    code, out, err = run_main(("get", "queues"), monkeypatch, capsys)
    assert code == 0, err
    assert "NEXT ETA" in out.splitlines()[0]
    training = next(line for line in out.splitlines()[1:] if "training" in line)
    assert training.rstrip().endswith(("s", "m", "now"))  # "in 12s", "in 1m" or "now": its first run's ETA
    code, out, err = run_main(("run", "gpu-features", "--dry-run"), monkeypatch, capsys)
    assert code == 0, err
    assert "would wait" in out and "nothing was created" in out
    spec_file = tmp_path / "tiny.yaml"
    spec_file.write_text(small)
    code, out, err = run_main(("whatif", str(spec_file)), monkeypatch, capsys)
    assert code == 0, err
    assert "would start now on " in out and "nothing was created" in out
    assert len(c.get("/api/v1/runs", params={"job": "gpu-features"}).json()) == before

    # the waiting runs start; their first estimates are scored and exported
    inside_before = sum(metrics.REGISTRY.get_sample_value("bigk_eta_starts_total", {"queue": "ml.training",
                                                                                    "inside": v}) or 0.0
                        for v in ("true", "false"))
    started = [rid for rid in ids if rid not in {w["run"] for w in waiting}]
    for rid in started:  # their GPUs come free now, not in 300 s
        assert c.post(f"/api/v1/runs/{rid}/cancel").status_code == 200
    wait_for(lambda: all(c.get(f"/api/v1/runs/{w['run']}").json()["state"] not in ("Pending", "Submitted")
                         for w in waiting), 90, "the waiting runs to start")
    wait_for(lambda: sum(metrics.REGISTRY.get_sample_value("bigk_eta_starts_total",
                                                           {"queue": "ml.training", "inside": v}) or 0.0
                         for v in ("true", "false")) >= inside_before + len(waiting), 30, "ETA outcomes counted")
    text = c.get("/metrics").text
    assert "bigk_eta_error_seconds_bucket" in text and "bigk_eta_compute_seconds_count" in text
