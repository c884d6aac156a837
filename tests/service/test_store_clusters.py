"""The store's cluster fields (#18): added to a database made by an older bigk, and the Unknown state's moves."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bigk.service.runstate import InvalidTransition, RunState
from bigk.service.store import Store


def test_an_older_database_gains_the_cluster_columns_and_keeps_its_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bigk.db'}"
    store = Store(url)
    run = store.create_run("etl", now=1.0)
    assert run is not None
    store.close()
    db = sqlite3.connect(tmp_path / "bigk.db")  # as an older bigk left it: without the columns
    for column in ("cluster", "dispatch_reason", "unknown_at"):
        db.execute(f"ALTER TABLE bigk_runs DROP COLUMN {column}")
    db.commit()
    db.close()
    store = Store(url)
    old = store.get_run(run.id)
    assert (old.job, old.cluster, old.dispatch_reason, old.unknown_at) == ("etl", "", "", None)
    store.update_run(run.id, cluster="onprem", dispatch_reason="onprem: fits now")
    assert store.get_run(run.id).cluster == "onprem"
    store.close()


def test_unknown_keeps_first_timestamps_and_pending_again_clears_the_submission(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'bigk.db'}")
    run = store.create_run("etl", now=1.0)
    assert run is not None
    store.update_run(run.id, cluster="cloud")
    store.transition(run.id, RunState.SUBMITTED, now=2.0, driver_pod="etl-driver")
    lost = store.transition(run.id, RunState.UNKNOWN, now=3.0)
    assert (lost.state, lost.unknown_at, lost.submitted_at) == (RunState.UNKNOWN, 3.0, 2.0)
    again = store.transition(run.id, RunState.PENDING, now=9.0, cluster="", driver_pod="")
    assert (again.created_at, again.submitted_at, again.cluster, again.driver_pod) == (1.0, None, "", "")
    store.transition(run.id, RunState.SUBMITTED, now=10.0)
    store.transition(run.id, RunState.UNKNOWN, now=11.0)
    back = store.transition(run.id, RunState.SUBMITTED, now=12.0)
    assert back.submitted_at == 10.0  # back from Unknown: its first submission time stays
    store.transition(run.id, RunState.SUCCEEDED, now=13.0)
    with pytest.raises(InvalidTransition):
        store.transition(run.id, RunState.UNKNOWN, now=14.0)
    store.close()
