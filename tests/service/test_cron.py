"""Cron on its persistent job store: fire times survive restarts, late fires obey the deadline, once each."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from bigk.service.cron import Cron
from bigk.service.store import Store, default_database_url


def _spec(name: str, grace: int | None = None) -> Any:
    schedule = SimpleNamespace(cron="* * * * *", timeZone="UTC", startingDeadlineSeconds=grace, suspend=False)
    return SimpleNamespace(metadata=SimpleNamespace(name=name), spec=SimpleNamespace(schedule=schedule))


class Recorder:
    def __init__(self) -> None:
        self.fired: list[tuple[str, float]] = []
        self.missed: list[tuple[str, float]] = []
        self.event = threading.Event()

    def fire(self, job: str, at: float) -> None:
        self.fired.append((job, at))
        self.event.set()

    def miss(self, job: str, at: float) -> None:
        self.missed.append((job, at))
        self.event.set()


def _every(step: int) -> Any:
    return lambda spec: CronTrigger(second=f"*/{step}", timezone="UTC")


def _cron(store: Store, rec: Recorder, step: int = 2) -> Cron:
    cron = Cron(store.engine, fire=rec.fire, on_missed=rec.miss, trigger_for=_every(step))
    cron.start_paused()
    return cron


def test_fires_with_the_scheduled_time(tmp_path: Path) -> None:
    store = Store(default_database_url(tmp_path))
    rec = Recorder()
    cron = _cron(store, rec)
    cron.sync({"a": _spec("a")}, {})
    cron.resume()
    assert rec.event.wait(5)
    cron.shutdown()
    job, at = rec.fired[0]
    assert job == "a" and at == int(at) and int(at) % 2 == 0  # the trigger's own fire time, not "now"


def test_a_fire_missed_while_down_runs_once_within_grace(tmp_path: Path) -> None:
    store = Store(default_database_url(tmp_path))
    rec = Recorder()
    cron = _cron(store, rec, step=2)
    cron.sync({"a": _spec("a", grace=30)}, {})
    next_fire = cron.next_fire("a")
    cron.shutdown()  # "down" before the first fire; the stored next fire time stays
    assert next_fire is not None
    time.sleep(max(0.0, next_fire - time.time()) + 2.5)  # at least one (usually two) fire times pass
    rec2 = Recorder()
    cron2 = _cron(Store(default_database_url(tmp_path)), rec2, step=2)
    cron2.sync({"a": _spec("a", grace=30)}, {})
    assert cron2.next_fire("a") == next_fire  # restart kept the missed time instead of resetting the clock
    cron2.resume()
    assert rec2.event.wait(3)
    time.sleep(0.3)
    cron2.shutdown()
    # Two fire times passed while down; coalescing runs the latest one, once, and reports no miss.
    assert [t for _, t in rec2.fired] == [next_fire + 2] and rec2.missed == []


def test_a_fire_missed_beyond_the_deadline_is_reported_not_run(tmp_path: Path) -> None:
    store = Store(default_database_url(tmp_path))
    rec = Recorder()
    cron = _cron(store, rec, step=5)
    cron.sync({"a": _spec("a", grace=1)}, {})
    next_fire = cron.next_fire("a")
    cron.shutdown()
    assert next_fire is not None
    time.sleep(max(0.0, next_fire - time.time()) + 2.2)  # the last missed time is 2.2 s late, grace is 1 s
    rec2 = Recorder()
    cron2 = _cron(Store(default_database_url(tmp_path)), rec2, step=5)
    cron2.sync({"a": _spec("a", grace=1)}, {})
    cron2.resume()
    assert rec2.event.wait(3)
    cron2.shutdown()
    assert rec2.missed and rec2.missed[0][1] == next_fire
    assert all(t > next_fire for _, t in rec2.fired)


def test_suspended_job_does_not_fire_and_resume_restarts_it(tmp_path: Path) -> None:
    store = Store(default_database_url(tmp_path))
    rec = Recorder()
    cron = _cron(store, rec, step=1)
    cron.sync({"a": _spec("a")}, {"a": True})
    cron.resume()
    assert cron.next_fire("a") is None
    assert not rec.event.wait(1.5)
    cron.sync({"a": _spec("a")}, {"a": False})
    assert rec.event.wait(3)
    cron.shutdown()


def test_removed_jobs_leave_the_store(tmp_path: Path) -> None:
    store = Store(default_database_url(tmp_path))
    cron = _cron(store, Recorder())
    cron.sync({"a": _spec("a"), "b": _spec("b")}, {})
    cron.sync({"b": _spec("b")}, {})
    assert cron.next_fire("a") is None and cron.next_fire("b") is not None
    cron.shutdown()


def test_fire_times_between_lists_coalesced_times() -> None:
    rec = Recorder()
    store = Store("sqlite://")
    cron = Cron(store.engine, fire=rec.fire, on_missed=rec.miss, trigger_for=_every(10))
    assert cron.fire_times_between(_spec("a"), 100.0, 140.0) == [110.0, 120.0, 130.0, 140.0]
