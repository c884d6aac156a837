"""`bigk serve`'s composition root: builds the typed parts, starts and stops them in order.

The parts, each in its own module: the store (runs, events, history), the cluster
(embedded emulator or a real one: `ClusterView`), the catalog (hot reload), the run
life cycle (`RunManager`), cron (when a job fires) and the firing policy (what a
fire does, `firing.Firing`), the scheduler loop and its ETA board, leader election,
the read side (`views.Views`) and the operator's actions (`actions.Actions`). The
HTTP faces get them as one `parts.Parts`; tests drive the same parts in-process.

Start order matters: the store and cluster first, then the catalog, then cron
*paused* (so stored missed fire times are judged against the current specs), and
firing only once this replica leads. Other threads read the scheduler loop only
through the view it publishes after each cycle (`SchedulerLoop.view()`).
"""

from __future__ import annotations

import logging
import threading
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from kubernetes.client import ApiClient

from bigk import metrics
from bigk.cluster.model import Queue
from bigk.kube.loop_view import EMPTY_VIEW, LoopView
from bigk.service import cluster_metrics, gpu_watches, housekeeping
from bigk.service.actions import Actions
from bigk.service.catalog import Catalog
from bigk.service.cluster_fit import ClustersFit
from bigk.service.cluster_view import ClusterView
from bigk.service.clusters_api import cluster_rows
from bigk.service.config import STATE_DIR_ENV, ServiceConfig, ServiceError, default_state_dir
from bigk.service.cron import Cron
from bigk.service.dispatcher import Dispatcher
from bigk.service.firing import Firing
from bigk.service.guards import FitGuard, service_nodes
from bigk.service.lifecycle import RunManager
from bigk.service.parts import Parts
from bigk.service.runtime import DEFAULT_CLUSTER, ClusterRuntime, ClusterSource, cluster_sources
from bigk.service.store import RunRecord, Store, default_database_url
from bigk.service.views import Views

if TYPE_CHECKING:
    from bigk.emulator import EmulatedCluster
    from bigk.kube.leader import IdentityClaim, LeaderElector
    from bigk.kube.loop import SchedulerLoop
    from bigk.service.eta import EtaService
    from bigk.service.eta_boards import EtaBoards
    from bigk.spec.queues import QueueTree

__all__ = ["STATE_DIR_ENV", "Service", "ServiceConfig", "ServiceError", "default_state_dir"]

log = logging.getLogger(__name__)

CLUSTER_METRICS_EVERY_S = 5.0
DISPATCH_VIEW_EVERY_S = 1.0  # several clusters: the dispatcher reads each loop's copy of its cluster, this fresh
EVENT_RETENTION_S = housekeeping.RETENTION_S  # events and history rows older than this are deleted


class Service:
    """The long-running service; `start()` then `stop()` (also on SIGTERM via the CLI).

    The attributes name the parts started so far (None before, or where a start failed before them),
    for `stop()` and for tests; `parts` is the whole started set."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.clock = config.clock
        self.kube_url = ""
        self.started_at = 0.0
        self.store: Store | None = None
        self.emulator: EmulatedCluster | None = None
        self.api: ApiClient | None = None
        self.cluster: ClusterView | None = None
        self.catalog: Catalog | None = None
        self.runs: RunManager | None = None
        self.cron: Cron | None = None
        self.elector: LeaderElector | None = None  # the service's: cron fires and runs are acted on while it leads
        self.identity_claim: IdentityClaim | None = None
        self.loop: SchedulerLoop | None = None
        self.eta: EtaService | None = None  # home's ETA board
        self.eta_boards: EtaBoards | None = None  # every cluster's (one cluster: the one board)
        self._parts: Parts | None = None
        self._ready = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._ticker: threading.Thread | None = None
        self._core_queues: tuple[QueueTree, dict[str, Queue]] | None = None
        # One runtime per cluster (`bigk.service.runtime`), in the order declared; `home` is the first. The single
        # attributes above (api, cluster, emulator, loop, elector) are home's, as with one cluster.
        self.clusters: dict[str, ClusterRuntime] = {}
        self.home: ClusterRuntime | None = None

    @property
    def parts(self) -> Parts:
        """The started parts; a ServiceError before `start()` has finished."""
        if self._parts is None:
            raise ServiceError("bigk serve is not started")
        return self._parts

    # ---- start and stop --------------------------------------------------------------------

    def start(self) -> Service:
        cfg = self.config
        if cfg.scheduler:
            from bigk.scheduler.policies.base import policy_names

            if cfg.policy not in policy_names():
                raise ServiceError(f"--policy {cfg.policy!r}: unknown; known: {', '.join(policy_names())}")
        from bigk.service.lastgood import LastGood
        from bigk.service.private import private_dir, private_sqlite
        from bigk.spec.policy import load_policy

        spec_policy = load_policy(cfg.spec_policy)
        private_dir(cfg.state_dir)  # token, audit trail and database: the owner's alone
        self.started_at = self.clock()
        sources = cluster_sources(cfg)  # a bad clusters file fails before anything starts
        database_url = cfg.database_url or default_database_url(cfg.state_dir)
        private_sqlite(database_url)
        store = self.store = Store(database_url)
        home = self._connect_clusters(sources)
        api = self.api = home.api
        cluster = self.cluster = home.cluster
        assert api is not None and cluster is not None and home.gpu_watch is not None and home.pods is not None
        gpu_watch = home.gpu_watch
        fit = ClustersFit(self.clusters) if cfg.multicluster else FitGuard(lambda: service_nodes(self.loop, cluster))
        for runtime in self.clusters.values():
            runtime.make_submitter().policy = spec_policy  # enforced again at every submission
        submitter = home.submitter
        assert submitter is not None
        # the catalog tells the firing policy (built below: it needs the catalog) of every change, from reload() on
        catalog = self.catalog = Catalog(cfg.specs, self.clock, on_change=lambda view: firing.catalog_changed(view),
                                         poll_s=cfg.reload_s, policy=spec_policy)
        catalog.queues_from = [cfg.queues_file] if cfg.queues_file else []
        catalog.last_good = LastGood(store.engine, self.clock)  # last good spec files survive restarts
        runs = self.runs = RunManager(store, catalog.job, submitter, home.pods, self.clock,
                                      explain=lambda gang: self.loop_view().explanation(gang))
        runs.never_fits = fit.reason  # waiting runs of a job that can never fit fail as Unschedulable
        if isinstance(fit, ClustersFit):  # several clusters: each Pending run is dispatched to one
            runs.attach_clusters(self.clusters, Dispatcher(self.clusters, store, catalog.job, cfg.policy,
                                                           cfg.dispatch_hold_s),
                                 unreachable_s=cfg.cluster_unreachable_s, grace_s=cfg.cluster_lost_grace_s)
            runs.never_fits_on = fit.reason_on
        firing = Firing(store, catalog, fit, runs, self.clock, wake=self._wake.set)
        cron = self.cron = Cron(store.engine, fire=firing.fire, on_missed=firing.missed, trigger_for=cfg.trigger_for)
        firing.attach(cron)
        cron.start_paused()
        catalog.reload(force=True)  # calls firing.catalog_changed: cron's jobs match the specs before it resumes
        catalog.start()
        elector, identity_claim = self._start_leading(cron)
        self.eta_boards = self._start_scheduling(runs, store, catalog, firing, fit)
        loop_view = self.loop.view if self.loop is not None else _no_loop
        views = Views(store=store, catalog=catalog, firing=firing, fit=fit, cluster=cluster, clock=self.clock,
                      loop_view=loop_view, eta=self.eta_boards, cluster_view=self._cluster_loop_view)
        actions = Actions(store=store, catalog=catalog, fit=fit, runs=runs, cluster=cluster, firing=firing,
                          views=views, clock=self.clock, wake=self._wake.set)
        self._parts = Parts(config=cfg, clock=self.clock, kube=api, kube_url=self.kube_url,
                            started_at=self.started_at, store=store, catalog=catalog, cluster=cluster,
                            gpu_watch=gpu_watch, runs=runs, views=views, actions=actions, eta=self.eta_boards,
                            loop_view=loop_view, elector=elector, identity_claim=identity_claim,
                            stopping=self._stop, clusters=self.clusters, wake=self._wake.set)
        self._report_orphans(store)
        cluster_metrics.serve_clusters(lambda: cluster_rows(self.clusters, store))  # bigk_cluster_* on /metrics
        self._ticker = threading.Thread(target=self._tick_loop, args=(self._parts,), name="bigk-runs", daemon=True)
        self._ticker.start()
        self._ready = True
        log.info("event=serve_started cluster=%s submit_mode=%s policy=%s state=%s jobs=%d problems=%d%s",
                 self.kube_url, submitter.mode, cfg.policy, store.url.split("@")[-1],
                 len(catalog.view.jobs), len(catalog.view.problems),
                 f" clusters={','.join(self.clusters)}" if cfg.multicluster else "")
        return self

    def _connect_clusters(self, sources: list[ClusterSource]) -> ClusterRuntime:
        """One runtime per cluster, connected (emulators started); the first, home, is returned."""
        multi = self.config.multicluster
        for source in sources:
            runtime = ClusterRuntime(source, self.config, self.clock, multi=multi)
            self.clusters[runtime.name] = runtime  # before connecting: stop() stops what did start
            runtime.connect()
        home = self.home = next(iter(self.clusters.values()))
        self.emulator = home.emulator
        self.kube_url = home.kube_url
        return home

    def _report_orphans(self, store: Store) -> None:
        """Say once if a cluster has bigk run pods this store does not know (another store, a lost file)."""
        for runtime in self.clusters.values():
            try:
                assert runtime.pods is not None
                by_run = runtime.pods.pods_by_run()
            except Exception:
                continue
            unknown = sorted(r for r in by_run if store.find_run(r) is None)
            if unknown:
                where = f" cluster={runtime.name}" if self.config.multicluster else ""
                log.warning("event=orphan_run_pods%s runs=%d sample=%s hint=%r", where, len(unknown),
                            ",".join(unknown[:5]),
                            "pods labelled bigk.io/run that this state database does not know; bigk leaves them alone")

    def _start_leading(self, cron: Cron) -> tuple[LeaderElector, IdentityClaim]:
        """Leader election: cron fires and the run ticker acts only while this replica leads the service; each
        cluster's scheduling loop acts only while it leads that cluster's Lease. With one cluster the service
        leads with that Lease; with several, with a lease in the state database (`store_lease`), so that losing
        any one cluster, the first included, is losing only that cluster."""
        from bigk.kube.leader import IdentityClaim, LeaderElector

        def lead() -> None:
            log.info("event=leader_acquired identity=%s", identity_claim.identity)
            cron.resume()
            self._wake.set()

        def follow() -> None:
            log.info("event=leader_lost")
            cron.pause()

        identity_claim = self.identity_claim = IdentityClaim(self.config.state_dir)
        home = self.home
        assert home is not None
        multi = self.config.multicluster
        for runtime in self.clusters.values():
            if runtime is home and not multi:
                runtime.start_leading(identity_claim.identity, lead, follow)
            else:  # a cluster's own Lease: only its scheduling loop depends on it
                runtime.start_leading(identity_claim.identity, partial(_note, "leader_acquired", runtime.name),
                                      partial(_note, "leader_lost", runtime.name))
        if not multi:
            assert home.elector is not None
            self.elector = home.elector
            return home.elector, identity_claim
        from bigk.service.store_lease import StoreLeaseApi

        assert self.store is not None
        lease = self.config.leader_lease_s
        elector = self.elector = LeaderElector(
            None, name="bigk-serve", namespace=self.config.lease_namespace, identity=identity_claim.identity,
            lease_duration_s=lease, renew_deadline_s=lease * 2 / 3, retry_period_s=min(2.0, lease / 5),
            on_started_leading=lead, on_stopped_leading=follow, coord=StoreLeaseApi(self.store)).start()
        return elector, identity_claim

    def _start_scheduling(self, runs: RunManager, store: Store, catalog: Catalog, firing: Firing,
                          fit: FitGuard) -> EtaBoards | None:
        """A scheduler loop per cluster and an ETA board per cluster (off the scheduling threads; with several
        clusters each forecasts its own cluster's runs, `bigk.service.eta_boards`); None without `scheduler`."""
        if not self.config.scheduler:
            return None
        from bigk.service.eta import EtaService
        from bigk.service.eta_boards import EtaBoards, EtaReport, pinned_to

        view_s = CLUSTER_METRICS_EVERY_S if not self.config.multicluster else DISPATCH_VIEW_EVERY_S
        for runtime in self.clusters.values():
            runtime.start_scheduling(self.core_queues, view_s,
                                     lambda key, why: runs.note_eviction(key, f"the scheduler ({why})"))
        home = self.home
        assert home is not None and home.loop is not None and home.scheduler is not None
        self.loop = home.loop

        def board(runtime: ClusterRuntime, **extra: Any) -> EtaService:
            assert runtime.loop is not None and runtime.scheduler is not None
            return EtaService(store=store, catalog=catalog, firing=firing, loop=runtime.loop,
                              policy=self.config.policy, reservation_ttl_s=runtime.scheduler.reservation_ttl_s,
                              stale_after_s=runtime.scheduler.stale_after_s, clock=self.clock, **extra)

        if not self.config.multicluster:
            boards = EtaBoards({home.name: board(home)})
        else:  # one board per cluster over its own loop; what-if asks the dispatcher which clusters would take it
            assert isinstance(fit, ClustersFit) and runs.dispatcher is not None
            report = EtaReport()
            boards = EtaBoards({name: board(runtime, cluster=name, pinned=pinned_to(name, fit.allowed),
                                            report=report.for_cluster(name))
                                for name, runtime in self.clusters.items()},
                               multi=True, trial=runs.dispatcher.trial)
            from bigk.service.held_forecasts import HeldForecasts

            # runs held unsubmitted: forecast on every cluster that would take them; the dispatcher decides in seconds
            boards.held = HeldForecasts(boards=boards, trial=runs.dispatcher.trial, job=catalog.job,
                                        active=store.active_runs, clock=self.clock)
            runs.dispatcher.forecasts = boards.held.waits
        self.eta = boards.home
        return boards.start()

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
            if self.is_leader and self.store is not None:
                self._cancel_embedded_runs(self.store, self.runs)
        if self.eta_boards is not None:
            self.eta_boards.stop()
        runtimes = list(self.clusters.values())[::-1]  # the reverse of the start order
        for runtime in runtimes:
            runtime.stop_scheduling()
        for runtime in runtimes:
            runtime.stop_leading()
        if self.config.multicluster and self.elector is not None:  # the service's lease in the store
            self.elector.stop(release=True)
        if self.identity_claim is not None:
            self.identity_claim.release()
        for runtime in runtimes:
            runtime.stop_cluster()
        cluster_metrics.serve_clusters(None)
        if self.store is not None:
            self.store.close()
        log.info("event=serve_stopped")

    def _cancel_embedded_runs(self, store: Store, runs: RunManager) -> None:
        """An embedded cluster stops with us and takes its pods along: record that, instead of a mystery later.
        Runs not yet on any cluster go too when every cluster is embedded (as with one embedded cluster)."""
        embedded = {name for name, runtime in self.clusters.items() if runtime.emulator is not None}
        if not embedded:
            return
        every = len(embedded) == len(self.clusters)
        gone = [run for run in store.active_runs() if every or (run.cluster or DEFAULT_CLUSTER) in embedded]
        why = "bigk serve stopped, and the embedded emulated cluster with it"
        try:
            runs.cancel_all(gone, why)
        except Exception as exc:  # one run the batch cannot move: move them one by one, each on its own
            log.warning("event=cancel_on_stop_batch_failed runs=%d error=%r", len(gone), str(exc))
            for run in gone:  # the batch was rolled back: each is as it was listed
                try:
                    runs.cancel_all([run], why)
                except Exception as one:
                    log.warning("event=cancel_on_stop_failed run=%s error=%r", run.id, str(one))

    def core_queues(self) -> dict[str, Queue]:
        """The served queue tree as the scheduling core's `Queue`s (read every cycle; cheap when unchanged)."""
        tree = self.catalog.view.queues if self.catalog is not None else None
        if tree is None:
            return {}
        cached = self._core_queues
        if cached is None or cached[0] is not tree:
            cached = self._core_queues = (tree, tree.to_core())
        return cached[1]

    def _cluster_loop_view(self, name: str) -> LoopView:
        """The published view of cluster `name`'s scheduler loop (`EMPTY_VIEW` for an unknown cluster)."""
        runtime = self.clusters.get(name)
        return runtime.view() if runtime is not None else EMPTY_VIEW

    def loop_view(self) -> LoopView:
        """What the scheduler loop published after its last cycle (`EMPTY_VIEW` without a loop)."""
        return self.loop.view() if self.loop is not None else EMPTY_VIEW

    def _tick_loop(self, parts: Parts) -> None:
        last_metrics = 0.0
        last_retention = 0.0
        failing = False
        ended = took = 0.0
        while not self._stop.is_set():
            self._wake.wait(self.config.tick_s)
            # A burst of wakes (one per run created through the API) is one tick, not one each: the next tick
            # waits at least as long as the last one took, so with thousands of runs the ticker never takes
            # more than half of the interpreter from the API and the scheduler.
            rest = ended + min(took, self.config.tick_s) - time.monotonic()
            if rest > 0 and self._stop.wait(rest):
                break
            self._wake.clear()
            if self._stop.is_set():
                break
            if not self.is_leader:
                continue
            began = time.monotonic()
            try:
                parts.runs.tick()
                if failing:
                    log.info("event=runs_tick_recovered")
                failing = False
                ended = time.monotonic()
                took = ended - began
            except Exception as exc:  # API server away: say so once, not once a second
                if not failing:
                    log.warning("event=runs_tick_failed error=%r", str(exc)[:300])
                failing = True
            if time.monotonic() - last_metrics >= CLUSTER_METRICS_EVERY_S:
                last_metrics = time.monotonic()
                self._cluster_metrics()
            gpu_watches.sample_all(parts)  # every gpu_sample_s, each reachable cluster: idle, busy, over-share
            if time.monotonic() - last_retention >= housekeeping.EVERY_S:
                last_retention = time.monotonic()
                try:  # submit/ files, events and history rows stay bounded
                    housekeeping.run(parts.store, self.config.state_dir, self.clock)
                except Exception as exc:
                    log.warning("event=housekeeping_failed error=%r", str(exc)[:300])

    def _cluster_metrics(self) -> None:
        """Refresh the per-GPU, per-pool and node gauges of every cluster from the copy of its scheduler's accounted
        cluster that its loop published (this thread owns that copy; the live state stays on the loop's thread)."""
        for name, runtime in self.clusters.items():
            cluster = runtime.view().cluster
            if cluster is None:
                continue
            try:
                metrics.update_cluster(cluster, self.clock(), cluster=name)
            except Exception as exc:  # a bug in the figures must not stop the run ticker
                log.warning("event=cluster_metrics_failed cluster=%s error=%r", name, str(exc)[:300])

    # ---- status ---------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return bool(self.elector is not None and self.elector.is_leader)

    def ready(self) -> tuple[bool, dict[str, Any]]:
        checks = {"started": self._ready, "leader": self.is_leader,
                  "catalog": self.catalog is not None and self.catalog.view.loaded_at > 0}
        try:
            if self.cluster is None:
                raise ServiceError("not started")
            self.cluster.core.list_node(limit=1, _request_timeout=3)
            checks["cluster"] = True
        except Exception:
            checks["cluster"] = False
        return all(v for k, v in checks.items() if k != "leader") and checks["started"], checks

    # ---- for the CLI and tests: the started parts ----------------------------------------------

    def db(self) -> Store:
        """The store; only valid after start()."""
        return self.parts.store

    def kickoff(self) -> list[RunRecord]:
        """On a fresh store, start one run of every scheduled, unsuspended job (`Actions.kickoff`)."""
        return self.parts.actions.kickoff()

    def run_now(self, name: str, why: str = "run requested by operator") -> RunRecord:
        return self.parts.actions.run_now(name, why)

    def cordon(self, node: str, unschedulable: bool = True) -> None:
        self.parts.actions.cordon(node, unschedulable)


def _no_loop() -> LoopView:
    """The loop view of a service that runs no scheduler (`--no-scheduler`)."""
    return EMPTY_VIEW


def _note(event: str, cluster: str) -> None:
    log.info("event=%s cluster=%s", event, cluster)
