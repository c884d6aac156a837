"""`bigk serve` wiring: store, cluster (embedded emulator or a real one), scheduler loop,
leader election, catalog, cron and run lifecycle, behind one `Service` object.

The HTTP API (`bigk.service.api`) only calls methods of `Service`; tests drive the
same methods in-process. Start order matters: the store and cluster first, then
the catalog, then cron *paused* (so stored missed fire times are judged against
the current specs), and firing only once this replica leads.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bigk import metrics
from bigk.errors import BigkError
from bigk.gpu.findings import WatchSettings
from bigk.service import housekeeping
from bigk.service.catalog import Catalog, CatalogView
from bigk.service.cluster_view import ClusterView
from bigk.service.cron import Cron, TriggerFactory, default_trigger
from bigk.service.gpu_watch import GpuWatch
from bigk.service.guards import FitGuard, NeverFits, fire_refusal, service_nodes
from bigk.service.lifecycle import RunManager
from bigk.service.runstate import RunState
from bigk.service.store import RunRecord, Store, default_database_url
from bigk.service.submitters import ClusterPods, DirectSubmitter, RunSubmitter, SparkSubmitSubmitter
from bigk.service.views import UnknownJob, Views

log = logging.getLogger(__name__)

STATE_DIR_ENV = "BIGK_STATE_DIR"
CLUSTER_METRICS_EVERY_S = 5.0
EVENT_RETENTION_S = housekeeping.RETENTION_S  # events and history rows older than this are deleted


class ServiceError(BigkError):
    """The service cannot start (cluster unreachable, bad options)."""


def default_state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV) or ".bigk")


@dataclass
class ServiceConfig:
    specs: list[Path] = field(default_factory=lambda: [Path("jobspecs")])
    cluster_file: Path = Path("jobspecs/cluster.yaml")
    kubeconfig: str | None = None
    kube_server: str | None = None
    policy: str = "bigk"
    state_dir: Path = field(default_factory=default_state_dir)
    database_url: str | None = None
    submit_mode: str = "auto"  # auto: direct on the embedded emulator, spark on a real cluster
    tick_s: float = 1.0
    reload_s: float = 2.0
    scheduler: bool = True  # run the scheduling loop (bind pods) in this process
    trigger_for: TriggerFactory = default_trigger
    clock: Callable[[], float] = time.time
    leader_lease_s: float = 15.0
    # The leader Lease lives in bigk's own namespace (the pod's, from the downward API), so the chart
    # grants leases there only.
    lease_namespace: str = field(default_factory=lambda: os.environ.get("POD_NAMESPACE") or "default")
    emulator_time_scale: float = 1.0
    queues_file: Path | None = None  # `--queues FILE` (Helm's queues values): the only source of queues when set

    in_cluster: bool = False  # use the pod's service account (bigk deployed in Kubernetes)
    spec_policy: Path | None = None  # the install's spec policy file (else $BIGK_SPEC_POLICY, else built-in)
    allowed_hosts: list[str] = field(default_factory=list)  # Host header names the API answers (besides IPs)
    # The GPU watch (bigk.service.gpu_watch): idle = below the threshold for this many minutes of readings.
    gpu_idle_minutes: float = 10.0
    gpu_idle_threshold_pct: float = 5.0
    gpu_sample_s: float = 10.0

    @property
    def embedded(self) -> bool:
        """No cluster named and not running in one: start the embedded emulated cluster."""
        return not self.kubeconfig and not self.kube_server and not self.in_cluster


class Service:
    """The long-running service; `start()` then `stop()` (also on SIGTERM via the CLI)."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.clock = config.clock
        self.store: Store | None = None
        self.emulator: Any = None
        self.kube_url = ""
        self.api: Any = None
        self.catalog: Catalog | None = None
        self.cron: Cron | None = None
        self.runs: RunManager | None = None
        self.cluster: ClusterView | None = None
        self.gpu_watch: GpuWatch | None = None
        self.loop: Any = None
        self.eta: Any = None  # bigk.service.eta.EtaService, with the scheduling loop
        self.elector: Any = None
        self.submitter: RunSubmitter | None = None
        self.spec_policy: Any = None  # bigk.spec.policy.SpecPolicy, loaded at start
        self.started_at = 0.0
        self._ready = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._ticker: threading.Thread | None = None
        self._fire_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._core_queues: tuple[Any, dict[str, Any]] | None = None
        self.views = Views(self)

    # ---- start and stop --------------------------------------------------------------------

    def start(self) -> Service:
        cfg = self.config
        if cfg.scheduler:
            from bigk.scheduler.policies.base import policy_names

            if cfg.policy not in policy_names():
                raise ServiceError(f"--policy {cfg.policy!r}: unknown; known: {', '.join(policy_names())}")
        from bigk.service.private import private_dir, private_sqlite
        from bigk.spec.policy import load_policy

        self.spec_policy = load_policy(cfg.spec_policy)
        private_dir(cfg.state_dir)  # token, audit trail and database: the owner's alone
        self.started_at = self.clock()
        database_url = cfg.database_url or default_database_url(cfg.state_dir)
        private_sqlite(database_url)
        self.store = Store(database_url)
        self._connect_cluster()
        self.cluster = ClusterView(self.api, self.clock)
        self.gpu_watch = GpuWatch(self.api, self.clock, WatchSettings(cfg.gpu_idle_minutes, cfg.gpu_idle_threshold_pct),
                                  cfg.gpu_sample_s)
        self.fit = FitGuard(lambda: service_nodes(self))
        self.submitter = self._make_submitter()
        self.submitter.policy = self.spec_policy  # enforced again at every submission
        self.catalog = Catalog(cfg.specs, self.clock, on_change=self._catalog_changed, poll_s=cfg.reload_s,
                               policy=self.spec_policy)
        self.catalog.queues_from = [cfg.queues_file] if cfg.queues_file else []
        from bigk.service.lastgood import LastGood

        self.catalog.last_good = LastGood(self.store.engine, self.clock)  # last good spec files survive restarts
        self.runs = RunManager(self.store, self.catalog.job, self.submitter, ClusterPods(self.api), self.clock,
                               explain=self.views.explanation_for)
        self.runs.never_fits = self.fit.reason  # waiting runs of a job that can never fit fail as Unschedulable
        self.cron = Cron(self.store.engine, fire=self.fire, on_missed=self._missed, trigger_for=cfg.trigger_for)
        self.cron.start_paused()
        self.catalog.reload(force=True)
        self.catalog.start()
        self._start_scheduling()
        self._report_orphans()
        self._ticker = threading.Thread(target=self._tick_loop, name="bigk-runs", daemon=True)
        self._ticker.start()
        self._ready = True
        log.info("event=serve_started cluster=%s submit_mode=%s policy=%s state=%s jobs=%d problems=%d",
                 self.kube_url, self.submitter.mode, cfg.policy, self.store.url.split("@")[-1],
                 len(self.catalog.view.jobs), len(self.catalog.view.problems))
        return self

    def _connect_cluster(self) -> None:
        from bigk.kube.client import api_client

        cfg = self.config
        if cfg.embedded:
            from bigk.cluster.config import ClusterFileError, load_cluster
            try:
                from bigk.emulator import EmulatedCluster
            except ImportError as exc:  # a light install (no `bigk[emulator]` extra)
                raise ServiceError(f"the embedded emulated cluster needs {exc.name}: pip install 'bigk[emulator]', "
                                   "or give a real cluster with --kubeconfig / --in-cluster") from None

            try:
                nodes = load_cluster(cfg.cluster_file)
            except ClusterFileError as exc:
                hint = "" if cfg.cluster_file.exists() else (
                    "; run bigk serve from the repository root, or pass --cluster FILE (or --kubeconfig for a real "
                    "cluster)")
                raise ServiceError(" ".join(str(exc).split()) + hint) from None
            self.emulator = EmulatedCluster(nodes, port=0, time_scale=cfg.emulator_time_scale)
            self.kube_url = self.emulator.start()
            kubeconfig = cfg.state_dir / "kubeconfig"
            self.emulator.write_kubeconfig(str(kubeconfig))
            log.info("event=emulator_started url=%s nodes=%d kubeconfig=%s", self.kube_url, len(nodes), kubeconfig)
            self.api = api_client(server=self.kube_url)
        else:
            self.api = api_client(kubeconfig=cfg.kubeconfig, server=cfg.kube_server)
            self.kube_url = self.api.configuration.host
        from kubernetes import client

        try:
            client.CoreV1Api(self.api).list_node(limit=1, _request_timeout=10)
        except Exception as exc:
            raise ServiceError(f"cannot reach the Kubernetes API at {self.kube_url} ({_short_error(exc)}); check "
                               "--kubeconfig or --kube-server") from None

    def _report_orphans(self) -> None:
        """Say once if the cluster has bigk run pods this store does not know (another store, a lost file)."""
        assert self.runs is not None and self.store is not None
        try:
            by_run = self.runs.pods.pods_by_run()
        except Exception:
            return
        unknown = sorted(r for r in by_run if self.store.find_run(r) is None)
        if unknown:
            log.warning("event=orphan_run_pods runs=%d sample=%s hint=%r", len(unknown), ",".join(unknown[:5]),
                        "pods labelled bigk.io/run that this state database does not know; bigk leaves them alone")

    def _make_submitter(self) -> RunSubmitter:
        mode = self.config.submit_mode
        if mode == "auto":
            mode = "direct" if self.config.embedded else "spark"
        master = f"k8s://{self.kube_url}"
        workdir = str(self.config.state_dir / "submit")
        if mode == "direct":
            return DirectSubmitter(self.api, master, workdir)
        if mode == "spark":
            kubeconfig = str(Path(self.config.kubeconfig).resolve()) if self.config.kubeconfig else None
            return SparkSubmitSubmitter(self.api, master, workdir, kubeconfig=kubeconfig)
        raise ServiceError(f"--submit-mode {mode!r}: expected auto, direct or spark")

    def _start_scheduling(self) -> None:
        from bigk.kube.leader import IdentityClaim, LeaderElector

        assert self.cron is not None
        cron = self.cron

        def lead() -> None:
            log.info("event=leader_acquired identity=%s", self.elector.identity if self.elector else "-")
            cron.resume()
            self._wake.set()

        def follow() -> None:
            log.info("event=leader_lost")
            cron.pause()

        self.identity_claim = IdentityClaim(self.config.state_dir)
        lease = self.config.leader_lease_s
        self.elector = LeaderElector(self.api, name="bigk-serve", namespace=self.config.lease_namespace,
                                     lease_duration_s=lease,
                                     renew_deadline_s=lease * 2 / 3, retry_period_s=min(2.0, lease / 5),
                                     on_started_leading=lead, on_stopped_leading=follow)
        self.elector.identity = self.identity_claim.identity  # the same after a restart: its own lease at once
        self.elector.start()
        if self.config.scheduler:
            from bigk.kube.loop import SchedulerLoop
            from bigk.scheduler import Scheduler

            self.loop = SchedulerLoop(self.api, Scheduler(policy=self.config.policy), elector=self.elector,
                                      clock=self.clock, queues=self.core_queues)
            runs = self.runs
            if runs is not None:  # a run whose driver the scheduler evicted fails saying why
                self.loop.on_evicted = lambda key, why: runs.note_eviction(key, f"the scheduler ({why})")
            self.loop.start()
            from bigk.service.eta import EtaService

            self.eta = EtaService(self).start()  # start-time estimates, off the scheduling thread

    def stop(self) -> None:
        """Graceful stop: stop firing, let submissions finish and be recorded, release leadership."""
        log.info("event=serve_stopping")
        self._ready = False
        if self.cron is not None:
            self.cron.shutdown()
        if self.catalog is not None:
            self.catalog.stop()
        self._stop.set()
        self._wake.set()
        if self._ticker is not None:
            self._ticker.join(timeout=10)
        if self.runs is not None:
            self.runs.shutdown()
            if self.emulator is not None and self.is_leader:
                self._cancel_embedded_runs()
        if self.eta is not None:
            self.eta.stop()
        if self.loop is not None:
            self.loop.stop()
        if self.elector is not None:
            self.elector.stop(release=True)
            self.identity_claim.release()
        if self.emulator is not None:
            self.emulator.stop()
        if self.store is not None:
            self.store.close()
        log.info("event=serve_stopped")

    def core_queues(self) -> dict[str, Any]:
        """The served queue tree as the scheduling core's `Queue`s (read every cycle; cheap when unchanged)."""
        tree = self.catalog.view.queues if self.catalog is not None else None
        if tree is None:
            return {}
        cached = self._core_queues
        if cached is None or cached[0] is not tree:
            cached = self._core_queues = (tree, tree.to_core())
        return cached[1]

    def _cancel_embedded_runs(self) -> None:
        """The embedded cluster stops with us and takes its pods along: record that, instead of a mystery later."""
        assert self.runs is not None and self.store is not None
        for run in self.store.active_runs():
            try:
                self.runs.move(run, RunState.CANCELLED, "bigk serve stopped, and the embedded emulated cluster "
                                                        "with it")
            except Exception as exc:
                log.warning("event=cancel_on_stop_failed run=%s error=%r", run.id, str(exc))

    def _tick_loop(self) -> None:
        last_metrics = 0.0
        last_retention = 0.0
        failing = False
        while not self._stop.is_set():
            self._wake.wait(self.config.tick_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            if not self.is_leader:
                continue
            try:
                assert self.runs is not None
                self.runs.tick()
                if failing:
                    log.info("event=runs_tick_recovered")
                failing = False
            except Exception as exc:  # API server away: say so once, not once a second
                if not failing:
                    log.warning("event=runs_tick_failed error=%r", str(exc)[:300])
                failing = True
            if time.monotonic() - last_metrics >= CLUSTER_METRICS_EVERY_S:
                last_metrics = time.monotonic()
                self._cluster_metrics()
            if self.gpu_watch is not None:
                self.gpu_watch.maybe_sample()  # every gpu_sample_s: idle, busy-without-bigk, over-share GPUs
            if time.monotonic() - last_retention >= housekeeping.EVERY_S:
                last_retention = time.monotonic()
                try:  # submit/ files, events and history rows stay bounded
                    housekeeping.run(self)
                except Exception as exc:
                    log.warning("event=housekeeping_failed error=%r", str(exc)[:300])

    def _cluster_metrics(self) -> None:
        """Refresh the per-GPU, per-pool and node gauges from the scheduler's own view of the cluster."""
        state = getattr(getattr(self.loop, "scheduler", None), "state", None)
        if state is None:
            return
        try:
            metrics.update_cluster(state.snapshot(), self.clock())
        except Exception as exc:  # the loop may be rebuilding its arrays this very moment: next time
            log.debug("event=cluster_metrics_skipped error=%r", str(exc))

    # ---- status ---------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return bool(self.elector is not None and self.elector.is_leader)

    def ready(self) -> tuple[bool, dict[str, Any]]:
        checks = {"started": self._ready, "leader": self.is_leader,
                  "catalog": self.catalog is not None and self.catalog.view.loaded_at > 0}
        try:
            assert self.cluster is not None
            self.cluster.core.list_node(limit=1, _request_timeout=3)
            checks["cluster"] = True
        except Exception:
            checks["cluster"] = False
        return all(v for k, v in checks.items() if k != "leader") and checks["started"], checks

    # ---- catalog and cron ------------------------------------------------------------------

    def db(self) -> Store:
        """The store; only valid after start()."""
        assert self.store is not None
        return self.store

    def specs(self) -> Catalog:
        """The job catalog; only valid after start()."""
        assert self.catalog is not None
        return self.catalog

    def _catalog_changed(self, view: CatalogView) -> None:
        now = self.clock()
        metrics.declare_scheduled_jobs(n for n, j in view.jobs.items() if j.spec.spec.schedule is not None)
        for problem in view.problems:
            self.db().add_event("spec_problem", str(problem), now=now)
        self._sync_cron(view)

    def _sync_cron(self, view: CatalogView | None = None) -> None:
        view = view or self.specs().view
        with self._sync_lock:
            if self.cron is None:
                return
            specs = {name: loaded.spec for name, loaded in view.jobs.items()}
            self.cron.sync(specs, {name: self.suspended(name) for name in specs})

    def suspended(self, job: str) -> bool:
        """The effective flag: an operator's suspend/resume wins over the spec's `schedule.suspend`."""
        override = self.db().suspended_overrides().get(job)
        if override is not None:
            return override
        loaded = self.specs().job(job)
        schedule = loaded.spec.spec.schedule if loaded is not None else None
        return bool(schedule is not None and schedule.suspend)

    def fire(self, job: str, fire_time: float) -> None:
        """Called by cron for one (coalesced) fire time; applies suspend and concurrencyPolicy."""
        store = self.db()
        with self._fire_lock:
            now = self.clock()
            loaded = self.specs().job(job)
            if loaded is None or loaded.spec.spec.schedule is None:
                log.warning("event=fire_ignored job=%s reason=no_schedule", job)
                return
            spec = loaded.spec
            schedule = spec.spec.schedule
            last = store.last_fire(job)
            store.mark_fire(job, fire_time, now=now)
            if last is not None and self.cron is not None:
                skipped = [t for t in self.cron.fire_times_between(spec, last, fire_time) if t < fire_time]
                if skipped:
                    msg = f"{len(skipped)} missed fire time(s) coalesced into the fire at {_iso(fire_time)}"
                    store.add_event("coalesced", msg, now=now, job=job)
                    log.warning("event=fires_coalesced job=%s count=%d fire_time=%s", job, len(skipped),
                                _iso(fire_time))
            if store.fire_recorded(job, fire_time):
                log.info("event=fire_duplicate job=%s fire_time=%s", job, _iso(fire_time))
                return
            if self.suspended(job):
                store.add_event("skipped", f"fire at {_iso(fire_time)} skipped: job is suspended", now=now, job=job)
                return
            active = store.active_runs(job)
            policy = schedule.concurrencyPolicy
            refused = fire_refusal(self.fit, loaded, active if policy == "Allow" else ())
            if refused:  # never fits, or enough runs already wait to start
                store.add_event("skipped", f"fire at {_iso(fire_time)} skipped: {refused}", now=now, job=job)
                log.info("event=fire_skipped job=%s fire_time=%s reason=%r", job, _iso(fire_time), refused)
                return
            if policy == "Forbid" and active:
                msg = f"fire at {_iso(fire_time)} skipped: concurrencyPolicy Forbid and run {active[0].id} is active"
                store.add_event("skipped", msg, now=now, job=job, run_id=active[0].id)
                log.info("event=fire_skipped job=%s fire_time=%s reason=forbid active=%s", job, _iso(fire_time),
                         active[0].id)
                return
            if policy == "Replace":  # cancel first: never two active runs of a Replace job
                assert self.runs is not None
                for old in active:
                    self.runs.cancel(old.id, reason=f"replaced by the fire at {_iso(fire_time)} "
                                                    "(concurrencyPolicy Replace)")
            run = store.create_run(job, now=now, queue=spec.spec.queue, namespace=spec.metadata.namespace,
                                   trigger="schedule", fire_time=fire_time)
            if run is None:
                return
            lateness = now - fire_time
            store.add_event("fired", f"scheduled fire at {_iso(fire_time)} (late by {lateness:.1f}s)", now=now,
                            job=job, run_id=run.id)
            log.info("event=run_fired job=%s run=%s fire_time=%s late_s=%.1f", job, run.id, _iso(fire_time), lateness)
        self._wake.set()

    def _missed(self, job: str, fire_time: float) -> None:
        now = self.clock()
        store = self.db()
        store.mark_fire(job, fire_time, now=now)
        msg = f"fire at {_iso(fire_time)} missed: {now - fire_time:.0f}s late, beyond startingDeadlineSeconds"
        store.add_event("missed", msg, now=now, job=job)
        metrics.record_run_missed(job)
        log.warning("event=fire_missed job=%s fire_time=%s late_s=%.0f", job, _iso(fire_time), now - fire_time)

    # ---- actions --------------------------------------------------------------------------

    def loaded_job(self, name: str) -> Any:
        """The catalog entry of job `name` (LoadedJob); UnknownJob (not found) if there is none."""
        loaded = self.specs().job(name)
        if loaded is None:
            raise UnknownJob(f"no job {name!r} (list them with `bigk get jobs`)")
        return loaded

    def kickoff(self) -> list[RunRecord]:
        """On a fresh store, start one run of every scheduled, unsuspended job: something to watch at once."""
        store = self.db()
        if store.list_runs(limit=1) or store.history(limit=1):
            return []
        runs = []
        for name, loaded in sorted(self.specs().view.jobs.items()):
            if loaded.spec.spec.schedule is not None and not self.suspended(name) and not self.fit.reason(loaded):
                runs.append(self.run_now(name, why="kickoff: first start on a fresh state dir"))
        log.info("event=kickoff runs=%d", len(runs))
        return runs

    def run_now(self, name: str, why: str = "run requested by operator") -> RunRecord:
        spec = self.loaded_job(name).spec
        never = self.fit.reason(self.loaded_job(name))
        if never:
            raise NeverFits(f"job {name}: {never}; fix the spec or add nodes")
        now = self.clock()
        run = self.db().create_run(name, now=now, queue=spec.spec.queue, namespace=spec.metadata.namespace,
                                       trigger="manual")
        assert run is not None
        self.db().add_event("fired", why, now=now, job=name, run_id=run.id)
        log.info("event=run_requested job=%s run=%s why=%r", name, run.id, why)
        self._wake.set()
        return run

    def set_suspended(self, name: str, suspended: bool) -> dict[str, Any]:
        if self.loaded_job(name).spec.spec.schedule is None:
            raise BigkError(f"job {name} has no schedule, so there is nothing to {'suspend' if suspended else 'resume'}"
                            f" (it runs only with `bigk run {name}`)")
        now = self.clock()
        self.db().set_suspended(name, suspended, now=now)
        self.db().add_event("suspend" if suspended else "resume", "by operator", now=now, job=name)
        log.info("event=job_%s job=%s", "suspended" if suspended else "resumed", name)
        self._sync_cron()
        return self.views.job_summary(name)

    def clear_suspended(self, name: str) -> dict[str, Any]:
        """Forget the operator's suspend/resume, so the spec's own `schedule.suspend` decides again."""
        self.loaded_job(name)
        now = self.clock()
        self.db().clear_override(name)
        effective = "suspended" if self.suspended(name) else "not suspended"
        self.db().add_event("resume", f"by operator: override cleared, the spec decides ({effective})", now=now,
                            job=name)
        log.info("event=job_suspend_cleared job=%s effective=%s", name, effective.replace(" ", "_"))
        self._sync_cron()
        return self.views.job_summary(name)

    def cancel(self, run_id: str) -> RunRecord:
        assert self.runs is not None
        run = self.runs.cancel(run_id)
        self._wake.set()
        return run

    def cordon(self, node: str, unschedulable: bool = True) -> None:
        assert self.cluster is not None
        self.cluster.cordon(node, unschedulable)
        self.db().add_event("cordon" if unschedulable else "uncordon", node, now=self.clock())

    def drain(self, node: str) -> list[str]:
        assert self.cluster is not None
        evicted = self.cluster.drain(node)
        if self.runs is not None:
            for key in evicted:
                self.runs.note_eviction(key, f"`bigk drain {node}`")
        self.db().add_event("drain", f"{node}: evicted {len(evicted)} pod(s)", now=self.clock())
        self._wake.set()
        return evicted

    def pool_nodes(self, pool: str) -> list[str]:
        assert self.cluster is not None
        names = self.cluster.node_names(pool)
        if not names:
            raise UnknownJob(f"no nodes in pool {pool!r} (see `bigk get nodes`)")
        return names


def _short_error(exc: BaseException) -> str:
    """'Connection refused' out of urllib3's nested retry errors; else the exception's class and status."""
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^\"')]+)", text)
    if match:
        return match.group(1).strip()
    status = getattr(exc, "status", None)
    return f"{type(exc).__name__} {status}" if status else type(exc).__name__


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
