"""Cron: APScheduler 3 on a persistent SQLAlchemy job store fires scheduled runs.

Why a persistent store: after a restart APScheduler finds each job's stored next
fire time in the past and applies the job's rules — `coalesce=True` (one run for
many missed times) and `misfire_grace_time = startingDeadlineSeconds` (fire if
still within the deadline, else record it as missed). A stored job is only
replaced when its trigger changes, so a restart never resets the clock and loses
a missed fire time.

APScheduler does not tell a job function which fire time it runs for; bigk needs
it as the run's idempotency key. `FireTimeExecutor` passes it through.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.base import BaseExecutor, run_job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

EXECUTOR = "bigk-fire"
JOBS_TABLE = "bigk_cron_jobs"

FireFn = Callable[[str, float], None]  # (job name, scheduled fire time as unix seconds)
TriggerFactory = Callable[[Any], BaseTrigger]  # JobSpec -> trigger


def scheduled_placeholder(job_name: str, **_: Any) -> None:
    """The textual job reference stored in the job store; `FireTimeExecutor` runs `Cron.fire` instead."""
    raise RuntimeError(f"job {job_name} must run through FireTimeExecutor")


def default_trigger(spec: Any) -> BaseTrigger:
    """Standard cron (0 = Sunday) in the job's time zone."""
    from bigk.spec.cron import to_trigger

    schedule = spec.spec.schedule
    return to_trigger(schedule.cron, schedule.timeZone)


class _FireCall:
    """What `run_job` needs of a job, with the fire time bound into the call."""

    def __init__(self, job: Any, fire: FireFn, run_time: datetime) -> None:
        self.id = job.id
        self.misfire_grace_time = job.misfire_grace_time
        self.func = fire
        self.args = (job.id, run_time.timestamp())
        self.kwargs: dict[str, Any] = {}

    def __str__(self) -> str:
        return f"cron {self.id}"


class FireTimeExecutor(BaseExecutor):
    """A thread-pool executor that calls `fire(job_name, fire_time)` for the (coalesced) fire time."""

    def __init__(self, fire: FireFn, max_workers: int = 4) -> None:
        super().__init__()
        self._fire = fire
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="bigk-cron")

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        call = _FireCall(job, self._fire, run_times[-1])

        def done(future: Any) -> None:
            exc = future.exception()
            if exc is not None:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, future.result())

        self._pool.submit(run_job, call, job._jobstore_alias, run_times[-1:], self._logger.name).add_done_callback(done)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait)


class Cron:
    """Keeps APScheduler's jobs in step with the catalog and the suspend state."""

    def __init__(self, engine: Engine, fire: FireFn, on_missed: FireFn,
                 trigger_for: TriggerFactory = default_trigger) -> None:
        self._trigger_for = trigger_for
        self._on_missed = on_missed
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE)},
            executors={EXECUTOR: FireTimeExecutor(fire)},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone="UTC",
        )
        self.scheduler.add_listener(self._missed, EVENT_JOB_MISSED)

    def start_paused(self) -> None:
        """Start without firing, so `sync` can run before stored missed fire times are processed."""
        self.scheduler.start(paused=True)

    def resume(self) -> None:
        if self.scheduler.running:
            self.scheduler.resume()

    def pause(self) -> None:
        if self.scheduler.running:
            self.scheduler.pause()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)

    def _missed(self, event: JobExecutionEvent) -> None:
        self._on_missed(event.job_id, event.scheduled_run_time.timestamp())

    def sync(self, specs: Mapping[str, Any], suspended: Mapping[str, bool]) -> None:
        """Make the stored cron jobs match `specs` (name -> JobSpec); `suspended` = effective flag per job."""
        wanted = {name: spec for name, spec in specs.items() if spec.spec.schedule is not None}
        for job in self.scheduler.get_jobs():
            if job.id not in wanted:
                self.scheduler.remove_job(job.id)
                log.info("event=cron_removed job=%s", job.id)
        for name, spec in wanted.items():
            try:
                self._sync_one(name, spec, suspended.get(name, False))
            except Exception as exc:  # one bad schedule must not stop the others
                log.error("event=cron_sync_failed job=%s error=%r", name, str(exc))

    def _sync_one(self, name: str, spec: Any, suspended: bool) -> None:
        schedule = spec.spec.schedule
        trigger = self._trigger_for(spec)
        key = repr(trigger)
        grace = schedule.startingDeadlineSeconds  # None: no deadline, a late fire still runs
        existing = self.scheduler.get_job(name)
        if existing is None or existing.kwargs.get("key") != key:
            self.scheduler.add_job(scheduled_placeholder, trigger, id=name, name=name, args=[name],
                                   kwargs={"key": key}, replace_existing=True, misfire_grace_time=grace,
                                   coalesce=True, max_instances=1, executor=EXECUTOR)
            existing = self.scheduler.get_job(name)
            log.info("event=cron_scheduled job=%s trigger=%r next=%s", name, str(trigger),
                     existing.next_run_time.isoformat() if existing and existing.next_run_time else "-")
        elif existing.misfire_grace_time != grace:
            self.scheduler.modify_job(name, misfire_grace_time=grace)
        if existing is None:
            return
        if suspended and existing.next_run_time is not None:
            self.scheduler.pause_job(name)
            log.info("event=cron_suspended job=%s", name)
        elif not suspended and existing.next_run_time is None:
            self.scheduler.resume_job(name)
            log.info("event=cron_resumed job=%s", name)

    def next_fire(self, name: str) -> float | None:
        job = self.scheduler.get_job(name)
        if job is None or job.next_run_time is None:
            return None
        return float(job.next_run_time.timestamp())

    def fire_times_between(self, spec: Any, after: float, until: float, limit: int = 1000) -> list[float]:
        """Fire times of `spec` in (after, until]: used to report fires coalesced away."""
        trigger = self._trigger_for(spec)
        out: list[float] = []
        cursor = datetime.fromtimestamp(after, UTC) + timedelta(microseconds=1)
        while len(out) < limit:
            nxt = trigger.get_next_fire_time(None, cursor)
            if nxt is None or nxt.timestamp() > until:
                break
            out.append(nxt.timestamp())
            cursor = nxt + timedelta(microseconds=1)
        return out
