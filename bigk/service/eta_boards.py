"""The ETA boards of `bigk serve`: one `EtaService` per cluster, and what-if answers across clusters.

With one cluster there is one board and it answers for every run, as it always did. With several
(issue 18) each cluster has its own board over its own scheduling loop (`EtaService(cluster=NAME)`):
it forecasts that cluster's queue, the runs recorded there (`RunRecord.cluster`), and counts the cron
fires only of jobs whose spec allows that cluster alone (`ClustersFit.allowed`; a fire that may go
elsewhere is not counted anywhere: where it lands is the dispatcher's choice at fire time). A run not
dispatched yet (Pending with no cluster: held by the dispatcher) is on no board: its estimate comes from
the held runs' forecasts (`held`, `bigk.service.held_forecasts`): the soonest cluster's, labelled with it.

A what-if over several clusters asks the dispatcher for its verdicts on the spec now
(`Dispatcher.trial`: allowed by the spec, reachable, not cordoned, able ever to hold it, queue maxima
per cluster), forecasts the run on every cluster that would take it, and names the one where it would
start soonest: one that starts now (the dispatcher's own choice first among those), else the earliest
ETA, then the spec's preference and the declared order.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from bigk import metrics
from bigk.scheduler.dispatch import Dispatch
from bigk.service.eta import EtaService, RunEta
from bigk.service.held_forecasts import TAKES, HeldForecasts
from bigk.spec.clusters import cluster_rule

FITS = ("chosen", "fits")  # the dispatcher's verdicts for a cluster where the run fits now


class EtaReport:
    """What several boards tell the metrics: each recomputation's CPU time, and the waiting runs of every board
    together (`bigk_eta_waiting_runs` is one gauge; each board sets it to the sum of every board's last count)."""

    def __init__(self) -> None:
        self._waiting: dict[str, int] = {}

    def for_cluster(self, name: str) -> Callable[[float, int], None]:
        def report(cpu_s: float, runs: int) -> None:
            self._waiting[name] = runs
            metrics.observe_eta_computation(cpu_s, sum(self._waiting.values()))
        return report


class EtaBoards(Mapping[str, EtaService]):
    """The ETA board of every cluster by name, in the declared order; `home` (the first) is the default.

    multi: several clusters (each run's estimate comes from its own cluster's board); else the one board
    answers for every run whatever its recorded cluster. trial: with several clusters, the dispatcher's
    verdicts on a spec now (`Dispatcher.trial`), for what-if answers."""

    def __init__(self, boards: Mapping[str, EtaService], *, multi: bool = False,
                 trial: Callable[[Any, float], Dispatch] | None = None) -> None:
        if not boards:
            raise ValueError("EtaBoards needs at least one board")
        self._boards = dict(boards)
        self.multi = multi
        self.trial = trial
        self.held: HeldForecasts | None = None  # several clusters: the held runs' forecasts (started and stopped here)

    def __getitem__(self, name: str) -> EtaService:
        return self._boards[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._boards)

    def __len__(self) -> int:
        return len(self._boards)

    @property
    def home(self) -> EtaService:
        return next(iter(self._boards.values()))

    def start(self) -> EtaBoards:
        for board in self._boards.values():
            board.start()
        if self.held is not None:
            self.held.start()
        return self

    def stop(self) -> None:
        if self.held is not None:
            self.held.stop()
        for board in self._boards.values():
            board.stop()

    # ---- a run's estimate -----------------------------------------------------------------------
    def for_cluster(self, cluster: str) -> EtaService | None:
        """The board that forecasts runs recorded on `cluster` (one cluster: the one board; several: None for a run
        not dispatched yet, or a cluster not served)."""
        return self._boards.get(cluster) if self.multi else self.home

    def for_run(self, run_id: str, cluster: str) -> RunEta | None:
        board = self.for_cluster(cluster)
        return board.for_run(run_id) if board is not None else None

    def eta_dict(self, run_id: str, cluster: str) -> dict[str, Any] | None:
        """A run's estimate as the API shows it (with several clusters, with the board's `cluster`; a run held by the
        dispatcher: the soonest cluster's estimate, `cluster` and `if_sent_to` naming it, `held` true)."""
        if self.multi and not cluster:
            return self.held.eta_dict(run_id) if self.held is not None else None
        found = self.for_run(run_id, cluster)
        if found is None:
            return None
        out = found.to_dict()
        if self.multi:
            out["cluster"] = cluster
        return out

    def rows(self) -> list[tuple[str, RunEta]]:
        """Every board's estimates as (cluster, row): cluster by cluster in the declared order, each in line order."""
        return [(name, row) for name, board in self._boards.items()
                for row in sorted(board.board.runs.values(), key=lambda r: r.position)]

    def listing(self) -> dict[str, Any]:
        """`GET /api/v1/eta`: one cluster as before; several: every board's rows (each with its `cluster`; position
        is in that cluster's line) and each board's computation under `clusters`."""
        if not self.multi:
            board = self.home.board
            rows = sorted(board.runs.values(), key=lambda r: r.position)
            return {"computed_at": board.computed_at, "cpu_s": round(board.cpu_s, 4), "cycles": board.cycles,
                    "error": board.error, "runs": [r.to_dict() for r in rows]}
        boards = {name: svc.board for name, svc in self._boards.items()}
        return {"computed_at": max(b.computed_at for b in boards.values()),
                "cpu_s": round(sum(b.cpu_s for b in boards.values()), 4),
                "cycles": sum(b.cycles for b in boards.values()),
                "error": "; ".join(f"{name}: {b.error}" for name, b in boards.items() if b.error),
                "runs": [{**row.to_dict(), "cluster": name} for name, row in self.rows()],
                "clusters": {name: {"computed_at": b.computed_at, "cpu_s": round(b.cpu_s, 4), "cycles": b.cycles,
                                    "error": b.error, "waiting": len(b.runs)} for name, b in boards.items()}}

    # ---- what if ---------------------------------------------------------------------------------
    def whatif(self, spec: Any) -> dict[str, Any]:
        """When a run of `spec` would start if submitted now; with several clusters, on each cluster that would
        take it, and `cluster`: the soonest (the answer's other fields are that cluster's). Creates nothing."""
        if not self.multi or self.trial is None:
            return self.home.whatif(spec)
        now = self.home.clock()
        began = time.process_time()
        found = self.trial(spec, now)
        rule = cluster_rule(spec)
        order = list(self._boards)
        answers: dict[str, dict[str, Any]] = {}
        rows: list[dict[str, Any]] = []
        for verdict in found.verdicts:
            board = self._boards.get(verdict.cluster)
            row: dict[str, Any] = {"cluster": verdict.cluster, "dispatch": verdict.outcome, "reason": verdict.reason,
                                   "starts_now": False, "eta": None, "eta_low": None, "eta_high": None,
                                   "waits_for": "", "behind": 0}
            if verdict.outcome in TAKES and board is not None:
                ans = answers[verdict.cluster] = board.whatif(spec)
                row.update({k: ans[k] for k in ("starts_now", "eta", "eta_low", "eta_high", "waits_for")})
                row["behind"] = len(ans["behind"])
            rows.append(row)

        def soonness(row: dict[str, Any]) -> tuple[int, float, int, int, int]:
            name = row["cluster"]
            now_here = bool(row["starts_now"]) and row["dispatch"] in FITS
            group = 0 if now_here else 1 if row["eta"] is not None else 2
            when = 0.0 if now_here else row["eta"] if row["eta"] is not None else math.inf
            return (group, when, 0 if row["dispatch"] == "chosen" else 1, rule.rank(name),
                    order.index(name) if name in order else len(order))

        candidates = sorted((r for r in rows if r["cluster"] in answers), key=soonness)
        soonest = candidates[0]["cluster"] if candidates else None
        if soonest is not None:
            out = dict(answers[soonest])
        else:
            out = {"job": spec.metadata.name, "queue": spec.spec.queue, "priority": spec.spec.priority,
                   "known_job": self.home.catalog.job(spec.metadata.name) is not None, "computed_at": now,
                   "cycles": 0, "starts_now": False, "eta": None, "eta_low": None, "eta_high": None,
                   "forecast_eta": None, "calibrated": False,
                   "waits_for": f"no cluster would take it now: {found.message()}",
                   "placement": [], "preempts": [], "behind": [], "duration": {}, "waiting_now": 0}
        out["cpu_s"] = round(time.process_time() - began, 3)
        out["cluster"] = soonest
        out["clusters"] = rows
        out["dispatch"] = found.message()
        return out


def pinned_to(name: str, allowed: Callable[[Any], list[str]]) -> Callable[[Any], bool]:
    """Whether a job's spec allows cluster `name` alone (its cron fires then count on that cluster's board)."""
    return lambda loaded: allowed(loaded) == [name]
