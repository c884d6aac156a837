"""The typed parts of a started `bigk serve`, and the Protocol the HTTP faces are written against.

`bigk.service.app.Service` (the composition root) builds every part in `start()` and
hands the faces (`api`, the `*_api` routers, the status page, the watch stream) one
`Parts`: they read and act through it, never through the `Service` itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubernetes.client import ApiClient

from bigk.kube.leader import IdentityClaim, LeaderElector
from bigk.kube.loop_view import LoopView
from bigk.service.actions import Actions
from bigk.service.catalog import Catalog
from bigk.service.cluster_view import ClusterView
from bigk.service.config import ServiceConfig
from bigk.service.eta_boards import EtaBoards
from bigk.service.gpu_watch import GpuWatch
from bigk.service.lifecycle import RunManager
from bigk.service.runtime import ClusterRuntime
from bigk.service.store import Store
from bigk.service.views import Views


@dataclass(frozen=True)
class Parts:
    """What a started service is made of.

    kube: the Kubernetes API client (of the embedded emulator, or the real cluster at `kube_url`).
    eta: the start-time estimates, one board per cluster (`EtaBoards`: name -> EtaService, home first and
        the default; one cluster: one board for every run); None when this process runs no scheduler.
    loop_view: the scheduler loop's last published view (`EMPTY_VIEW` without a loop).
    stopping: set once the service is stopping (long-lived streams end).
    clusters: every cluster's runtime by name, in the declared order (one, `default`, unless several are run);
        kube, cluster and gpu_watch are the first's (home).
    wake: tell the run ticker to look at once (a cordon changed where runs may go).
    """

    config: ServiceConfig
    clock: Callable[[], float]
    kube: ApiClient
    kube_url: str
    started_at: float
    store: Store
    catalog: Catalog
    cluster: ClusterView
    gpu_watch: GpuWatch
    runs: RunManager
    views: Views
    actions: Actions
    eta: EtaBoards | None
    loop_view: Callable[[], LoopView]
    elector: LeaderElector
    identity_claim: IdentityClaim
    stopping: threading.Event
    clusters: Mapping[str, ClusterRuntime] = field(default_factory=dict)
    wake: Callable[[], None] = lambda: None


class Served(Protocol):
    """What the HTTP API needs of a started service."""

    @property
    def parts(self) -> Parts: ...

    def ready(self) -> tuple[bool, dict[str, Any]]: ...  # (ready, the checks behind it) for /readyz
