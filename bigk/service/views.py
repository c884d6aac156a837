"""What the API shows: job summaries and details, runs, the queue, explanations, history, spec problems.

Read-only views over the store, the catalog, the firing policy (suspension, next
fire), the scheduler loop's published view (`bigk.kube.loop_view`) and the ETA
board; nothing here changes state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bigk.errors import BigkError
from bigk.kube.loop_view import LoopView
from bigk.service import history as hist
from bigk.service.catalog import Catalog, UnknownJob
from bigk.service.cluster_view import ClusterView
from bigk.service.eta_boards import EtaBoards
from bigk.service.firing import Firing
from bigk.service.guards import FitGuard
from bigk.service.runstate import RunState
from bigk.service.store import RunRecord, Store
from bigk.spec.secrets import redact_spec

__all__ = ["UnknownJob", "Views"]

_WAITING = (RunState.PENDING, RunState.SUBMITTED, RunState.ADMITTED)  # what `get queue` lists


class Views:
    """The read side of `bigk serve`.

    eta: the ETA boards (None when this process runs no scheduler; with several clusters a run's estimate comes
    from its own cluster's board, and a run not dispatched yet has none); loop_view: the scheduler loop's
    last published view (`EMPTY_VIEW` without one); cluster_view: with several clusters, that of the
    named cluster's loop (a run's explanation comes from the scheduler of the cluster it went to)."""

    def __init__(self, *, store: Store, catalog: Catalog, firing: Firing, fit: FitGuard, cluster: ClusterView,
                 clock: Callable[[], float], loop_view: Callable[[], LoopView], eta: EtaBoards | None,
                 cluster_view: Callable[[str], LoopView] | None = None) -> None:
        self.store = store
        self.catalog = catalog
        self.firing = firing
        self.fit = fit
        self.cluster = cluster
        self.clock = clock
        self.loop_view = loop_view
        self.cluster_view = cluster_view
        self.eta = eta

    def job_names(self) -> list[str]:
        return sorted(self.catalog.view.jobs)

    def job_summary(self, name: str) -> dict[str, Any]:
        loaded = self.catalog.loaded(name)
        spec = loaded.spec
        schedule = spec.spec.schedule
        runs = self.store.list_runs(name, limit=1)
        active = self.store.active_runs(name)
        return {
            "name": name, "namespace": spec.metadata.namespace, "queue": spec.spec.queue,
            "priority": spec.spec.priority, "schedule": schedule.cron if schedule else None,
            "time_zone": schedule.timeZone if schedule else None,
            "concurrency_policy": schedule.concurrencyPolicy if schedule else None,
            "suspended": self.firing.suspended(name),
            "suspend_override": self.store.suspended_overrides().get(name),
            "next_fire": self.firing.next_fire(name) if schedule else None,
            "last_run": runs[0].id if runs else None, "last_state": str(runs[0].state) if runs else None,
            "active_runs": len(active), "file": str(loaded.file), "line": loaded.line,
        }

    def job_detail(self, name: str) -> dict[str, Any]:
        out = self.job_summary(name)
        loaded = self.catalog.loaded(name)
        out["spec"] = redact_spec(loaded.spec.model_dump(mode="json", exclude_none=True))  # no secrets in reads
        view = self.catalog.view
        out["kept"] = name in view.kept  # its file is broken now; this is the last good version
        out["problems"] = [str(p) for p in view.problems if p.file == loaded.file]
        out["runs"] = [r.to_dict() for r in self.store.list_runs(name, limit=20)]
        out["events"] = [e.__dict__ for e in self.store.events(job=name, limit=20)]
        return out

    def run_detail(self, run_id: str) -> dict[str, Any]:
        run = self.store.get_run(run_id)
        out = run.to_dict()
        out["events"] = [e.__dict__ for e in self.store.events(run_id=run_id, limit=50)]
        out["eta"] = self.eta_for(run)
        return out

    def eta_for(self, run: RunRecord) -> dict[str, Any] | None:
        """The waiting run's queue position and estimated start (bigk.service.eta) from its cluster's board, None
        when it has none."""
        eta = self.eta
        if eta is None or run.state not in (RunState.PENDING, RunState.SUBMITTED):
            return None
        return eta.eta_dict(run.id, run.cluster)

    def with_eta(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run dicts with `eta` (start estimate, range, position) added to the waiting ones."""
        eta = self.eta
        for row in rows:
            found = eta.eta_dict(row.get("id", ""), row.get("cluster") or "") if eta is not None else None
            row["eta"] = found if found is not None and row.get("state") in ("Pending", "Submitted") else None
        return rows

    def whatif(self, spec: Any) -> dict[str, Any]:
        """When a run of `spec` would start if submitted now (nothing is created); with several clusters, on each
        that would take it, naming the soonest (`EtaBoards.whatif`)."""
        eta = self.eta
        if eta is None:
            raise BigkError("this bigk serve runs no scheduler (--no-scheduler?), so it cannot forecast starts")
        never = self.fit.reason(_Loaded(spec))
        out = dict(eta.whatif(spec))
        out["never_fits"] = never
        return out

    def explanation_for(self, gang: str, cluster: str = "") -> str | None:
        """The live explanation of `gang` from the scheduler of `cluster` (this process's loop when not given)."""
        view = self.cluster_view(cluster) if cluster and self.cluster_view is not None else self.loop_view()
        return view.explanation(gang)

    def explain_run(self, run_id: str) -> dict[str, Any]:
        return self.explain(self.store.get_run(run_id))

    def explain(self, run: RunRecord, never_fits: str | None = None) -> dict[str, Any]:
        """Why `run` waits (or what became of it), what it waits for, and whether it can never run (`never_fits`:
        the job's, when the caller judged it already)."""
        text = run.explanation
        waiting = run.state in (RunState.PENDING, RunState.SUBMITTED)
        if waiting:
            live = self.explanation_for(run.spark_app_id, run.cluster)
            text = live or text
        if not text and run.state is RunState.PENDING and not run.cluster and run.dispatch_reason:
            text = run.dispatch_reason  # several clusters: held unsubmitted, and why (bigk.service.dispatcher)
        if not text:
            text = _default_explanation(run, self.clock())
        never = (never_fits if never_fits is not None else self.never_fits(run.job)) if waiting else ""
        if never:
            never += f"; `bigk cancel {run.id}`, then fix the spec or add nodes"
        return {"run": run.id, "job": run.job, "state": str(run.state), "explanation": text, "never_fits": never,
                "eta": self.eta_for(run) if waiting else None, "cluster": run.cluster,
                "dispatch": run.dispatch_reason}

    def never_fits(self, job: str) -> str:
        """Why the job can never run on the cluster's nodes as they are now ('' if it can, or nobody knows).

        The scheduler only says what fits right now; a gang bigger than every eligible node
        together would otherwise wait for ever with an explanation that looks temporary. The fit
        guard decides (with several clusters: on every cluster the job may go to).
        """
        loaded = self.catalog.job(job)
        return self.fit.reason(loaded) if loaded is not None else ""

    def explanations(self) -> list[dict[str, Any]]:
        out = []
        for gang, exp in sorted(self.loop_view().explanations.items()):
            row: dict[str, Any] = {"gang": gang, "message": exp.message}
            for key in ("queue", "priority", "state", "drivers", "executors", "executors_fit", "gpus", "nodes_total",
                        "nodes_fit", "reasons", "victims"):
                row[key] = getattr(exp, key, None)
            out.append(row)
        return out

    def queue(self, limit: int | None = None) -> tuple[list[dict[str, Any]], int]:
        """Runs not yet running, highest priority first, then oldest, each with why it waits: the first `limit`
        (all when None), and how many wait in all. The order is found from three columns of every waiting run;
        only the rows returned are read whole and explained (a backlog's head costs the same at any length)."""
        now = self.clock()
        oldest_first = self.store.waiting_order(_WAITING)
        priority: dict[str, int] = {}  # job -> its priority: read once per job
        for job in {job for _, job in oldest_first}:
            loaded = self.catalog.job(job)
            priority[job] = loaded.spec.spec.priority if loaded else 0
        order = sorted(oldest_first, key=lambda r: -priority[r[1]])  # stable: the oldest first within a priority
        head = order if limit is None else order[:limit]
        whole = self.store.list_runs(states=_WAITING) if len(head) == len(order) else \
            self.store.get_runs([r[0] for r in head])
        records = {run.id: run for run in whole}
        never: dict[str, str] = {}  # job -> never-fits reason: judged once per job
        rows = []
        for run_id, job in head:
            run = records.get(run_id)
            if run is None or run.state not in _WAITING:  # it moved on between the two reads
                continue
            if job not in never:
                never[job] = self.never_fits(job)
            why = self.explain(run, never[job])  # the row just read: not read again
            rows.append({"run": run.id, "job": run.job, "queue": run.queue, "state": str(run.state),
                         "priority": priority.get(job, 0), "created_at": run.created_at,
                         "wait_s": round(now - run.created_at, 1),
                         "explanation": why["explanation"], "never_fits": why["never_fits"], "eta": why["eta"]})
        return rows, len(order)

    def job_history(self, name: str, limit: int = 1000) -> dict[str, Any]:
        rows = self.store.history(name, limit=limit)
        if not rows and self.catalog.job(name) is None:
            raise UnknownJob(f"no job {name!r} and no history for it")
        return {"job": name, "summary": hist.summarize(rows), "runs": rows}

    def problems(self) -> dict[str, Any]:
        view = self.catalog.view
        never = self.fit.all_problems(view.jobs.values())  # jobs that can never run on the cluster's nodes now
        from bigk.service.lastgood import versions_of

        kept_files = {str(view.jobs[name].file) for name in view.kept if name in view.jobs}
        return {"problems": [str(p) for p in view.problems] + never, "kept_jobs": view.kept,
                "kept_versions": versions_of(self.catalog.last_good, kept_files),
                "loaded_at": view.loaded_at}


def _default_explanation(run: RunRecord, now: float) -> str:
    if run.state is RunState.PENDING:
        if run.not_before and run.not_before > now:
            return f"waiting {run.not_before - now:.0f}s of retry backoff before attempt {run.attempt}"
        return "recorded, being submitted to the cluster"
    if run.state is RunState.SUBMITTED:
        return "driver pod created; waiting for the scheduler's first decision"
    if run.state is RunState.ADMITTED:
        return "gang admitted: driver bound, waiting for it to start"
    if run.state is RunState.RUNNING:
        return "running"
    return f"{run.state}" + (f": {run.reason}" if run.reason else "")


class _Loaded:
    """A spec standing in for a catalog entry, for the fit guard."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec
        self.file = "(what-if spec)"
        self.line = 1

    @property
    def name(self) -> str:
        return str(self.spec.metadata.name)

    def locate(self, loc: tuple[str | int, ...], prefer_key: bool = False) -> tuple[int, int]:
        return 1, 1
