"""`bigk serve` on its embedded cluster stops with it: every active run is recorded Cancelled, at once."""

from __future__ import annotations

import time
from pathlib import Path

from bigk.service.app import Service
from bigk.service.config import ServiceConfig
from bigk.service.runstate import ACTIVE, RunState
from bigk.service.store import Store, default_database_url
from tests.service.conftest import ROOT, job_yaml


def test_stopping_cancels_every_active_run_of_the_embedded_cluster_in_one_go(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    for name in ("wide", "narrow"):
        (specs / f"{name}.yaml").write_text(job_yaml(name, instances=1, duration=3600, gpu=True))
    cfg = ServiceConfig(specs=[specs], state_dir=tmp_path / "state", cluster_file=ROOT / "jobspecs" / "cluster.yaml",
                        submit_mode="direct")
    service = Service(cfg).start()
    try:
        deadline = time.monotonic() + 30
        while not service.is_leader and time.monotonic() < deadline:
            time.sleep(0.1)
        assert service.is_leader
        actions = service.parts.actions
        made = [actions.run_now("wide" if i % 2 else "narrow").id for i in range(40)]
    finally:
        service.stop()
    store = Store(default_database_url(tmp_path / "state"))
    assert store.list_runs(states=ACTIVE) == []
    kept = {r.id: r for r in store.list_runs()}  # the history limits prune the rest (their history rows stay)
    assert kept and all(r.state is RunState.CANCELLED and "embedded emulated cluster" in r.reason
                        for r in kept.values())
    assert {h["run_id"] for h in store.history()} == set(made)
    assert sum(1 for e in store.events(kind="run") if e.message.endswith("embedded emulated cluster with it")) == 40
