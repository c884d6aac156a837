"""Run lifecycle: submit pending runs, follow their pods, retry, time out, prune.

One `tick()` reads every active run from the store and every bigk pod from the
cluster (one list call, by the `bigk.io/run` label), and moves each run as far
as the cluster shows it has gone. Because the store and the cluster are the only
inputs, the same code rebuilds everything after a `kill -9`: a Pending run whose
driver pod already exists is marked Submitted, never submitted again.

With several clusters (`attach_clusters`, issue 18) a tick lists every cluster's run
pods, dispatches the Pending runs (`bigk.service.dispatcher`: submitted on fits-now,
held Pending while they fit nowhere, up to the hold limit), and follows each run on the
cluster it was submitted to (`RunRecord.cluster`). A cluster that does not answer for
`unreachable_s` is unreachable: its runs go `Unknown`; after `grace_s` the ones that
never started are dispatched again elsewhere (the same run id: it never ran), a started
one fails only when its restartPolicy starts a new attempt (a new run id), else it
waits. When the cluster answers again its pods are reconciled with the store before its
scheduling loop may bind again: pods of runs now recorded elsewhere, or ended while it
was away, are deleted; the Unknown runs take the state their pods show.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bigk import metrics
from bigk.cluster import labels as L
from bigk.service.housekeeping import remove_submission_files
from bigk.service.runstate import RunState
from bigk.service.runtime import DEFAULT_CLUSTER
from bigk.service.store import RunRecord, Store
from bigk.service.submitters import ClusterPods, RunSubmitter, SubmitError, driver_pod_name, pod_summary
from bigk.spec.naming import gang_name

if TYPE_CHECKING:
    from bigk.service.dispatcher import Decision, Dispatcher
    from bigk.service.runtime import ClusterRuntime

log = logging.getLogger(__name__)

# A run whose pods vanish is failed only after this long (the API may lag just after a submit).
MISSING_GRACE_S = 5.0
# A waiting run of a job that can no longer fit the cluster's nodes fails after this long (Unschedulable).
NEVER_FITS_GRACE_S = 30.0
DEFAULT_HISTORY_LIMIT = 10  # for jobs without a schedule (and so without history limits)

_PHASE_TO_STATE = {"Running": RunState.RUNNING, "Succeeded": RunState.SUCCEEDED, "Failed": RunState.FAILED}


class RunManager:
    """Moves runs through their lifecycle; `tick()` is safe to call from any thread."""

    def __init__(self, store: Store, catalog_job: Callable[[str], Any], submitter: RunSubmitter,
                 pods: ClusterPods, clock: Callable[[], float],
                 explain: Callable[[str], str | None] = lambda gang: None) -> None:
        self.store = store
        self._job = catalog_job
        self.submitter = submitter
        self.pods = pods
        self._clock = clock
        self._explain = explain
        self._lock = threading.RLock()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bigk-submit")
        self._inflight: dict[str, Future[None]] = {}
        self._missing_since: dict[str, float] = {}
        self._never_since: dict[str, float] = {}
        # A tick's changes of non-state fields (a waiting run's explanation, its pods), written together at its end:
        # when capacity appears, thousands of waiting runs are re-explained in one tick (one commit each took ~20 s).
        self._deferred: dict[str, dict[str, Any]] = {}
        # Why a job can never run on the cluster as it is ('' if it can): set by the service (FitGuard.reason).
        self.never_fits: Callable[[Any], str] | None = None
        self._evicted: dict[str, str] = {}  # "ns/pod" -> who evicted it, for the reason a run fails with
        self.cluster_name = DEFAULT_CLUSTER  # what a run submitted with one cluster records
        # Several clusters (attach_clusters): the runtimes by name, the dispatcher, and the reachability settings.
        self.clusters: dict[str, ClusterRuntime] | None = None
        self.dispatcher: Dispatcher | None = None
        self.unreachable_s = 5.0
        self.grace_s = 300.0
        self._failing_since: dict[str, float] = {}
        # Why a job can never run on one cluster ('' if it can): for runs waiting there (several clusters).
        self.never_fits_on: Callable[[Any, str], str] | None = None

    def attach_clusters(self, clusters: dict[str, ClusterRuntime], dispatcher: Dispatcher, *,
                        unreachable_s: float, grace_s: float) -> None:
        """Run over several clusters: dispatch each Pending run, follow it on its own cluster (module docstring)."""
        self.clusters = clusters
        self.dispatcher = dispatcher
        self.unreachable_s = unreachable_s
        self.grace_s = grace_s

    # ---- the run's cluster ----------------------------------------------------------------------

    def _runtime(self, run: RunRecord) -> ClusterRuntime | None:
        """The runtime of the cluster the run was submitted to (None with one cluster, or when it is on none)."""
        if self.clusters is None or not run.cluster:
            return None
        return self.clusters.get(run.cluster)

    def submitter_for(self, run: RunRecord) -> RunSubmitter:
        runtime = self._runtime(run)
        return runtime.submitter if runtime is not None and runtime.submitter is not None else self.submitter

    def pods_for(self, run: RunRecord) -> ClusterPods:
        """The pods reader of the run's cluster (logs, the UI and the run's own pods go through it)."""
        runtime = self._runtime(run)
        return runtime.pods if runtime is not None and runtime.pods is not None else self.pods

    def api_for(self, run: RunRecord) -> Any | None:
        """The Kubernetes API client of the run's cluster; None with one cluster (the service's own client)."""
        runtime = self._runtime(run)
        return runtime.api if runtime is not None else None

    def _kill(self, run: RunRecord) -> None:
        """Delete the run's pods on its cluster (a run on no cluster yet has none; an unreachable cluster's are
        deleted when it returns, by the reconciliation)."""
        if self.clusters is None:
            self.submitter.kill(run.namespace, run.id)
            return
        runtime = self._runtime(run)
        if runtime is None:
            return
        if not runtime.reachable:
            log.info("event=kill_deferred run=%s cluster=%s reason=unreachable", run.id, runtime.name)
            return
        self.submitter_for(run).kill(run.namespace, run.id)

    def note_eviction(self, pod_key: str, by: str) -> None:
        """Remember that bigk itself evicted `pod_key` (e.g. a drain), so a lost driver is not blamed on others."""
        with self._lock:
            if len(self._evicted) > 10_000:
                self._evicted.clear()
            self._evicted[pod_key] = by

    def shutdown(self) -> None:
        """Wait for submissions in flight so their result is recorded."""
        self._pool.shutdown(wait=True)

    # ---- transitions ----------------------------------------------------------------------

    def move(self, run: RunRecord, new: RunState, reason: str = "", **fields: Any) -> RunRecord:
        """Validated transition plus the log line, event and metrics that go with it."""
        now = self._clock()
        if reason:
            fields["reason"] = reason
        updated = self.store.transition(run.id, new, now=now, **fields)
        self.store.add_event("run", f"{run.state} -> {new}" + (f": {reason}" if reason else ""),
                             now=now, job=run.job, run_id=run.id)
        metrics.record_run_state(run.job, str(new))
        log.info("event=run_state run=%s job=%s attempt=%d from=%s to=%s%s", run.id, run.job, run.attempt,
                 run.state, new, f" reason={reason!r}" if reason else "")
        if new is RunState.RUNNING and updated.submitted_at is not None:
            metrics.observe_queue_wait(updated.queue, max(0.0, now - updated.submitted_at))
        if updated.terminal:
            _observe_finished(updated, now)
            self._after_terminal(updated)
        return updated

    def cancel_all(self, runs: list[RunRecord], reason: str) -> list[RunRecord]:
        """Record many active runs Cancelled at once, without touching their pods (`bigk serve` stopping with its
        embedded cluster, which takes the pods along): one transaction, then one history pruning per job. One at a
        time, thousands of queued runs kept a stop busy for minutes."""
        now = self._clock()
        done = self.store.transition_many([r.id for r in runs], RunState.CANCELLED, now=now, event=reason,
                                          reason=reason)
        for run in done:
            metrics.record_run_state(run.job, str(run.state))
            _observe_finished(run, now)
        for job in sorted({r.job for r in done}):
            loaded = self._job(job)
            self._prune(job, loaded.spec.spec if loaded is not None else None, kill=False)  # the pods go anyway
        log.info("event=runs_cancelled count=%d reason=%r", len(done), reason)
        return done

    def cancel(self, run_id: str, reason: str = "cancelled by operator") -> RunRecord:
        """Kill the run's pods (if any) and record it Cancelled; a finished run is returned unchanged."""
        with self._lock:
            run = self.store.get_run(run_id)
            if run.terminal:
                return run
            self._kill(run)
            return self.move(run, RunState.CANCELLED, reason)

    # ---- the loop body ----------------------------------------------------------------------

    def tick(self) -> None:
        """Advance every active run by what the cluster shows."""
        if self.clusters is not None:
            self._tick_clusters()
            return
        # The listing is taken before the lock (with thousands of pods it takes long, and submissions wait for the
        # lock); a run submitted since it began is left for the next tick, when its pods are in the listing.
        listed_at = self._clock()
        by_run = self.pods.pods_by_run()
        with self._lock:
            now = self._clock()

            def advance(run: RunRecord) -> RunRecord:
                if run.state is RunState.SUBMITTED and (run.submitted_at or 0.0) >= listed_at:
                    return run
                return self._advance(run, by_run.get(run.id, []), now)

            self._advance_each(self.store.active_runs(), advance)

    def _advance_each(self, runs: list[RunRecord], advance: Callable[[RunRecord], RunRecord]) -> None:
        """A tick's pass: `advance` each run (one that fails is logged, the others go on), the tick's deferred field
        changes written at its end, and the current runs per job and state exported."""
        counts: dict[tuple[str, str], int] = {}
        try:
            for run in runs:
                try:
                    run = advance(run)
                except Exception:  # one broken run must not stall the others
                    log.exception("event=run_advance_failed run=%s job=%s", run.id, run.job)
                if not run.terminal:
                    counts[(run.job, str(run.state))] = counts.get((run.job, str(run.state)), 0) + 1
        finally:
            self._write_deferred()
        metrics.set_runs_current(counts)

    # ---- several clusters ---------------------------------------------------------------------

    def _tick_clusters(self) -> None:
        """The tick over several clusters (module docstring)."""
        assert self.clusters is not None and self.dispatcher is not None
        with self._lock:
            now = self._clock()
            listings = self._list_clusters(now)
            active = self.store.active_runs()
            pending = [r for r in active if self._to_dispatch(r, listings, now)]
            decisions = self.dispatcher.decide(pending, active, now) if pending else {}
            self._advance_each(active, lambda run: self._advance_on_cluster(run, listings, decisions.get(run.id), now))

    def _later(self, run: RunRecord, fields: dict[str, Any]) -> RunRecord:
        """`run` with non-state `fields` changed, written with the tick's others at its end (`_write_deferred`)."""
        self._deferred.setdefault(run.id, {}).update(fields)
        return dataclasses.replace(run, **fields)

    def _write_deferred(self) -> None:
        """The tick's deferred field changes in one transaction; if that fails they are dropped: the next tick
        finds the same differences and tries again."""
        deferred, self._deferred = self._deferred, {}
        if not deferred:
            return
        try:
            self.store.update_runs(deferred)
        except Exception as exc:
            log.warning("event=run_fields_write_failed runs=%d error=%r", len(deferred), str(exc)[:300])

    def _list_clusters(self, now: float) -> dict[str, dict[str, list[Any]] | None]:
        """Every cluster's run pods by run id; None for an unreachable cluster; no entry for one that failed to
        answer only just now (its runs wait a tick). A cluster that answers again is reconciled first."""
        assert self.clusters is not None
        out: dict[str, dict[str, list[Any]] | None] = {}
        for name, runtime in self.clusters.items():
            assert runtime.pods is not None
            try:
                by_run = runtime.pods.pods_by_run()
            except Exception as exc:
                first = self._failing_since.setdefault(name, now)
                if runtime.reachable and now - first >= self.unreachable_s:
                    runtime.reachable = False
                    runtime.unreachable_since = first
                    runtime.hold(True)  # nothing is bound there until it is reconciled on return
                    self.store.add_event("cluster", f"cluster {name} unreachable since {now - first:.0f}s: its runs "
                                         f"are Unknown ({str(exc)[:120]})", now=now)
                    log.warning("event=cluster_unreachable cluster=%s since_s=%.1f error=%r", name, now - first,
                                str(exc)[:200])
                if not runtime.reachable:
                    out[name] = None
                continue
            self._failing_since.pop(name, None)
            if not runtime.reachable:
                self._reconcile(runtime, by_run, now)
                runtime.reachable = True
                runtime.unreachable_since = None
                runtime.hold(False)
            out[name] = by_run
        return out

    def _reconcile(self, runtime: ClusterRuntime, by_run: dict[str, list[Any]], now: float) -> None:
        """A cluster answers again: delete its pods of runs recorded elsewhere now (dispatched again) or ended while
        it was away (failed or cancelled as lost); the rest follow from the pods on this tick."""
        assert runtime.pods is not None
        deleted = []
        for run_id in list(by_run):
            run = self.store.find_run(run_id)
            if run is None:
                continue  # not this store's run: left alone, as at start
            moved = run.cluster != runtime.name
            lost = run.terminal and run.unknown_at is not None and run.state is not RunState.SUCCEEDED
            if not (moved or lost):
                continue
            namespace = by_run[run_id][0].metadata.namespace or run.namespace
            runtime.pods.delete_run_pods(namespace, run_id)
            del by_run[run_id]
            deleted.append(run_id)
            why = (f"it was dispatched again, to {run.cluster or 'no cluster yet'}" if moved
                   else f"it ended ({run.state}) while the cluster was away")
            self.store.add_event("reconcile", f"cluster {runtime.name} is back: deleted the pods of run {run_id} "
                                 f"({why})", now=now, job=run.job, run_id=run_id)
        self.store.add_event("cluster", f"cluster {runtime.name} answers again after "
                             f"{now - (runtime.unreachable_since or now):.0f}s; reconciled "
                             f"({len(deleted)} run(s)' pods deleted)", now=now)
        log.info("event=cluster_returned cluster=%s away_s=%.1f deleted_runs=%s", runtime.name,
                 now - (runtime.unreachable_since or now), ",".join(deleted) or "-")

    def _to_dispatch(self, run: RunRecord, listings: dict[str, dict[str, list[Any]] | None], now: float) -> bool:
        """A Pending run the dispatcher should place now: not submitted (nor being), no backoff left, no pods."""
        if run.state is not RunState.PENDING or run.id in self._inflight or run.cluster:
            return False
        return run.not_before is None or run.not_before <= now

    def _advance_on_cluster(self, run: RunRecord, listings: dict[str, dict[str, list[Any]] | None],
                            decision: Decision | None, now: float) -> RunRecord:
        if run.state is RunState.PENDING:
            return self._advance_held(run, listings, decision, now)
        name = run.cluster or DEFAULT_CLUSTER
        if name not in listings:
            return run  # its cluster did not answer just now: next tick
        by_run = listings[name]
        if by_run is None:
            return self._lost(run, now)
        pods = by_run.get(run.id, [])
        if run.state is RunState.UNKNOWN:
            run = self._found(run, pods, now)
            if run.state is RunState.UNKNOWN or run.terminal:
                return run
        return self._advance(run, pods, now)

    def _advance_held(self, run: RunRecord, listings: dict[str, dict[str, list[Any]] | None],
                      decision: Decision | None, now: float) -> RunRecord:
        """A Pending run: adopt its pods if submitted already, else act on the dispatcher's decision."""
        if run.cluster:  # being submitted there (or submitted before a crash)
            by_run = listings.get(run.cluster)
            if by_run is None:
                return run
            pods = by_run.get(run.id, [])
            if _driver(pods, run) is not None:
                return self._advance_pending(run, pods, now)
            if run.id in self._inflight:
                return run
            # recorded on a cluster but neither submitting nor there (a crash between the two): submit again there
            return self._start_submit(run)
        if run.id in self._inflight or (run.not_before is not None and run.not_before > now):
            return run
        if self._job(run.job) is None:
            return self.move(run, RunState.FAILED, f"job {run.job} is no longer defined in the specs folder")
        if decision is None:
            return run
        if decision.fail:
            return self._fail(run, f"Unschedulable: {decision.message}", dispatch_reason=decision.message)
        if not decision.submit or decision.cluster is None:
            if decision.message != run.dispatch_reason:
                run = self._later(run, {"dispatch_reason": decision.message})
            return run
        run = self.store.update_run(run.id, cluster=decision.cluster, dispatch_reason=decision.message)
        self.store.add_event("dispatch", f"to {decision.cluster} ({decision.how}): {decision.message}"[:2000],
                             now=now, job=run.job, run_id=run.id)
        log.info("event=run_dispatched run=%s job=%s cluster=%s how=%s", run.id, run.job, decision.cluster,
                 decision.how)
        loaded = self._job(run.job)
        self._inflight[run.id] = self._pool.submit(self._submit, run, loaded.spec)
        return run

    def _lost(self, run: RunRecord, now: float) -> RunRecord:
        """The run's cluster is unreachable: Unknown now; after the grace period, dispatched again if it never
        started, failed (a new attempt) if its restartPolicy allows one, else still Unknown."""
        name = run.cluster
        if run.state in (RunState.SUBMITTED, RunState.ADMITTED, RunState.RUNNING):
            return self.move(run, RunState.UNKNOWN, f"cluster {name} does not answer; the run is not failed: bigk "
                             f"waits {self.grace_s:g}s for the cluster")
        if run.state is not RunState.UNKNOWN:
            return run
        away = now - (run.unknown_at if run.unknown_at is not None else now)
        if away < self.grace_s:
            return run
        if _never_started(run):
            why = (f"dispatched again: cluster {name} was unreachable for {away:.0f}s and the run never started "
                   "there")
            log.info("event=run_redispatch run=%s job=%s from=%s away_s=%.0f", run.id, run.job, name, away)
            return self.move(run, RunState.PENDING, why, cluster="", driver_pod="", dispatch_reason=why, pods=[],
                             spark_app_id="", explanation="")
        loaded = self._job(run.job)
        policy = loaded.spec.spec.restartPolicy if loaded is not None else None
        if policy is not None and policy.type in ("OnFailure", "Always") and run.attempt <= policy.retries:
            return self._fail(run, f"lost with cluster {name} (unreachable for {away:.0f}s after it started); "
                              f"restartPolicy {policy.type} starts attempt {run.attempt + 1}; its pods there are "
                              "deleted when the cluster returns")
        return run  # started, and its spec allows no new attempt: it waits for its cluster

    def _found(self, run: RunRecord, pods: list[Any], now: float) -> RunRecord:
        """An Unknown run whose cluster answers again: the state its pods show (none: it fails as lost, after the
        usual grace for a missing driver)."""
        driver = _driver(pods, run)
        if driver is None:
            if not self._missing_past_grace(run, now):
                return run
            return self._fail(run, f"driver pod {run.driver_pod or driver_pod_name(run.job, run.id)} not found when "
                              f"cluster {run.cluster} answered again (it went away with the cluster)",
                              pods=merge_pods(run.pods, [pod_summary(p) for p in pods]))
        phase = (driver.status.phase if driver.status is not None else None) or "Pending"
        target = _PHASE_TO_STATE.get(phase)
        if target is None:
            target = RunState.ADMITTED if driver.spec is not None and driver.spec.node_name else RunState.SUBMITTED
        if target in (RunState.SUCCEEDED, RunState.FAILED):  # it ended while away: as its pods tell, with their reason
            self._missing_since.pop(run.id, None)
            return self._follow(run, pods, now)
        return self.move(run, target, f"cluster {run.cluster} answers again")

    def _advance(self, run: RunRecord, pods: list[Any], now: float) -> RunRecord:
        if run.state is RunState.PENDING:
            return self._advance_pending(run, pods, now)
        spec = self._job(run.job)
        deadline = spec.spec.spec.activeDeadlineSeconds if spec is not None else None
        started = run.submitted_at or run.created_at
        if deadline is not None and now - started > deadline:
            self._kill(run)
            return self.move(run, RunState.TIMED_OUT, f"ran longer than activeDeadlineSeconds={deadline}",
                             pods=merge_pods(run.pods, [pod_summary(p) for p in pods]))
        return self._follow(run, pods, now)

    def _advance_pending(self, run: RunRecord, pods: list[Any], now: float) -> RunRecord:
        driver = _driver(pods, run)
        if driver is not None:  # submitted before a crash, or by a spark-submit still finishing: adopt, never resubmit
            self._inflight.pop(run.id, None)
            run = self.move(run, RunState.SUBMITTED, driver_pod=driver.metadata.name,
                            cluster=run.cluster or self.cluster_name)
            return self._follow(run, pods, now)
        if run.id in self._inflight:
            return run
        if run.not_before is not None and run.not_before > now:
            return run
        return self._start_submit(run)

    def _start_submit(self, run: RunRecord) -> RunRecord:
        """Hand the run's current spec to the submit pool, or fail it when its job is gone from the specs."""
        loaded = self._job(run.job)
        if loaded is None:
            return self.move(run, RunState.FAILED, f"job {run.job} is no longer defined in the specs folder")
        self._inflight[run.id] = self._pool.submit(self._submit, run, loaded.spec)
        return run

    def _submit(self, run: RunRecord, spec: Any) -> None:
        """Runs in the submit pool: build the submission and hand it to the cluster."""
        try:
            self._submit_once(run, spec)
        finally:  # the pod templates were read (into a ConfigMap, or by spark-submit): leave none behind
            workdir = getattr(self.submitter_for(run), "workdir", None)
            if workdir:
                remove_submission_files(Path(workdir), gang_name(spec.metadata.name, run.id))

    def _submit_once(self, run: RunRecord, spec: Any) -> None:
        try:
            driver = self.submitter_for(run).submit(spec, run.id)
        except SubmitError as exc:
            with self._lock:
                self._inflight.pop(run.id, None)
                current = self.store.get_run(run.id)
                if current.state is RunState.PENDING and not self.pods_for(run).run_pods(current.namespace, run.id):
                    self._fail(current, f"submission failed: {exc}")
            return
        except Exception as exc:  # a bug in submission must fail the run, not vanish in a thread
            log.exception("event=submit_crashed run=%s", run.id)
            with self._lock:
                self._inflight.pop(run.id, None)
                current = self.store.get_run(run.id)
                if current.state is RunState.PENDING:
                    self._fail(current, f"submission crashed: {exc!r}")
            return
        with self._lock:
            self._inflight.pop(run.id, None)
            current = self.store.get_run(run.id)
            if current.state is RunState.PENDING:
                self.move(current, RunState.SUBMITTED, driver_pod=driver, cluster=run.cluster or self.cluster_name)
            elif current.state is RunState.CANCELLED:  # cancelled while spark-submit ran
                self.submitter_for(run).kill(current.namespace, current.id)

    def _missing_past_grace(self, run: RunRecord, now: float) -> bool:
        """The run's driver pod has been missing for MISSING_GRACE_S (a listing may lag a creation): act on it."""
        first = self._missing_since.setdefault(run.id, now)
        if now - first < MISSING_GRACE_S:
            return False
        self._missing_since.pop(run.id, None)
        return True

    def _follow(self, run: RunRecord, pods: list[Any], now: float) -> RunRecord:
        summaries = merge_pods(run.pods, [pod_summary(p) for p in pods])
        driver = _driver(pods, run)
        if driver is None:
            if not self._missing_past_grace(run, now):
                return run
            if pods:  # executors left without their driver
                self._kill(run)
            name = run.driver_pod or driver_pod_name(run.job, run.id)
            by = self._evicted.pop(f"{run.namespace}/{name}", "")
            why = (f"evicted by {by}" if by
                   else "not found (evicted or deleted outside bigk, or the cluster was restarted)")
            return self._fail(run, f"driver pod {name} {why}", pods=summaries or run.pods)
        self._missing_since.pop(run.id, None)
        fields: dict[str, Any] = {}
        if summaries != run.pods:
            fields["pods"] = summaries
        app_id = (driver.metadata.labels or {}).get(L.SPARK_APP_SELECTOR, "")
        if app_id and app_id != run.spark_app_id:
            fields["spark_app_id"] = app_id
        phase = (driver.status.phase if driver.status is not None else None) or "Pending"
        target = _PHASE_TO_STATE.get(phase)
        if target is None and driver.spec is not None and driver.spec.node_name:
            target = RunState.ADMITTED
        if target is RunState.ADMITTED and run.state in (RunState.ADMITTED, RunState.RUNNING):
            target = None
        if target is RunState.RUNNING and run.state is RunState.RUNNING:
            target = None
        waiting = run.state is RunState.SUBMITTED and target is None  # the scheduler has not placed the gang
        never = self._never_fits(run, now) if waiting else ""
        if never:  # e.g. the nodes it needs are gone: it would wait for ever, holding a place in its queue
            self._kill(run)
            return self._fail(run, f"Unschedulable: {never}", **fields)
        explanation = (self._explain_on(run, app_id) or "") if waiting else ""
        if explanation != run.explanation:
            fields["explanation"] = explanation
        if target is None:
            return self._later(run, fields) if fields else run
        if target is RunState.FAILED:
            return self._fail(run, _failure_reason(driver), **fields)
        if target is RunState.RUNNING and run.state is RunState.SUBMITTED:
            run = self.move(run, RunState.ADMITTED, **fields)
            fields = {}
        return self.move(run, target, **fields)

    def _explain_on(self, run: RunRecord, gang: str) -> str | None:
        """Why the run's gang waits, from its own cluster's scheduler."""
        runtime = self._runtime(run)
        return runtime.explain(gang) if runtime is not None else self._explain(gang)

    def _never_fits(self, run: RunRecord, now: float) -> str:
        """The fit problem of a waiting run's job, once it has lasted NEVER_FITS_GRACE_S (nodes come and go)."""
        loaded = self._job(run.job) if self.never_fits is not None or self.never_fits_on is not None else None
        if loaded is not None and self.never_fits_on is not None and run.cluster:
            why = self.never_fits_on(loaded, run.cluster)
        else:
            why = self.never_fits(loaded) if self.never_fits is not None and loaded is not None else ""
        if not why:
            self._never_since.pop(run.id, None)
            return ""
        first = self._never_since.setdefault(run.id, now)
        if now - first < NEVER_FITS_GRACE_S:
            return ""
        self._never_since.pop(run.id, None)
        return why

    def _fail(self, run: RunRecord, reason: str, **fields: Any) -> RunRecord:
        return self.move(run, RunState.FAILED, reason, **fields)

    # ---- after a run ends ---------------------------------------------------------------------

    def _start_again(self, run: RunRecord, delay: float) -> None:
        """restartPolicy Always: a succeeded run's job starts again (a new chain: attempt 1)."""
        now = self._clock()
        again = self.store.create_run(run.job, now=now, queue=run.queue, namespace=run.namespace, trigger="restart",
                                      not_before=now + delay)
        if again is not None:
            self.store.add_event("restart", f"run {run.id} succeeded; restartPolicy Always starts {again.id} in "
                                            f"{delay:g}s", now=now, job=run.job, run_id=again.id)
            log.info("event=run_restart job=%s run=%s next=%s delay_s=%g", run.job, run.id, again.id, delay)

    def _after_terminal(self, run: RunRecord) -> None:
        loaded = self._job(run.job)
        spec = loaded.spec.spec if loaded is not None else None
        if run.state is RunState.SUCCEEDED and spec is not None and spec.restartPolicy.type == "Always":
            self._start_again(run, float(spec.restartPolicy.backoffSeconds))
        if run.state is RunState.FAILED and spec is not None:
            policy = spec.restartPolicy
            if policy.type in ("OnFailure", "Always") and run.attempt <= policy.retries:
                delay = float(policy.backoffSeconds) * (2 ** (run.attempt - 1))
                now = self._clock()
                retry = self.store.create_run(run.job, now=now, queue=run.queue, namespace=run.namespace,
                                              trigger="retry", fire_time=run.fire_time, attempt=run.attempt + 1,
                                              retry_of=run.retry_of or run.id, not_before=now + delay)
                if retry is not None:
                    self.store.add_event("retry", f"attempt {retry.attempt} of run {run.id} in {delay:g}s",
                                         now=now, job=run.job, run_id=retry.id)
                    log.info("event=run_retry job=%s run=%s retry=%s attempt=%d backoff_s=%g", run.job, run.id,
                             retry.id, retry.attempt, delay)
        self._prune(run.job, spec)

    def _prune(self, job: str, spec: Any, kill: bool = True) -> None:
        """Finished runs of `job` beyond its history limits go, with their pods unless `kill` is False."""
        if spec is not None and spec.schedule is not None:
            ok_limit, bad_limit = spec.schedule.successfulRunsHistoryLimit, spec.schedule.failedRunsHistoryLimit
        else:
            ok_limit = bad_limit = DEFAULT_HISTORY_LIMIT
        for pruned in self.store.prune(job, ok_limit, bad_limit):
            try:
                if kill:
                    self._kill(pruned)
            except Exception as exc:
                log.warning("event=prune_pods_failed run=%s error=%r", pruned.id, str(exc))
            log.info("event=run_pruned job=%s run=%s state=%s", pruned.job, pruned.id, pruned.state)


def _observe_finished(run: RunRecord, now: float) -> None:
    """A run that just ended, into the run-duration histogram (from its start, or when it was last handed on)."""
    start = run.running_at or run.submitted_at or run.created_at
    metrics.observe_run_finished(run.job, str(run.state), max(0.0, now - start))


def merge_pods(recorded: list[dict[str, Any]], current: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every pod the run ever had: current ones as they are, vanished ones kept (phase Deleted unless finished)."""
    merged = {p["name"]: p for p in current}
    for pod in recorded:
        if pod["name"] not in merged:
            done = pod.get("phase") in ("Succeeded", "Failed", "Deleted")
            merged[pod["name"]] = pod if done else {**pod, "phase": "Deleted"}
    return sorted(merged.values(), key=lambda p: (p.get("role") != "driver", p["name"]))


def _driver(pods: list[Any], run: RunRecord) -> Any | None:
    """The run's driver pod among its pods (by Spark's role label, else by the recorded name)."""
    for pod in pods:
        if (pod.metadata.labels or {}).get(L.SPARK_ROLE) == "driver":
            return pod
    for pod in pods:
        if pod.metadata.name == run.driver_pod:
            return pod
    return None


def _never_started(run: RunRecord) -> bool:
    """No pod of the run was ever bound to a node (so it never ran anywhere)."""
    return run.admitted_at is None and run.running_at is None and not any(p.get("node") for p in run.pods)


def _failure_reason(driver: Any) -> str:
    status = driver.status
    parts = []
    if status is not None:
        if status.reason:
            parts.append(status.reason)
        if status.message:
            parts.append(status.message)
        for cs in status.container_statuses or []:
            term = cs.state.terminated if cs.state is not None else None
            if term is not None and term.exit_code:
                why = f" ({term.reason})" if term.reason else ""
                parts.append(f"container {cs.name} exited {term.exit_code}{why}")
    return "driver failed" + (": " + "; ".join(parts) if parts else "")
