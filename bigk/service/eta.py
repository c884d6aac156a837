"""Start-time estimates for every waiting run of `bigk serve`, and what-if answers for a spec.

A background thread (`bigk-eta`) watches for relevant change (the scheduler
cache's generation, the set of active runs and their states) and then runs
`bigk.scheduler.forecast` on a copy of the cluster: the scheduling loop's
informer cache turned into a snapshot exactly as a cycle builds it, a fresh
`Scheduler` with the same policy, running runs ending after their expected
remaining time, and cron fires of scheduled jobs arriving on their times. It
never runs on the scheduling thread and never reads the scheduler's own state:
the informer cache gives it a short locked copy, and the queue order comes from
the loop's published view (`SchedulerLoop.view()`). It rests at least twice as
long as its last computation took (at most a third of one core), so it cannot
starve the loop. Readers get the last published board.

Durations come from the store's run history of each job (driver start to end,
p10/p50/p90 of the last runs once there are `MIN_SAMPLES`), else from the
spec's `expectedDurationSeconds` (p10..p90 = 0.8x..1.5x), else `DEFAULT_S`. A
running run's remaining time is taken from the history runs that lasted longer
than it has run so far (the conditional distribution).

Accuracy on a live cluster: the first estimate each run got is kept; when the
run starts, the error and whether the start fell inside the range are exported
(`bigk_eta_*` metrics), and the forecast's own predicted wait and the actual one
go to a `Calibrator` (`bigk.scheduler.calibration`), which corrects the
estimates shown from then on (point and range) by the errors of earlier ones at
a similar horizon. It lives in memory: after a restart the service needs
`min_records` starts again before it calibrates.

With several clusters (`bigk.service.eta_boards`) there is one `EtaService` per cluster, over that
cluster's scheduling loop: it forecasts only the runs recorded on that cluster (`cluster`), and the
cron fires only of jobs that may go nowhere else (`pinned`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from bigk import metrics
from bigk.cluster.model import Gang, Pod, Role
from bigk.cluster.state import DEFAULT_STALE_AFTER_S
from bigk.scheduler.calibration import Calibrator
from bigk.scheduler.core import Scheduler
from bigk.scheduler.forecast import (
    Arrival,
    Estimate,
    ForecastInput,
    Spread,
    duration_spread,
    forecast,
    remaining_spread,
    runs_for,
    waiting_units,
)
from bigk.scheduler.types import Snapshot
from bigk.service.catalog import Catalog
from bigk.service.firing import Firing
from bigk.service.runstate import RunState
from bigk.service.store import RunRecord, Store
from bigk.spec.gang import gang_for, node_selector_for, pod_request, tolerations_for
from bigk.spec.naming import driver_pod_name, gang_name

if TYPE_CHECKING:
    from bigk.kube.loop import SchedulerLoop

log = logging.getLogger(__name__)

HISTORY_RUNS = 200
POOLED_RUNS = 1000
DEFAULT_S = 600.0
FIRES_HORIZON_S = 24 * 3600.0
FIRES_PER_JOB = 24
POLL_S = 0.5
MAX_AGE_S = 30.0
REST_FACTOR = 2.0  # rest this many times the last computation's length before the next
START_TOLERANCE_S = 2.0  # a start this close outside the range counts as inside (cycle and tick granularity)
WAITING = (RunState.PENDING, RunState.SUBMITTED)


@dataclass(frozen=True)
class RunEta:
    """A waiting run's place in line and estimated start (unix seconds), as the API shows it."""

    run: str
    job: str
    gang: str
    queue: str
    position: int
    waiting: int  # runs waiting in all
    queue_position: int
    queue_waiting: int
    eta: float | None
    eta_low: float | None
    eta_high: float | None
    waits_for: str
    computed_at: float
    placement: list[dict[str, Any]] = field(default_factory=list)
    preempts: list[str] = field(default_factory=list)
    forecast_eta: float | None = None  # the forecast's own start, before calibration
    calibrated: bool = False  # eta and range corrected by the errors of earlier estimates
    method: str = "cycle"  # "cycle": placed by the scheduler's cycles; "tail": beyond the exact run's budget

    def to_dict(self) -> dict[str, Any]:
        """The API's dict. Shallow: `asdict` deep-copied every placement row, most of a `get queue` call's time
        with a thousand runs waiting."""
        out = dict(self.__dict__)  # every field (a plain dataclass: no slots, no extra attributes)
        out["placement"] = [dict(p) for p in self.placement]
        out["preempts"] = list(self.preempts)
        return out


@dataclass
class Board:
    """The last published estimates."""

    computed_at: float = 0.0
    runs: dict[str, RunEta] = field(default_factory=dict)
    cpu_s: float = 0.0
    cycles: int = 0
    error: str = ""


class Durations:
    """Duration spreads of jobs from their history (cached per computation)."""

    def __init__(self, history: Callable[[str], list[dict[str, Any]]],
                 everything: Callable[[], list[dict[str, Any]]] = list) -> None:
        self._history = history
        self._all = everything
        self._samples: dict[str, np.ndarray] = {}
        self._pooled: np.ndarray | None = None
        self.running: dict[str, list[float]] = {}  # per job: how long its runs still running have run so far

    def pooled_running(self) -> list[float]:
        return [x for xs in self.running.values() for x in xs][-POOLED_RUNS:]

    def samples(self, job: str) -> np.ndarray:
        got = self._samples.get(job)
        if got is None:
            got = self._samples[job] = _durations(self._history(job))
        return got

    def pooled(self) -> np.ndarray:
        """Every job's recent durations: they stand in for a job with no history and no expected duration."""
        if self._pooled is None:
            self._pooled = _durations(self._all())
        return self._pooled

    def spread(self, job: str, expected: float | None) -> Spread:
        return duration_spread(self.samples(job), expected, DEFAULT_S, self.pooled(), self.running.get(job, []),
                               self.pooled_running())

    def remaining(self, job: str, expected: float | None, elapsed: float) -> Spread:
        return remaining_spread(self.samples(job), expected, DEFAULT_S, elapsed, self.pooled(),
                                self.running.get(job, []), self.pooled_running())


def _durations(rows: list[dict[str, Any]]) -> np.ndarray:
    """Driver start to end of finished runs (cancelled ones say nothing about how long a job runs)."""
    vals = [float(r["finished_at"]) - float(r["running_at"]) for r in rows
            if r.get("running_at") and r.get("finished_at") and r.get("state") != "Cancelled"]
    return np.array([v for v in vals if v >= 0.0], dtype=float)


def unit_for_spec(spec: Any, run_id: str, now: float) -> tuple[Gang, Pod]:
    """The gang and pending driver pod a run of `spec` would put in the queue."""
    gang = gang_for(spec, run_id)
    gang.created_at = now
    driver = Pod(driver_pod_name(spec.metadata.name, run_id), pod_request(spec, "driver"),
                 namespace=spec.metadata.namespace, priority=spec.spec.priority, queue=spec.spec.queue,
                 gang=gang.name, role=Role.DRIVER, node_selector=node_selector_for(spec, "driver"),
                 tolerations=[t.to_cluster() for t in tolerations_for(spec, "driver")],
                 preferred_pools=tuple(spec.spec.pools), created_at=now)
    return gang, driver


def run_gang(run: RunRecord) -> str:
    return run.spark_app_id or gang_name(run.job, run.id)


class EtaService:
    """Recomputes the board off the scheduling thread; answers what-if questions on demand."""

    def __init__(self, *, store: Store, catalog: Catalog, firing: Firing, loop: SchedulerLoop, policy: str,
                 reservation_ttl_s: float, clock: Callable[[], float], poll_s: float = POLL_S,
                 max_age_s: float = MAX_AGE_S, stale_after_s: float = DEFAULT_STALE_AFTER_S,
                 cluster: str | None = None, pinned: Callable[[Any], bool] | None = None,
                 report: Callable[[float, int], None] = metrics.observe_eta_computation) -> None:
        self.store = store
        # Several clusters: only the runs recorded on `cluster` are this board's (None: every run), and only the
        # cron fires of jobs `pinned` here (that may go to no other cluster) arrive in its forecast (None: all).
        self.cluster = cluster
        self.pinned = pinned
        self.report = report  # the recomputation's CPU time and waiting runs, for the metrics
        self.catalog = catalog
        self.firing = firing  # suspension and cron fire times
        self.loop = loop  # its informer cache (a locked copy) and its published view; never its scheduler
        self.policy = policy
        self.reservation_ttl_s = reservation_ttl_s
        self.stale_after_s = stale_after_s  # the live scheduler's: the forecast judges GPU readings as it does
        self.clock = clock
        self.poll_s = poll_s
        self.max_age_s = max_age_s
        self.board = Board()
        # run -> (at, eta, lo, hi, forecast's own eta) of the first estimate it got
        self._first: dict[str, tuple[float, float | None, float | None, float | None, float | None]] = {}
        self.calibrator = Calibrator()
        self._lock = threading.Lock()  # one forecast at a time (the thread, or a what-if request)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: object = None

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self) -> EtaService:
        name = "bigk-eta" if self.cluster is None else f"bigk-eta-{self.cluster}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def poke(self) -> None:
        """Something relevant changed: recompute soon."""
        self._seen = None
        self._wake.set()

    def for_run(self, run_id: str) -> RunEta | None:
        return self.board.runs.get(run_id)

    def _run(self) -> None:
        last = 0.0
        while not self._stop.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                mark = self._fingerprint()
            except Exception as exc:  # the store or cache is not ready yet
                log.debug("event=eta_fingerprint_failed error=%r", str(exc))
                continue
            if mark == self._seen and time.monotonic() - last < self.max_age_s:
                continue
            try:
                began = time.process_time()
                self.refresh()
                spent = time.process_time() - began
                last = time.monotonic()
                self._seen = mark
                self._stop.wait(max(self.poll_s, REST_FACTOR * spent))
            except Exception as exc:
                log.warning("event=eta_failed error=%r", str(exc)[:300])
                self.board.error = str(exc)[:300]
                self._stop.wait(5.0)

    def _active(self) -> list[RunRecord]:
        """The active runs this board forecasts: every one, or with several clusters those recorded on its own."""
        active = self.store.active_runs()
        return active if self.cluster is None else [r for r in active if r.cluster == self.cluster]

    def _fingerprint(self) -> object:
        runs = tuple((r.id, str(r.state)) for r in self._active())
        return (self.loop.cache.generation, runs, id(self.catalog.view))

    # ---- inputs ---------------------------------------------------------------------------------
    def _snapshot(self) -> Snapshot:
        loop = self.loop
        from bigk.kube.gangs import build_snapshot
        from bigk.kube.interpod import resolve_entries

        nodes = loop.storage.nodes(loop.cache.nodes())
        entries = resolve_entries(loop.storage.resolve(loop.cache.pod_entries()), nodes)
        return build_snapshot(nodes, entries, loop.queues)

    def _scheduler(self) -> Callable[[], Scheduler]:
        policy, ttl, stale = self.policy, self.reservation_ttl_s, self.stale_after_s
        return lambda: Scheduler(policy, reservation_ttl_s=ttl, stale_after_s=stale)

    def _durations(self) -> Durations:
        store = self.store
        return Durations(lambda job: store.history(job, limit=HISTORY_RUNS), lambda: store.history(limit=POOLED_RUNS))

    def _inputs(self, now: float) -> tuple[ForecastInput, dict[str, RunRecord]]:
        snap = self._snapshot()
        durations = self._durations()
        catalog = self.catalog
        inp = ForecastInput(Snapshot(snap.nodes, list(snap.pods), dict(snap.queues), dict(snap.gangs)), now,
                            draws="spread")
        everywhere = self.store.active_runs()
        active = everywhere if self.cluster is None else [r for r in everywhere if r.cluster == self.cluster]
        for run in everywhere:  # runs still going count in the duration estimates (as lasting at least this long)
            if run.state not in WAITING:
                since = run.running_at or run.admitted_at or run.submitted_at or run.created_at
                durations.running.setdefault(run.job, []).append(max(0.0, now - since))
        present = {p.gang for p in snap.pods if p.gang}
        listed = {p.key: p.gang for p in snap.pods}
        by_gang: dict[str, RunRecord] = {}
        for run in active:
            gang = run_gang(run)
            loaded = catalog.job(run.job)
            drawn: tuple[Gang, Pod] | None = None
            if gang not in present and loaded is not None:
                g, driver = unit_for_spec(loaded.spec, run.id, run.created_at)
                if driver.key in listed:  # listed before the run recorded its Spark app id: the cluster's gang is its
                    gang = listed[driver.key] or gang
                    if run.state in WAITING and gang not in inp.snapshot.gangs:  # its shape not known there yet:
                        g.name = gang  # the spec's (else the forecast would start the driver alone, "now")
                        inp.snapshot.gangs[gang] = g
                else:  # not handed to the cluster yet: drawn as it would be (never a second pod under one key)
                    drawn = g, driver
            by_gang[gang] = run
            expected = loaded.spec.spec.expectedDurationSeconds if loaded is not None else None
            if run.state in WAITING:
                inp.durations[gang] = durations.spread(run.job, expected)
                if drawn is not None:
                    g, driver = drawn
                    g.name = driver.gang = gang
                    if run.not_before and run.not_before > now:  # retry backoff: it joins the queue later
                        inp.arrivals.append(Arrival(run.not_before, gang, [driver], g, inp.durations[gang]))
                    else:
                        inp.snapshot.gangs[gang] = g
                        inp.snapshot.pods.append(driver)
            else:
                started = run.running_at or run.admitted_at or run.submitted_at or run.created_at
                inp.ends[gang] = durations.remaining(run.job, expected, max(0.0, now - started))
        self._fires(inp, durations, now)
        return inp, by_gang

    def _fires(self, inp: ForecastInput, durations: Durations, now: float) -> None:
        for name, loaded in self.catalog.view.jobs.items():
            schedule = loaded.spec.spec.schedule
            if schedule is None or self.firing.suspended(name):
                continue
            if self.pinned is not None and not self.pinned(loaded):  # it may go to another cluster: not counted
                continue
            try:
                times = self.firing.fire_times(loaded.spec, now, now + FIRES_HORIZON_S, limit=FIRES_PER_JOB)
            except Exception:
                continue
            spread = durations.spread(name, loaded.spec.spec.expectedDurationSeconds)
            for t in times:
                g, driver = unit_for_spec(loaded.spec, f"fire{int(t)}", t)
                inp.arrivals.append(Arrival(t, g.name, [driver], g, spread))

    # ---- the board ------------------------------------------------------------------------------
    def refresh(self) -> Board:
        """Recompute every waiting run's estimate and publish the board."""
        now = self.clock()
        began = time.process_time()
        with self._lock:
            inp, by_gang = self._inputs(now)
            fc = forecast(inp, self._scheduler(), runs=runs_for(inp.snapshot))
        order = self._live_order()
        runs = self._rows(fc.estimates, by_gang, order, now)
        cpu = time.process_time() - began
        self._score(by_gang, runs, now)
        self.board = Board(now, runs, cpu, fc.cycles)
        self.report(cpu, len(runs))
        return self.board

    def _live_order(self) -> list[str]:
        """The waiting gangs in the order of the scheduler's last cycle (its queue order)."""
        return list(self.loop.view().explanations)

    def _rows(self, estimates: dict[str, Estimate], by_gang: dict[str, RunRecord], order: list[str],
              now: float) -> dict[str, RunEta]:
        mine = {g: e for g, e in estimates.items() if g in by_gang and by_gang[g].state in WAITING}
        rank = {g: i for i, g in enumerate(order)}
        never = len(rank) + 1
        # Queue order: the scheduler's own (last cycle); runs it has not seen yet follow, by estimated position.
        line = sorted(mine, key=lambda g: (rank.get(g, never), mine[g].position))
        per_queue: dict[str, list[str]] = {}
        for g in line:
            per_queue.setdefault(mine[g].queue, []).append(g)
        out: dict[str, RunEta] = {}
        for i, g in enumerate(line, 1):
            e, run = mine[g], by_gang[g]
            peers = per_queue[e.queue]
            after = tuple(_run_name(u, by_gang) for u in e.after)
            shown = Estimate(**{**asdict(e), "after": after, "preempts": tuple(_run_name(u, by_gang)
                                                                            for u in e.preempts)})
            eta, low, high, calibrated = e.start, e.low, e.high, False
            if e.start is not None:
                adj = self.calibrator.adjust(now, e.start, e.low, e.high)
                eta, low, high, calibrated = adj.eta, adj.low, adj.high, adj.calibrated
            out[run.id] = RunEta(run.id, run.job, g, e.queue, i, len(line), peers.index(g) + 1, len(peers),
                                 eta, low, high, shown.waits_for(now), now,
                                 [{"node": n, "gpus": list(gp)} for n, gp in e.placement], list(shown.preempts),
                                 e.start, calibrated, e.method)
        return out

    def _score(self, by_gang: dict[str, RunRecord], rows: dict[str, RunEta], now: float) -> None:
        """Keep each run's first estimate; when the run has started, export how good that estimate was."""
        for row in rows.values():
            if row.run not in self._first:
                self._first[row.run] = (now, row.eta, row.eta_low, row.eta_high, row.forecast_eta)
                if row.forecast_eta is not None:
                    self.calibrator.open(row.run, now, row.forecast_eta - now)
        active = {r.id: r for r in by_gang.values()}
        for run_id in list(self._first):
            run = active.get(run_id)
            if run is not None and run.state in WAITING:
                continue
            at, eta, lo, hi, raw = self._first.pop(run_id)
            if run is None:
                found = self.store.find_run(run_id)
                if found is None:
                    self.calibrator.close(run_id, None)
                    continue
                run = found
            if self.cluster is not None and run.cluster != self.cluster:  # sent elsewhere since (a lost cluster)
                self.calibrator.close(run_id, None)
                continue
            started = run.admitted_at or run.running_at
            if started is None:
                self.calibrator.close(run_id, None)
                continue  # it ended without starting (cancelled, failed to submit)
            inside = (lo is not None and hi is not None and lo - START_TOLERANCE_S <= started
                      <= hi + START_TOLERANCE_S)
            metrics.observe_eta_outcome(run.queue, None if eta is None else abs(started - eta), inside,
                                        max(0.0, started - at))
            self.calibrator.close(run_id, started)

    def _calibrated(self, now: float, est: Estimate | None) -> dict[str, Any]:
        """A what-if answer's start and range, corrected as the board's are."""
        if est is None or est.start is None:
            return {"eta": None, "eta_low": None, "eta_high": None, "forecast_eta": None, "calibrated": False}
        adj = self.calibrator.adjust(now, est.start, est.low, est.high)
        return {"eta": adj.eta, "eta_low": adj.low, "eta_high": adj.high, "forecast_eta": est.start,
                "calibrated": adj.calibrated}

    # ---- what if ---------------------------------------------------------------------------------
    def whatif(self, spec: Any) -> dict[str, Any]:
        """When a run of `spec` would start if submitted now: where, behind whom, preempting what. Creates nothing."""
        now = self.clock()
        began = time.process_time()
        with self._lock:
            inp, by_gang = self._inputs(now)
            g, driver = unit_for_spec(spec, "whatif", now)
            inp.snapshot.gangs[g.name] = g
            inp.snapshot.pods.append(driver)
            loaded = self.catalog.job(spec.metadata.name)
            inp.durations[g.name] = self._durations().spread(spec.metadata.name, spec.spec.expectedDurationSeconds)
            fc = forecast(inp, self._scheduler(), targets=[g.name], runs=runs_for(inp.snapshot))
        est = fc.estimates.get(g.name)
        waiting = waiting_units(inp.snapshot)
        ahead = []
        if est is not None:
            others = forecast_order(fc.estimates, waiting, g.name, est)
            ahead = [_run_name(u, by_gang) for u in others]
        shown = est
        if est is not None:
            shown = Estimate(**{**asdict(est), "after": tuple(_run_name(u, by_gang) for u in est.after),
                                "preempts": tuple(_run_name(u, by_gang) for u in est.preempts)})
        out: dict[str, Any] = {
            "job": spec.metadata.name, "queue": spec.spec.queue, "priority": spec.spec.priority,
            "known_job": loaded is not None, "computed_at": now,
            "cpu_s": round(time.process_time() - began, 3), "cycles": fc.cycles,
            "starts_now": bool(est is not None and est.state == "now"),
            **self._calibrated(now, est),
            "waits_for": shown.waits_for(now) if shown is not None else "it is not a waiting unit",
            "placement": [{"node": n, "gpus": list(gp)} for n, gp in (est.placement if est else ())],
            "preempts": list(shown.preempts) if shown is not None else [],
            "behind": ahead, "duration": asdict(inp.durations[g.name]),
            "waiting_now": sum(1 for r in by_gang.values() if r.state in WAITING),
        }
        return out


def forecast_order(estimates: dict[str, Estimate], waiting: dict[str, tuple[str, int, float]], me: str,
                   mine: Estimate) -> list[str]:
    """Waiting units in the same queue that come before `me` in the queue's order (priority, then age)."""
    queue, priority, created = waiting[me]
    return [u for u, (q, p, c) in sorted(waiting.items(), key=lambda kv: (-kv[1][1], kv[1][2], kv[0]))
            if u != me and q == queue and (p > priority or (p == priority and c <= created))]


def _run_name(unit: str, by_gang: dict[str, RunRecord]) -> str:
    """A unit as people know it: the run's gang name ('<job>-<run id>')."""
    run = by_gang.get(unit)
    return gang_name(run.job, run.id) if run is not None else unit
