"""What a cron fire does: suspend rules, concurrencyPolicy (Allow, Forbid, Replace), coalescing, missed fires.

`bigk.service.cron` decides *when* a job fires (APScheduler on a persistent store);
`Firing` decides *what* a fire does. A fire is recorded once per (job, fire time):
the store's fire mark is the idempotency key, so a fire delivered twice (a restart,
two executors) creates one run. Fire times that cron coalesced into this one are
reported as one `coalesced` event. A suspended job, a job that can never fit, or one
with `schedule.maxPendingRuns` runs already waiting gets a `skipped` event instead of
a run; Forbid skips while a run is active, Replace cancels the active runs first.

Suspension: the operator's suspend/resume (stored) wins over the spec's
`schedule.suspend`; `sync_cron` pauses and resumes the cron jobs to match.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from bigk import metrics
from bigk.errors import BigkError
from bigk.service.catalog import Catalog, CatalogView
from bigk.service.cron import Cron
from bigk.service.guards import FitGuard, fire_refusal
from bigk.service.lifecycle import RunManager
from bigk.service.store import Store

log = logging.getLogger(__name__)


class Firing:
    """Cron's fire and missed-fire callbacks, and the effective suspend flag of every job."""

    def __init__(self, store: Store, catalog: Catalog, fit: FitGuard, runs: RunManager,
                 clock: Callable[[], float], wake: Callable[[], None]) -> None:
        self.store = store
        self.catalog = catalog
        self.fit = fit
        self.runs = runs
        self.clock = clock
        self.wake = wake  # a run was created: the run ticker should look at once
        self.cron: Cron | None = None  # attached once built (cron calls `fire`, so it comes second)
        self._fire_lock = threading.Lock()
        self._sync_lock = threading.Lock()

    def attach(self, cron: Cron) -> None:
        self.cron = cron

    # ---- suspension ----------------------------------------------------------------------------
    def suspended(self, job: str) -> bool:
        """The effective flag: an operator's suspend/resume wins over the spec's `schedule.suspend`."""
        override = self.store.suspended_overrides().get(job)
        if override is not None:
            return override
        loaded = self.catalog.job(job)
        schedule = loaded.spec.spec.schedule if loaded is not None else None
        return bool(schedule is not None and schedule.suspend)

    def set_suspended(self, name: str, suspended: bool) -> None:
        """The operator's suspend (or resume) of a scheduled job."""
        if self.catalog.loaded(name).spec.spec.schedule is None:
            raise BigkError(f"job {name} has no schedule, so there is nothing to {'suspend' if suspended else 'resume'}"
                            f" (it runs only with `bigk run {name}`)")
        now = self.clock()
        self.store.set_suspended(name, suspended, now=now)
        self.store.add_event("suspend" if suspended else "resume", "by operator", now=now, job=name)
        log.info("event=job_%s job=%s", "suspended" if suspended else "resumed", name)
        self.sync_cron()

    def clear_suspended(self, name: str) -> None:
        """Forget the operator's suspend/resume, so the spec's own `schedule.suspend` decides again."""
        self.catalog.loaded(name)
        now = self.clock()
        self.store.clear_override(name)
        effective = "suspended" if self.suspended(name) else "not suspended"
        self.store.add_event("resume", f"by operator: override cleared, the spec decides ({effective})", now=now,
                             job=name)
        log.info("event=job_suspend_cleared job=%s effective=%s", name, effective.replace(" ", "_"))
        self.sync_cron()

    # ---- keeping cron in step -------------------------------------------------------------------
    def catalog_changed(self, view: CatalogView) -> None:
        now = self.clock()
        metrics.declare_scheduled_jobs(n for n, j in view.jobs.items() if j.spec.spec.schedule is not None)
        for problem in view.problems:
            self.store.add_event("spec_problem", str(problem), now=now)
        self.sync_cron(view)

    def sync_cron(self, view: CatalogView | None = None) -> None:
        view = view or self.catalog.view
        with self._sync_lock:
            if self.cron is None:
                return
            specs = {name: loaded.spec for name, loaded in view.jobs.items()}
            self.cron.sync(specs, {name: self.suspended(name) for name in specs})

    def next_fire(self, name: str) -> float | None:
        return self.cron.next_fire(name) if self.cron is not None else None

    def fire_times(self, spec: Any, after: float, until: float, limit: int = 1000) -> list[float]:
        """Fire times of `spec` in (after, until] (none before cron is attached)."""
        return self.cron.fire_times_between(spec, after, until, limit=limit) if self.cron is not None else []

    # ---- cron's callbacks -----------------------------------------------------------------------
    def fire(self, job: str, fire_time: float) -> None:
        """Called by cron for one (coalesced) fire time; applies suspend and concurrencyPolicy."""
        store = self.store
        with self._fire_lock:
            now = self.clock()
            loaded = self.catalog.job(job)
            if loaded is None or loaded.spec.spec.schedule is None:
                log.warning("event=fire_ignored job=%s reason=no_schedule", job)
                return
            spec = loaded.spec
            schedule = spec.spec.schedule
            last = store.last_fire(job)
            store.mark_fire(job, fire_time, now=now)
            if last is not None:
                skipped = [t for t in self.fire_times(spec, last, fire_time) if t < fire_time]
                if skipped:
                    msg = f"{len(skipped)} missed fire time(s) coalesced into the fire at {iso(fire_time)}"
                    store.add_event("coalesced", msg, now=now, job=job)
                    log.warning("event=fires_coalesced job=%s count=%d fire_time=%s", job, len(skipped),
                                iso(fire_time))
            if store.fire_recorded(job, fire_time):
                log.info("event=fire_duplicate job=%s fire_time=%s", job, iso(fire_time))
                return
            if self.suspended(job):
                store.add_event("skipped", f"fire at {iso(fire_time)} skipped: job is suspended", now=now, job=job)
                return
            active = store.active_runs(job)
            policy = schedule.concurrencyPolicy
            refused = fire_refusal(self.fit, loaded, active if policy == "Allow" else ())
            if refused:  # never fits, or enough runs already wait to start
                store.add_event("skipped", f"fire at {iso(fire_time)} skipped: {refused}", now=now, job=job)
                log.info("event=fire_skipped job=%s fire_time=%s reason=%r", job, iso(fire_time), refused)
                return
            if policy == "Forbid" and active:
                msg = f"fire at {iso(fire_time)} skipped: concurrencyPolicy Forbid and run {active[0].id} is active"
                store.add_event("skipped", msg, now=now, job=job, run_id=active[0].id)
                log.info("event=fire_skipped job=%s fire_time=%s reason=forbid active=%s", job, iso(fire_time),
                         active[0].id)
                return
            if policy == "Replace":  # cancel first: never two active runs of a Replace job
                for old in active:
                    self.runs.cancel(old.id, reason=f"replaced by the fire at {iso(fire_time)} "
                                                    "(concurrencyPolicy Replace)")
            run = store.create_run(job, now=now, queue=spec.spec.queue, namespace=spec.metadata.namespace,
                                   trigger="schedule", fire_time=fire_time)
            if run is None:
                return
            lateness = now - fire_time
            store.add_event("fired", f"scheduled fire at {iso(fire_time)} (late by {lateness:.1f}s)", now=now,
                            job=job, run_id=run.id)
            log.info("event=run_fired job=%s run=%s fire_time=%s late_s=%.1f", job, run.id, iso(fire_time), lateness)
        self.wake()

    def missed(self, job: str, fire_time: float) -> None:
        """Called by cron for a fire time beyond `startingDeadlineSeconds`."""
        now = self.clock()
        self.store.mark_fire(job, fire_time, now=now)
        msg = f"fire at {iso(fire_time)} missed: {now - fire_time:.0f}s late, beyond startingDeadlineSeconds"
        self.store.add_event("missed", msg, now=now, job=job)
        metrics.record_run_missed(job)
        log.warning("event=fire_missed job=%s fire_time=%s late_s=%.0f", job, iso(fire_time), now - fire_time)


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
