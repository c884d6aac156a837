"""Start estimates for runs held by the dispatcher, on every cluster that would take them (issue 18).

With several clusters the dispatcher (`bigk.service.dispatcher`) keeps a Pending run unsubmitted ("held")
while it fits no cluster now, for at most `--dispatch-hold-seconds`, then sends it where it should start
soonest. A held run is on no cluster's ETA board (each board forecasts the runs recorded on its cluster).
This part forecasts it, on a thread of its own (`bigk-eta-held`, never the run ticker nor a scheduling
thread): for each held run, the dispatcher's verdicts on its spec now (`Dispatcher.trial`: the clusters
where it would wait, or fit) and, on each of those, that cluster's board's what-if (`EtaService.whatif`:
when a run of the spec would start if submitted there now, calibrated as the board's estimates are).

Bounded like the boards: at most `max_runs` held runs per refresh (the dispatcher's order: higher priority,
then older, first); a run's forecast is recomputed when something relevant changed (the active runs and
their states or clusters, or a board recomputed, i.e. its cluster changed) or once it is `max_age_s` old;
after a refresh the thread rests twice as long as the refresh took. Each held run keeps
{cluster: (eta, low, high)} with when it was computed (`HeldForecast`).

Two readers: the dispatcher, which decides a held run in seconds (`waits`: each cluster's eta - now) where
every cluster it would wait on has a forecast at most `fresh_s` old, and the API (`eta_dict`), which shows the
soonest cluster's estimate labelled "if sent to CLUSTER" (`bigk explain`, `describe run`, `get runs`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bigk.scheduler.dispatch import Dispatch
from bigk.service.runstate import RunState
from bigk.service.store import RunRecord
from bigk.spec.naming import gang_name

log = logging.getLogger(__name__)

TAKES = ("chosen", "fits", "waits")  # the dispatcher's verdicts for a cluster that would take the run
MAX_RUNS = 8  # held runs forecast per refresh
MAX_AGE_S = 30.0  # a forecast is recomputed at least this often (the boards' own maximum age)
FRESH_S = 120.0  # the dispatcher uses a forecast at most this old
POLL_S = 0.5
REST_FACTOR = 2.0


class Forecaster(Protocol):
    """What this part needs of a cluster's ETA board (`EtaService`)."""

    def whatif(self, spec: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ClusterEta:
    """A held run's estimated start (unix seconds) if sent to one cluster now; eta None: none in the horizon."""

    eta: float | None
    low: float | None
    high: float | None
    waits_for: str = ""
    calibrated: bool = False


@dataclass(frozen=True)
class HeldForecast:
    """One held run's estimates on every cluster that would take it (in the declared order), computed at
    `computed_at`; position: its place among the held runs in the dispatcher's order (queue_*: of its queue)."""

    run: str
    job: str
    queue: str
    computed_at: float
    clusters: dict[str, ClusterEta]
    position: int = 1
    waiting: int = 1
    queue_position: int = 1
    queue_waiting: int = 1
    dispatch: str = ""  # the dispatcher's verdicts when it was computed (`Dispatch.message()`)

    def soonest(self) -> str | None:
        """The cluster with the earliest estimate (the declared order breaks ties); None when none has one."""
        known = [(eta.eta, n, name) for n, (name, eta) in enumerate(self.clusters.items()) if eta.eta is not None]
        return min(known)[2] if known else None

    def waits(self, now: float) -> dict[str, float]:
        """Seconds from `now` to each cluster's estimate (clusters without one are left out)."""
        return {name: max(0.0, eta.eta - now) for name, eta in self.clusters.items() if eta.eta is not None}

    def to_dict(self) -> dict[str, Any]:
        """The API's `eta` of a held run: the soonest cluster's estimate, labelled with it (`if_sent_to`), and
        every cluster's under `clusters`. Keys as a board's `RunEta` (position: among the held runs)."""
        where = self.soonest()
        best = self.clusters[where] if where is not None else ClusterEta(None, None, None)
        waits_for = best.waits_for if where is not None else "no start within the forecast horizon on " + \
            (", ".join(self.clusters) or "any cluster")
        return {"run": self.run, "job": self.job, "gang": gang_name(self.job, self.run), "queue": self.queue,
                "position": self.position, "waiting": self.waiting, "queue_position": self.queue_position,
                "queue_waiting": self.queue_waiting, "eta": best.eta, "eta_low": best.low, "eta_high": best.high,
                "waits_for": waits_for, "computed_at": self.computed_at, "placement": [], "preempts": [],
                "forecast_eta": None, "calibrated": best.calibrated, "method": "whatif",
                "cluster": where, "held": True, "if_sent_to": where,
                "clusters": {name: {"eta": e.eta, "eta_low": e.low, "eta_high": e.high}
                             for name, e in self.clusters.items()},
                "dispatch": self.dispatch}


@dataclass
class _Seen:
    mark: object = None
    forecasts: dict[str, HeldForecast] = field(default_factory=dict)


class HeldForecasts:
    """The held runs' forecasts (module docstring). `boards`: each cluster's ETA board by name; `trial`: the
    dispatcher's verdicts on a spec now (`Dispatcher.trial`); `job`: the catalog's lookup (a loaded job with
    `.spec`, or None); `active`: the store's active runs."""

    def __init__(self, *, boards: Mapping[str, Forecaster], trial: Callable[[Any, float], Dispatch],
                 job: Callable[[str], Any], active: Callable[[], Sequence[RunRecord]], clock: Callable[[], float],
                 max_runs: int = MAX_RUNS, max_age_s: float = MAX_AGE_S, fresh_s: float = FRESH_S,
                 poll_s: float = POLL_S) -> None:
        self.boards = boards
        self.trial = trial
        self.job = job
        self.active = active
        self.clock = clock
        self.max_runs = max_runs
        self.max_age_s = max_age_s
        self.fresh_s = fresh_s
        self.poll_s = poll_s
        self.cpu_s = 0.0  # the last refresh's CPU time
        self.error = ""
        self._seen = _Seen()  # replaced whole by each refresh: readers on other threads see one or the other
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- readers ---------------------------------------------------------------------------------
    def get(self, run_id: str) -> HeldForecast | None:
        return self._seen.forecasts.get(run_id)

    def waits(self, run_id: str, now: float) -> dict[str, float] | None:
        """For the dispatcher: seconds to each cluster's estimate for a held run, from a forecast at most `fresh_s`
        old (None without one)."""
        found = self.get(run_id)
        if found is None or now - found.computed_at > self.fresh_s:
            return None
        return found.waits(now)

    def eta_dict(self, run_id: str) -> dict[str, Any] | None:
        found = self.get(run_id)
        return found.to_dict() if found is not None and found.clusters else None

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> HeldForecasts:
        self._thread = threading.Thread(target=self._run, name="bigk-eta-held", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                began = time.process_time()
                if self.refresh():
                    self._stop.wait(REST_FACTOR * (time.process_time() - began))
            except Exception as exc:  # the store or a board is not ready yet, or failed: try again later
                log.warning("event=held_eta_failed error=%r", str(exc)[:300])
                self.error = str(exc)[:300]
                self._stop.wait(5.0)

    # ---- the work --------------------------------------------------------------------------------
    def held(self) -> list[RunRecord]:
        """The held runs in the dispatcher's order (higher priority, then older, first): Pending, on no cluster,
        whose job is loaded."""
        runs = [(r, self.job(r.job)) for r in self.active() if r.state is RunState.PENDING and not r.cluster]
        known = [(r, loaded) for r, loaded in runs if loaded is not None]
        known.sort(key=lambda p: (-int(p[1].spec.spec.priority), p[0].created_at, p[0].id))
        return [r for r, _ in known]

    def _mark(self) -> object:
        runs = tuple((r.id, str(r.state), r.cluster) for r in self.active())
        boards = tuple(getattr(getattr(b, "board", None), "computed_at", None) for b in self.boards.values())
        return runs, boards

    def refresh(self) -> bool:
        """Forecast the first `max_runs` held runs whose forecast is missing, stale, or predates a relevant change;
        publish. Returns whether anything was computed."""
        held = self.held()
        mark = self._mark()
        seen = self._seen
        changed = mark != seen.mark
        now = self.clock()
        began = time.process_time()
        per_queue: dict[str, list[str]] = {}
        for r in held:
            per_queue.setdefault(r.queue, []).append(r.id)
        out: dict[str, HeldForecast] = {}
        computed = 0
        for i, run in enumerate(held):
            peers = per_queue[run.queue]
            place = {"position": i + 1, "waiting": len(held), "queue_position": peers.index(run.id) + 1,
                     "queue_waiting": len(peers)}
            old = seen.forecasts.get(run.id)
            if i >= self.max_runs:  # beyond the bound: kept as it was while it is still fresh, else dropped
                if old is not None and now - old.computed_at <= self.fresh_s:
                    out[run.id] = HeldForecast(**{**old.__dict__, **place})
                continue
            if old is not None and not changed and now - old.computed_at < self.max_age_s:
                out[run.id] = HeldForecast(**{**old.__dict__, **place})
                continue
            loaded = self.job(run.job)
            out[run.id] = self._forecast(run, loaded.spec, self.clock(), place)
            computed += 1
        self.cpu_s = time.process_time() - began
        self._seen = _Seen(mark, out)
        if computed:
            self.error = ""
            log.debug("event=held_eta_refreshed held=%d computed=%d cpu_s=%.3f", len(held), computed, self.cpu_s)
        return computed > 0

    def _forecast(self, run: RunRecord, spec: Any, now: float, place: dict[str, int]) -> HeldForecast:
        """The run's estimate on every cluster the dispatcher says would take it now."""
        found = self.trial(spec, now)
        clusters: dict[str, ClusterEta] = {}
        for verdict in found.verdicts:
            board = self.boards.get(verdict.cluster)
            if verdict.outcome not in TAKES or board is None:
                continue
            ans = board.whatif(spec)
            clusters[verdict.cluster] = ClusterEta(ans.get("eta"), ans.get("eta_low"), ans.get("eta_high"),
                                                   str(ans.get("waits_for") or ""), bool(ans.get("calibrated")))
        return HeldForecast(run.id, run.job, run.queue, now, clusters, dispatch=found.message(), **place)
