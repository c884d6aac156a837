"""The firing policy on its own (no cluster, no HTTP): suspend, Allow/Forbid/Replace, duplicates, coalescing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bigk.service.catalog import Catalog
from bigk.service.cron import Cron
from bigk.service.firing import Firing, iso
from bigk.service.guards import FitGuard
from bigk.service.runstate import RunState
from bigk.service.store import RunRecord, Store, default_database_url
from tests.service.conftest import every_seconds, job_yaml

NOW = 1_000_000.0


class Runs:
    """What the firing policy asks of the run life cycle: cancel (for Replace)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.cancelled: list[tuple[str, str]] = []

    def cancel(self, run_id: str, reason: str = "") -> RunRecord:
        self.cancelled.append((run_id, reason))
        return self.store.transition(run_id, RunState.CANCELLED, now=NOW, reason=reason)


@dataclass
class Setup:
    firing: Firing
    store: Store
    runs: Runs
    woken: list[int]

    def events(self, kind: str) -> list[str]:
        return [e.message for e in self.store.events(job="j", kind=kind)]


@pytest.fixture()
def make(tmp_path: Path) -> Iterator[Callable[..., Setup]]:
    stores: list[Store] = []

    def build(schedule_extra: str = "") -> Setup:
        specs = tmp_path / f"specs{len(stores)}"
        specs.mkdir()
        (specs / "j.yaml").write_text(job_yaml("j", cron="* * * * *", schedule_extra=schedule_extra))
        state = tmp_path / f"state{len(stores)}"
        state.mkdir()
        store = Store(default_database_url(state))
        stores.append(store)
        catalog = Catalog([specs], lambda: NOW)
        catalog.reload(force=True)
        runs = Runs(store)
        woken: list[int] = []
        firing = Firing(store, catalog, FitGuard(lambda: []), runs,  # type: ignore[arg-type]
                        lambda: NOW, wake=lambda: woken.append(1))
        firing.attach(Cron(store.engine, fire=firing.fire, on_missed=firing.missed, trigger_for=every_seconds(10)))
        return Setup(firing, store, runs, woken)

    yield build
    for store in stores:
        store.close()


def test_forbid_skips_a_fire_while_a_run_is_active(make: Callable[..., Setup]) -> None:
    s = make("concurrencyPolicy: Forbid\nmaxPendingRuns: 5\n")
    s.firing.fire("j", NOW - 20)
    first = s.store.active_runs("j")
    assert len(first) == 1 and first[0].fire_time == NOW - 20 and s.woken == [1]
    s.firing.fire("j", NOW - 10)
    assert [r.id for r in s.store.active_runs("j")] == [first[0].id]
    assert s.events("skipped") == [f"fire at {iso(NOW - 10)} skipped: concurrencyPolicy Forbid and run "
                                   f"{first[0].id} is active"]


def test_replace_cancels_the_active_run_before_creating_the_next(make: Callable[..., Setup]) -> None:
    s = make("concurrencyPolicy: Replace\n")
    s.firing.fire("j", NOW - 20)
    old = s.store.active_runs("j")[0]
    s.firing.fire("j", NOW - 10)
    assert s.runs.cancelled == [(old.id, f"replaced by the fire at {iso(NOW - 10)} (concurrencyPolicy Replace)")]
    active = s.store.active_runs("j")
    assert len(active) == 1 and active[0].id != old.id and active[0].fire_time == NOW - 10


def test_allow_stops_at_max_pending_runs_and_a_duplicate_fire_makes_no_run(make: Callable[..., Setup]) -> None:
    s = make()  # Allow, maxPendingRuns 1
    s.firing.fire("j", NOW - 20)
    s.firing.fire("j", NOW - 20)  # the same fire time again (a restart, a second executor)
    assert len(s.store.active_runs("j")) == 1
    s.firing.fire("j", NOW - 10)
    assert len(s.store.active_runs("j")) == 1
    assert "schedule.maxPendingRuns is 1" in s.events("skipped")[0]


def test_suspension_the_operator_wins_over_the_spec(make: Callable[..., Setup]) -> None:
    s = make("suspend: true\n")
    assert s.firing.suspended("j")
    s.firing.fire("j", NOW - 10)
    assert s.store.active_runs("j") == [] and s.events("skipped") == [
        f"fire at {iso(NOW - 10)} skipped: job is suspended"]
    s.firing.set_suspended("j", False)  # the operator's resume beats the spec's suspend
    assert not s.firing.suspended("j")
    s.firing.fire("j", NOW)
    assert len(s.store.active_runs("j")) == 1
    s.firing.clear_suspended("j")  # the spec decides again
    assert s.firing.suspended("j")


def test_fire_times_skipped_since_the_last_fire_are_reported_as_coalesced(make: Callable[..., Setup]) -> None:
    s = make()
    s.firing.fire("j", NOW - 40)
    s.store.transition(s.store.active_runs("j")[0].id, RunState.CANCELLED, now=NOW)
    s.firing.fire("j", NOW)  # every 10 s: NOW-30, NOW-20 and NOW-10 were never fired
    assert s.events("coalesced") == [f"3 missed fire time(s) coalesced into the fire at {iso(NOW)}"]
    assert len(s.store.active_runs("j")) == 1
