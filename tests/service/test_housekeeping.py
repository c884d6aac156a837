"""Bounded state: submit/ template files of finished runs, events and history rows are pruned."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bigk.service import housekeeping
from bigk.service.runstate import RunState
from bigk.service.store import Store
from bigk.spec.naming import gang_name
from tests.service.conftest import Running, job_yaml, wait_for


def test_submit_files_of_runs_no_longer_active_are_removed(tmp_path: Path) -> None:
    work = tmp_path / "submit"
    work.mkdir()
    old = time.time() - 3600
    for gang in ("spark-done", "spark-live"):
        for role in ("driver", "executor"):
            path = work / f"{gang}-{role}-template.yaml"
            path.write_text("x")
            os.utime(path, (old, old))
    fresh = work / "spark-new-driver-template.yaml"
    fresh.write_text("x")  # a submission in progress: inside the grace period
    other = work / "notes.txt"
    other.write_text("x")
    assert housekeeping.sweep_submit_dir(work, {"spark-live"}, time.time()) == 2
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt", "spark-live-driver-template.yaml",
                                                      "spark-live-executor-template.yaml",
                                                      "spark-new-driver-template.yaml"]


def test_events_and_history_rows_are_bounded(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        now = 1_000_000.0
        for i in range(30):
            store.add_event("run", f"e{i}", now=now - (0 if i % 2 else 40 * 86400))
        for i in range(12):
            run = store.create_run("j", now=now + i, queue="default", namespace="default", trigger="manual")
            assert run is not None
            store.transition(run.id, RunState.SUBMITTED, now=now + i)
            store.transition(run.id, RunState.SUCCEEDED, now=now + i + 0.5)
        events, history = housekeeping.prune_rows(store.engine, now + 100, events_max=10, history_per_job=5)
        assert events == 20  # 15 beyond the retention window, then 5 beyond the newest 10
        assert [e.message for e in store.events(limit=100)] == [f"e{i}" for i in range(29, 10, -2)][:10]
        assert history == 7 and len(store.history("j")) == 5
        assert store.history("j")[0]["finished_at"] == now + 11.5  # the newest are kept
    finally:
        store.close()


def test_serve_leaves_no_template_files_of_finished_runs(tmp_path: Path, serve: Callable[..., Running],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(housekeeping, "EVERY_S", 0.2)
    monkeypatch.setattr(housekeeping, "SUBMIT_GRACE_S", 0.0)
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "q.yaml").write_text(job_yaml("q", instances=1, duration=2))
    r = serve(specs)
    run = r.service.run_now("q")
    work = tmp_path / "state" / "submit"
    wait_for(lambda: r.service.db().get_run(run.id).state == "Succeeded", 30, "the run to finish")
    gang = gang_name("q", run.id)
    wait_for(lambda: not any(p.name.startswith(gang) for p in work.iterdir()), 10, "its template files removed")
