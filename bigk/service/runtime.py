"""One cluster of `bigk serve` (issue 18): its API client, scheduler loop, leader elector, submitter, pods, GPU watch.

`bigk serve` runs one `ClusterRuntime` per cluster: exactly one, named `default`, without
`--clusters` / `--emulate` (today's single cluster, built as before), else one per entry of
the clusters file (an `EmulatedCluster` for `embedded`, a kubeconfig / context / server
otherwise). Each keeps its own informers, scheduling loop and Lease; the service's
dispatcher (`bigk.service.dispatcher`) chooses one of them per run, and everything that
reads a run's pods looks its runtime up by `RunRecord.cluster`.

`reachable` is the run ticker's judgement (its pod read answered); while a cluster is
unreachable its scheduling loop is held (`LoopGate`), and it is released only after the
service reconciled the cluster's pods with the store on its return, so a driver pod of a run
that was dispatched elsewhere meanwhile is deleted before it could be bound.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from kubernetes import client
from kubernetes.client import ApiClient

from bigk.cluster.model import Node
from bigk.gpu.findings import WatchSettings
from bigk.kube.loop_view import EMPTY_VIEW, LoopView
from bigk.service.cluster_view import ClusterView
from bigk.service.config import ServiceConfig, ServiceError
from bigk.service.gpu_watch import GpuWatch
from bigk.service.submitters import ClusterPods, DirectSubmitter, RunSubmitter, SparkSubmitSubmitter

if TYPE_CHECKING:
    from bigk.cluster.model import Queue
    from bigk.emulator import EmulatedCluster
    from bigk.kube.leader import LeaderElector
    from bigk.kube.loop import SchedulerLoop
    from bigk.scheduler import Scheduler

log = logging.getLogger(__name__)

DEFAULT_CLUSTER = "default"
LIST_TIMEOUT_S = 10  # a cluster that does not answer a pod listing in this long counts as unreachable this tick


@dataclass
class ClusterSource:
    """Where one cluster is and how bigk treats it (from the clusters file, or today's options for `default`).

    nodes: the shape of an embedded emulated cluster (None: a real cluster at kubeconfig / context / server,
    or in-cluster credentials)."""

    name: str
    nodes: list[Node] | None = None
    kubeconfig: str | None = None
    context: str | None = None
    server: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    cost_tier: int = 0
    cordoned: bool = False
    queue_limits: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        return self.nodes is not None


def cluster_sources(cfg: ServiceConfig) -> list[ClusterSource]:
    """The clusters `bigk serve` runs, in the order declared (the first is home: it holds the service's Lease)."""
    from bigk.cluster.config import ClusterFileError

    if not cfg.multicluster:
        return [_default_source(cfg)]
    from bigk.spec.clusters import load_clusters

    path = cfg.clusters_file if cfg.clusters_file is not None else cfg.emulate_file
    try:
        declared = list(load_clusters(path).clusters.values())
    except ClusterFileError as exc:
        hint = "" if Path(path).exists() else "; run bigk serve from the repository root, or pass --clusters FILE"
        raise ServiceError(" ".join(str(exc).split()) + hint) from None
    if cfg.clusters_file is None:
        if cfg.emulate > len(declared):
            raise ServiceError(f"--emulate {cfg.emulate}: {path} declares {len(declared)} cluster(s) "
                               f"({', '.join(c.name for c in declared)})")
        declared = declared[:cfg.emulate]
        missing = [c.name for c in declared if c.embedded is None]
        if missing:
            raise ServiceError(f"--emulate: cluster(s) {', '.join(missing)} of {path} are not embedded")
    return [ClusterSource(c.name, list(c.nodes) if c.embedded is not None else None, c.body.kubeconfig,
                          c.body.context, c.body.server, dict(c.labels), c.cost_tier, c.body.cordoned,
                          c.queue_limits()) for c in declared]


def _default_source(cfg: ServiceConfig) -> ClusterSource:
    """Today's one cluster: the embedded emulator of `--cluster FILE`, or `--kubeconfig` / `--kube-server`."""
    if not cfg.embedded:
        return ClusterSource(DEFAULT_CLUSTER, kubeconfig=cfg.kubeconfig, server=cfg.kube_server)
    from bigk.cluster.config import ClusterFileError, load_cluster

    try:
        nodes = load_cluster(cfg.cluster_file)
    except ClusterFileError as exc:
        hint = "" if cfg.cluster_file.exists() else (
            "; run bigk serve from the repository root, or pass --cluster FILE (or --kubeconfig for a real "
            "cluster)")
        raise ServiceError(" ".join(str(exc).split()) + hint) from None
    return ClusterSource(DEFAULT_CLUSTER, nodes=nodes)


class LoopGate:
    """The elector a cluster's scheduler loop asks `is_leader`: the cluster's Lease, unless the service holds the
    loop (the cluster was unreachable and is not reconciled yet)."""

    def __init__(self, elector: LeaderElector) -> None:
        self.elector = elector
        self.identity = elector.identity
        self.held = False

    @property
    def is_leader(self) -> bool:
        return self.elector.is_leader and not self.held


class ClusterRuntime:
    """Everything `bigk serve` runs for one cluster; built by `connect()` then the `start_*` steps, stopped by
    `stop()`. Attributes are None before their step (or where a start failed before them)."""

    def __init__(self, source: ClusterSource, cfg: ServiceConfig, clock: Callable[[], float],
                 multi: bool = False) -> None:
        self.source = source
        self.name = source.name
        self.config = cfg
        self.clock = clock
        self.multi = multi  # one of several: timed listings, gated loop, own kubeconfig file name
        self.kube_url = ""
        self.emulator: EmulatedCluster | None = None
        self.api: ApiClient | None = None
        self.cluster: ClusterView | None = None
        self.pods: ClusterPods | None = None
        self.gpu_watch: GpuWatch | None = None
        self.submitter: RunSubmitter | None = None
        self.elector: LeaderElector | None = None
        self.gate: LoopGate | None = None
        self.loop: SchedulerLoop | None = None
        self.scheduler: Scheduler | None = None
        self.cordoned = source.cordoned
        self.reachable = True
        self.unreachable_since: float | None = None

    # ---- start ----------------------------------------------------------------------------------

    def connect(self) -> ApiClient:
        """Start the embedded emulator, or reach the real cluster; then the cluster view, pods reader, GPU watch."""
        cfg = self.config
        source = self.source
        if source.nodes is not None:
            try:
                from bigk.emulator import EmulatedCluster
            except ImportError as exc:  # a light install (no `bigk[emulator]` extra)
                raise ServiceError(f"the embedded emulated cluster needs {exc.name}: pip install 'bigk[emulator]', "
                                   "or give a real cluster with --kubeconfig / --in-cluster") from None
            from bigk.kube.client import api_client

            emulator = self.emulator = EmulatedCluster(source.nodes, port=0, time_scale=cfg.emulator_time_scale)
            self.kube_url = emulator.start()
            kubeconfig = cfg.state_dir / ("kubeconfig" if not self.multi else f"kubeconfig-{self.name}")
            emulator.write_kubeconfig(str(kubeconfig))
            log.info("event=emulator_started %surl=%s nodes=%d kubeconfig=%s",
                     f"cluster={self.name} " if self.multi else "", self.kube_url, len(source.nodes), kubeconfig)
            api = api_client(server=self.kube_url)
        else:
            api = _real_client(source)
            self.kube_url = api.configuration.host
        try:
            client.CoreV1Api(api).list_node(limit=1, _request_timeout=10)
        except Exception as exc:
            where = f"cluster {self.name}: " if self.multi else ""
            raise ServiceError(f"{where}cannot reach the Kubernetes API at {self.kube_url} ({short_error(exc)}); "
                               "check --kubeconfig or --kube-server" + (" (or the clusters file)" if self.multi else
                                                                         "")) from None
        self.api = api
        self.cluster = ClusterView(api, self.clock, cfg.gpu_reading_ttl_s,
                                   list_timeout_s=LIST_TIMEOUT_S if self.multi else None)
        self.pods = ClusterPods(api, LIST_TIMEOUT_S if self.multi else None)
        self.pods.follow()  # the run ticker reads them from a watch, not a listing each tick
        self.gpu_watch = GpuWatch(api, self.clock, WatchSettings(cfg.gpu_idle_minutes, cfg.gpu_idle_threshold_pct),
                                  cfg.gpu_sample_s, cluster=self.name,
                                  list_timeout_s=LIST_TIMEOUT_S if self.multi else None)
        return api

    def make_submitter(self) -> RunSubmitter:
        cfg = self.config
        assert self.api is not None
        mode = cfg.submit_mode
        if mode == "auto":
            mode = "direct" if self.source.embedded else "spark"
        master = f"k8s://{self.kube_url}"
        workdir = str(cfg.state_dir / ("submit" if not self.multi else f"submit-{self.name}"))
        if mode == "direct":
            submitter: RunSubmitter = DirectSubmitter(self.api, master, workdir)
        elif mode == "spark":
            kubeconfig = self.source.kubeconfig or cfg.kubeconfig
            submitter = SparkSubmitSubmitter(self.api, master, workdir,
                                             kubeconfig=str(Path(kubeconfig).expanduser().resolve())
                                             if kubeconfig else None)
        else:
            raise ServiceError(f"--submit-mode {mode!r}: expected auto, direct or spark")
        self.submitter = submitter
        return submitter

    def start_leading(self, identity: str, on_lead: Callable[[], None],
                      on_follow: Callable[[], None]) -> LeaderElector:
        """This cluster's Lease `bigk-serve`: its scheduling loop acts only while this replica holds it."""
        from bigk.kube.leader import LeaderElector

        assert self.api is not None
        lease = self.config.leader_lease_s
        elector = self.elector = LeaderElector(self.api, name="bigk-serve", namespace=self.config.lease_namespace,
                                               lease_duration_s=lease, renew_deadline_s=lease * 2 / 3,
                                               retry_period_s=min(2.0, lease / 5),
                                               on_started_leading=on_lead, on_stopped_leading=on_follow)
        elector.identity = identity  # the same after a restart: its own lease at once
        elector.start()
        return elector

    def start_scheduling(self, queues: Callable[[], dict[str, Queue]], cluster_view_s: float,
                         on_evicted: Callable[[str, str], None]) -> SchedulerLoop:
        """The scheduling loop over this cluster (its own informers and `Scheduler`)."""
        from bigk.kube.loop import SchedulerLoop
        from bigk.scheduler import Scheduler

        assert self.api is not None and self.elector is not None
        scheduler = self.scheduler = Scheduler(policy=self.config.policy,
                                                stale_after_s=self.config.gpu_reading_ttl_s)
        elector: LeaderElector = self.elector
        if self.multi:  # held while the cluster is unreachable and until it is reconciled
            self.gate = LoopGate(self.elector)
            elector = cast("LeaderElector", self.gate)
        loop = self.loop = SchedulerLoop(self.api, scheduler, elector=elector, clock=self.clock, queues=queues,
                                         cluster_view_s=cluster_view_s, cluster_name=self.name)
        loop.on_evicted = on_evicted
        loop.start()
        return loop

    # ---- reading -------------------------------------------------------------------------------

    def view(self) -> LoopView:
        """What this cluster's scheduler loop published after its last cycle (`EMPTY_VIEW` without one)."""
        return self.loop.view() if self.loop is not None else EMPTY_VIEW

    def explain(self, gang: str) -> str | None:
        return self.view().explanation(gang)

    def nodes(self) -> list[Node]:
        """The cluster's nodes: the scheduler's informer cache once synced, else one list call."""
        from bigk.service.guards import service_nodes

        assert self.cluster is not None
        return service_nodes(self.loop, self.cluster)

    # ---- reachability ---------------------------------------------------------------------------

    def hold(self, held: bool) -> None:
        """Hold (or release) this cluster's scheduling loop: nothing is bound or evicted there while held."""
        if self.gate is not None:
            self.gate.held = held

    # ---- stop ----------------------------------------------------------------------------------

    def stop_scheduling(self) -> None:
        if self.loop is not None:
            self.loop.stop()

    def stop_leading(self) -> None:
        if self.elector is not None:
            self.elector.stop(release=True)

    def stop_cluster(self) -> None:
        if self.pods is not None:
            self.pods.stop()
        if self.emulator is not None:
            self.emulator.stop()


def _real_client(source: ClusterSource) -> ApiClient:
    """An API client for a real cluster: its kubeconfig (and context), or its server URL, or in-cluster credentials."""
    from bigk.kube.client import api_client

    if source.context is None or source.server is not None:
        kubeconfig = str(Path(source.kubeconfig).expanduser()) if source.kubeconfig else None
        return api_client(kubeconfig=kubeconfig, server=source.server)
    from kubernetes import config as kube_config
    from kubernetes.config.config_exception import ConfigException

    cfg = client.Configuration()
    path = str(Path(source.kubeconfig).expanduser()) if source.kubeconfig else None
    try:
        kube_config.load_kube_config(config_file=path, context=source.context, client_configuration=cfg)
    except (ConfigException, OSError, ValueError) as exc:
        raise ServiceError(f"cluster {source.name}: cannot use kubeconfig {path or '(default)'} context "
                           f"{source.context}: {exc}") from None
    return client.ApiClient(cfg)


def short_error(exc: BaseException) -> str:
    """'Connection refused' out of urllib3's nested retry errors; else the exception's class and status."""
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^\"')]+)", text)
    if match:
        return match.group(1).strip()
    status = getattr(exc, "status", None)
    return f"{type(exc).__name__} {status}" if status else type(exc).__name__
