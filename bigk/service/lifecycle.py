"""Run lifecycle: submit pending runs, follow their pods, retry, time out, prune.

One `tick()` reads every active run from the store and every bigk pod from the
cluster (one list call, by the `bigk.io/run` label), and moves each run as far
as the cluster shows it has gone. Because the store and the cluster are the only
inputs, the same code rebuilds everything after a `kill -9`: a Pending run whose
driver pod already exists is marked Submitted, never submitted again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bigk import metrics
from bigk.cluster import labels as L
from bigk.service.housekeeping import remove_submission_files
from bigk.service.runstate import RunState
from bigk.service.store import RunRecord, Store
from bigk.service.submitters import ClusterPods, RunSubmitter, SubmitError, driver_pod_name, pod_summary
from bigk.spec.naming import gang_name

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
        # Why a job can never run on the cluster as it is ('' if it can): set by the service (FitGuard.reason).
        self.never_fits: Callable[[Any], str] | None = None
        self._evicted: dict[str, str] = {}  # "ns/pod" -> who evicted it, for the reason a run fails with

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
            start = updated.running_at or updated.submitted_at or updated.created_at
            metrics.observe_run_finished(run.job, str(new), max(0.0, now - start))
            self._after_terminal(updated)
        return updated

    def cancel(self, run_id: str, reason: str = "cancelled by operator") -> RunRecord:
        """Kill the run's pods (if any) and record it Cancelled; a finished run is returned unchanged."""
        with self._lock:
            run = self.store.get_run(run_id)
            if run.terminal:
                return run
            self.submitter.kill(run.namespace, run.id)
            return self.move(run, RunState.CANCELLED, reason)

    # ---- the loop body ----------------------------------------------------------------------

    def tick(self) -> None:
        """Advance every active run by what the cluster shows."""
        with self._lock:
            now = self._clock()
            by_run = self.pods.pods_by_run()
            counts: dict[tuple[str, str], int] = {}
            for run in self.store.active_runs():
                try:
                    run = self._advance(run, by_run.get(run.id, []), now)
                except Exception:  # one broken run must not stall the others
                    log.exception("event=run_advance_failed run=%s job=%s", run.id, run.job)
                if not run.terminal:
                    counts[(run.job, str(run.state))] = counts.get((run.job, str(run.state)), 0) + 1
            metrics.set_runs_current(counts)

    def _advance(self, run: RunRecord, pods: list[Any], now: float) -> RunRecord:
        if run.state is RunState.PENDING:
            return self._advance_pending(run, pods, now)
        spec = self._job(run.job)
        deadline = spec.spec.spec.activeDeadlineSeconds if spec is not None else None
        started = run.submitted_at or run.created_at
        if deadline is not None and now - started > deadline:
            self.submitter.kill(run.namespace, run.id)
            return self.move(run, RunState.TIMED_OUT, f"ran longer than activeDeadlineSeconds={deadline}",
                             pods=merge_pods(run.pods, [pod_summary(p) for p in pods]))
        return self._follow(run, pods, now)

    def _advance_pending(self, run: RunRecord, pods: list[Any], now: float) -> RunRecord:
        driver = _driver(pods, run)
        if driver is not None:  # submitted before a crash, or by a spark-submit still finishing: adopt, never resubmit
            self._inflight.pop(run.id, None)
            run = self.move(run, RunState.SUBMITTED, driver_pod=driver.metadata.name)
            return self._follow(run, pods, now)
        if run.id in self._inflight:
            return run
        if run.not_before is not None and run.not_before > now:
            return run
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
            workdir = getattr(self.submitter, "workdir", None)
            if workdir:
                remove_submission_files(Path(workdir), gang_name(spec.metadata.name, run.id))

    def _submit_once(self, run: RunRecord, spec: Any) -> None:
        try:
            driver = self.submitter.submit(spec, run.id)
        except SubmitError as exc:
            with self._lock:
                self._inflight.pop(run.id, None)
                current = self.store.get_run(run.id)
                if current.state is RunState.PENDING and not self.pods.run_pods(current.namespace, run.id):
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
                self.move(current, RunState.SUBMITTED, driver_pod=driver)
            elif current.state is RunState.CANCELLED:  # cancelled while spark-submit ran
                self.submitter.kill(current.namespace, current.id)

    def _follow(self, run: RunRecord, pods: list[Any], now: float) -> RunRecord:
        summaries = merge_pods(run.pods, [pod_summary(p) for p in pods])
        driver = _driver(pods, run)
        if driver is None:
            first = self._missing_since.setdefault(run.id, now)
            if now - first < MISSING_GRACE_S:
                return run
            self._missing_since.pop(run.id, None)
            if pods:  # executors left without their driver
                self.submitter.kill(run.namespace, run.id)
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
            self.submitter.kill(run.namespace, run.id)
            return self._fail(run, f"Unschedulable: {never}", **fields)
        explanation = (self._explain(app_id) or "") if waiting else ""
        if explanation != run.explanation:
            fields["explanation"] = explanation
        if target is None:
            return self.store.update_run(run.id, **fields) if fields else run
        if target is RunState.FAILED:
            return self._fail(run, _failure_reason(driver), **fields)
        if target is RunState.RUNNING and run.state is RunState.SUBMITTED:
            run = self.move(run, RunState.ADMITTED, **fields)
            fields = {}
        return self.move(run, target, **fields)

    def _never_fits(self, run: RunRecord, now: float) -> str:
        """The fit problem of a waiting run's job, once it has lasted NEVER_FITS_GRACE_S (nodes come and go)."""
        loaded = self._job(run.job) if self.never_fits is not None else None
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
        if spec is not None and spec.schedule is not None:
            ok_limit, bad_limit = spec.schedule.successfulRunsHistoryLimit, spec.schedule.failedRunsHistoryLimit
        else:
            ok_limit = bad_limit = DEFAULT_HISTORY_LIMIT
        for pruned in self.store.prune(run.job, ok_limit, bad_limit):
            try:
                self.submitter.kill(pruned.namespace, pruned.id)
            except Exception as exc:
                log.warning("event=prune_pods_failed run=%s error=%r", pruned.id, str(exc))
            log.info("event=run_pruned job=%s run=%s state=%s", pruned.job, pruned.id, pruned.state)


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
