"""What `bigk serve` is told: `ServiceConfig` (the command line's options), and the error it fails to start with."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bigk.errors import BigkError
from bigk.service.cron import TriggerFactory, default_trigger

STATE_DIR_ENV = "BIGK_STATE_DIR"


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
    # A GPU reading older than this says nothing about the GPU now (health, live free memory): the fit rule
    # falls back to accounting alone. The scheduler, the ETA board, `get gpus` and the GPU metrics all use it.
    gpu_reading_ttl_s: float = 60.0
    # Several clusters (issue 18, docs/multicluster.md): `--clusters FILE` (a clusters file), or `--emulate N` (the
    # first N clusters of `emulate_file`, each an embedded emulated cluster). Neither: one cluster, named `default`.
    clusters_file: Path | None = None
    emulate: int = 0
    emulate_file: Path = Path("jobspecs/clusters/clusters.yaml")
    # A run that fits no cluster now stays Pending (re-dispatched every tick) at most this long, then goes to the
    # cluster where it should start soonest (docs/multicluster.md: 3,600 s matched one cluster on the replay).
    dispatch_hold_s: float = 3600.0
    # A cluster whose API does not answer for `cluster_unreachable_s` is unreachable: its runs go Unknown; after
    # `cluster_lost_grace_s` more, its runs that never started are dispatched again elsewhere.
    cluster_unreachable_s: float = 5.0
    cluster_lost_grace_s: float = 300.0

    @property
    def multicluster(self) -> bool:
        """Several clusters: `--clusters FILE` or `--emulate N` (then every run is dispatched to one of them)."""
        return self.clusters_file is not None or self.emulate > 0

    @property
    def embedded(self) -> bool:
        """No real cluster named and not running in one: the embedded emulated cluster(s)."""
        if self.clusters_file is not None:
            return self._clusters_embedded()
        return not self.kubeconfig and not self.kube_server and not self.in_cluster

    def _clusters_embedded(self) -> bool:
        """Whether every cluster of `--clusters FILE` is embedded (read once; an unreadable file: False)."""
        cached = self.__dict__.get("_all_embedded")
        if cached is None:
            from bigk.cluster.config import ClusterFileError
            from bigk.spec.clusters import load_clusters

            try:
                cached = all(c.embedded is not None for c in load_clusters(self.clusters_file or "").clusters.values())
            except ClusterFileError:
                cached = False
            self.__dict__["_all_embedded"] = cached
        return bool(cached)
