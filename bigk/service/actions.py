"""What operators do through the API: run a job now, suspend and resume, cancel a run, cordon and drain nodes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bigk.service.catalog import Catalog
from bigk.service.cluster_view import ClusterView, UnknownNode
from bigk.service.firing import Firing
from bigk.service.guards import FitGuard, NeverFits
from bigk.service.lifecycle import RunManager
from bigk.service.store import RunRecord, Store
from bigk.service.views import Views

log = logging.getLogger(__name__)


class Actions:
    """Every change an operator can ask of a running `bigk serve`; each is recorded as an event."""

    def __init__(self, *, store: Store, catalog: Catalog, fit: FitGuard, runs: RunManager, cluster: ClusterView,
                 firing: Firing, views: Views, clock: Callable[[], float], wake: Callable[[], None]) -> None:
        self.store = store
        self.catalog = catalog
        self.fit = fit
        self.runs = runs
        self.cluster = cluster
        self.firing = firing
        self.views = views
        self.clock = clock
        self.wake = wake  # something changed: the run ticker should look at once

    def kickoff(self) -> list[RunRecord]:
        """On a fresh store, start one run of every scheduled, unsuspended job: something to watch at once."""
        if self.store.list_runs(limit=1) or self.store.history(limit=1):
            return []
        runs = []
        for name, loaded in sorted(self.catalog.view.jobs.items()):
            if loaded.spec.spec.schedule is not None and not self.firing.suspended(name) \
                    and not self.fit.reason(loaded):
                runs.append(self.run_now(name, why="kickoff: first start on a fresh state dir"))
        log.info("event=kickoff runs=%d", len(runs))
        return runs

    def run_now(self, name: str, why: str = "run requested by operator") -> RunRecord:
        loaded = self.catalog.loaded(name)
        never = self.fit.reason(loaded)
        if never:
            raise NeverFits(f"job {name}: {never}; fix the spec or add nodes")
        spec = loaded.spec
        now = self.clock()
        run = self.store.create_run(name, now=now, queue=spec.spec.queue, namespace=spec.metadata.namespace,
                                    trigger="manual")
        assert run is not None  # a manual run has no fire time, so it is never a duplicate
        self.store.add_event("fired", why, now=now, job=name, run_id=run.id)
        log.info("event=run_requested job=%s run=%s why=%r", name, run.id, why)
        self.wake()
        return run

    def set_suspended(self, name: str, suspended: bool) -> dict[str, Any]:
        self.firing.set_suspended(name, suspended)
        return self.views.job_summary(name)

    def clear_suspended(self, name: str) -> dict[str, Any]:
        """Forget the operator's suspend/resume, so the spec's own `schedule.suspend` decides again."""
        self.firing.clear_suspended(name)
        return self.views.job_summary(name)

    def cancel(self, run_id: str) -> RunRecord:
        run = self.runs.cancel(run_id)
        self.wake()
        return run

    def cordon(self, node: str, unschedulable: bool = True, on: ClusterView | None = None, where: str = "") -> None:
        """Cordon (or uncordon) `node` on `on` (default: home); `where` (" (cluster NAME)") goes into the event."""
        (on or self.cluster).cordon(node, unschedulable)
        self.store.add_event("cordon" if unschedulable else "uncordon", f"{node}{where}", now=self.clock())

    def drain(self, node: str, on: ClusterView | None = None, where: str = "") -> list[str]:
        evicted = (on or self.cluster).drain(node)
        for key in evicted:
            self.runs.note_eviction(key, f"`bigk drain {node}`")
        self.store.add_event("drain", f"{node}{where}: evicted {len(evicted)} pod(s)", now=self.clock())
        self.wake()
        return evicted

    def pool_nodes(self, pool: str, on: ClusterView | None = None) -> list[str]:
        names = (on or self.cluster).node_names(pool)
        if not names:
            raise UnknownNode(f"no nodes in pool {pool!r} (see `bigk get nodes`)")
        return names
