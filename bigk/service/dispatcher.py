"""Which cluster each run goes to in `bigk serve` over several clusters (issue 18, docs/multicluster.md).

Every run tick, the Pending runs still to be submitted are dispatched by the pure
dispatcher (`bigk.scheduler.dispatch.dispatch`) over one `ClusterView` per cluster,
built from that cluster's scheduler loop's published view (a copy of its accounted
state, `LoopView.cluster`, copied again here because the trial places the gang on it),
the clusters file's labels, cost tiers and per-cluster queue limits, the cordons (the
operator's, stored, win over the file's), and reachability. One tick's runs are
dispatched in order (higher priority, then older, first), each placed on its chosen
cluster's copy (`keep=True`), so two runs of one tick never count the same room.

The rule (plan item 6): submit on `fits-now`; on `soonest` keep the run Pending, and
dispatch it again next tick, until it has waited `hold_s` (then it goes to the soonest
cluster, whose scheduler holds room for it as for any head of its queue); on `none`
fail it as Unschedulable with the message, unless some cluster was left out only for
being cordoned or unreachable (then it waits for one to come back).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bigk.cluster.usage import ZERO
from bigk.scheduler.dispatch import ClusterView as DispatchView
from bigk.scheduler.dispatch import Dispatch, dispatch, need_of
from bigk.scheduler.policies.base import make_policy
from bigk.service.runstate import RunState
from bigk.service.runtime import ClusterRuntime
from bigk.service.store import RunRecord, Store
from bigk.spec.clusters import cluster_rule, dispatch_items
from bigk.spec.gang import gang_for

log = logging.getLogger(__name__)

INFLIGHT_S = 5.0  # a run submitted this recently may not be in its cluster's published copy yet: placed on it again


@dataclass(frozen=True)
class Decision:
    """What to do with one Pending run now.

    cluster: where to submit it (`submit`), or where it would go; how: the dispatcher's `fits-now`, `soonest` or
    `none`; message: `Dispatch.message()`, prefixed with why it is held or failed; fail: fail it (Unschedulable)."""

    cluster: str | None
    how: str
    message: str
    submit: bool = False
    fail: bool = False


class Dispatcher:
    """Builds the dispatcher's views from the cluster runtimes and decides each Pending run's cluster."""

    def __init__(self, runtimes: Mapping[str, ClusterRuntime], store: Store, job: Callable[[str], Any],
                 policy: str, hold_s: float) -> None:
        self.runtimes = runtimes
        self.store = store
        self._job = job
        self.policy = policy
        self.hold_s = hold_s
        # a held run's forecast waits in seconds by cluster (HeldForecasts.waits), None when it has no fresh one
        self.forecasts: Callable[[str, float], Mapping[str, float] | None] | None = None

    def cordoned(self, name: str) -> bool:
        """The operator's cordon (`bigk cordon --cluster`) when given, else the clusters file's `cordoned`."""
        override = self.store.cluster_cordons().get(name)
        return override if override is not None else self.runtimes[name].source.cordoned

    def views(self, active: Sequence[RunRecord], now: float) -> list[DispatchView]:
        """One view per cluster, in the declared order: a copy of its accounted state with the runs that were just
        submitted there placed on it, its waiting runs' demand, its queues' usage and limits."""
        cordons = self.store.cluster_cordons()
        out = []
        for name, runtime in self.runtimes.items():
            source = runtime.source
            published = runtime.view()
            reachable = runtime.reachable and published.cluster is not None  # no copy yet: its loop has not cycled
            state = published.cluster.snapshot() if published.cluster is not None else None
            view = DispatchView(
                name, state if state is not None else _empty_state(), dict(source.labels), source.cost_tier,
                cordoned=cordons.get(name, source.cordoned), reachable=reachable,
                queue_used={q: u.usage for q, u in published.queue_usage.items()},
                queue_limits=source.queue_limits, policy=make_policy(self.policy))
            if state is not None:
                self._add_submitted(view, [r for r in active if r.cluster == name], now)
            out.append(view)
        return out

    def _add_submitted(self, view: DispatchView, runs: Sequence[RunRecord], now: float) -> None:
        """Runs submitted here and not yet admitted: the newest are placed on the copy (it may predate them), every
        one counts in the cluster's queued demand (the backlog estimate)."""
        queued = ZERO
        for run in runs:
            if run.state is not RunState.SUBMITTED:
                continue
            loaded = self._job(run.job)
            if loaded is None:
                continue
            gang = gang_for(loaded.spec, run.id)
            items = dispatch_items(loaded.spec, gang)
            queued += need_of(items)
            if run.submitted_at is not None and now - run.submitted_at <= INFLIGHT_S:
                dispatch(gang, [view], items=items, now=now, keep=True)  # placed when it fits; else left off
        view.queued = queued

    def decide(self, pending: Sequence[RunRecord], active: Sequence[RunRecord], now: float) -> dict[str, Decision]:
        """A decision for every Pending run of `pending` whose job is loaded (by run id)."""
        loaded = {run.id: self._job(run.job) for run in pending}
        order = sorted((r for r in pending if loaded[r.id] is not None),
                       key=lambda r: (-int(loaded[r.id].spec.spec.priority), r.created_at, r.id))
        if not order:
            return {}
        views = self.views(active, now)
        out: dict[str, Decision] = {}
        for run in order:
            spec = loaded[run.id].spec
            gang = gang_for(spec, run.id)
            waits = self.forecasts(run.id, now) if self.forecasts is not None else None
            with expected_waits(views, waits):
                found = dispatch(gang, views, cluster_rule(spec), items=dispatch_items(spec, gang), now=now,
                                 keep=True)
            out[run.id] = self._decision(run, found, now)
        return out

    def trial(self, spec: Any, now: float) -> Dispatch:
        """What the dispatcher would find for a run of `spec` now, cluster by cluster (a what-if: the views are
        copies and nothing is kept or recorded)."""
        gang = gang_for(spec, "whatif")
        views = self.views(self.store.active_runs(), now)
        return dispatch(gang, views, cluster_rule(spec), items=dispatch_items(spec, gang), now=now)

    def _decision(self, run: RunRecord, found: Dispatch, now: float) -> Decision:
        message = found.message()
        if found.how == "fits-now":
            return Decision(found.cluster, found.how, message, submit=True)
        if found.how == "soonest":
            held = now - max(run.created_at, run.not_before or 0.0)
            if held >= self.hold_s:
                return Decision(found.cluster, found.how, f"held {held:.0f} s, the hold limit ({self.hold_s:g} s): "
                                f"sent where it should start soonest; {message}", submit=True)
            return Decision(found.cluster, found.how, f"held unsubmitted: it fits no cluster now; dispatched again "
                            f"every tick (at most {self.hold_s:g} s); {message}")
        away = [v.cluster for v in found.verdicts if v.outcome == "excluded"
                and (v.reason == "unreachable" or v.reason.startswith("cordoned"))]
        if away:
            return Decision(None, found.how, f"waiting for a cluster: {', '.join(away)} cordoned or unreachable; "
                            f"{message}")
        return Decision(None, found.how, message, fail=True)


@contextmanager
def expected_waits(views: Sequence[DispatchView], waits: Mapping[str, float] | None) -> Iterator[None]:
    """One run's forecast on the views of a tick: each named cluster's `expected_wait_s` (rounded to two
    significant figures) while the block runs, the views' own values again after it."""
    saved = [(view, view.expected_wait_s) for view in views]
    try:
        for view in views:
            if waits and view.name in waits:
                view.expected_wait_s = _rounded(waits[view.name])
        yield
    finally:
        for view, old in saved:
            view.expected_wait_s = old


def _rounded(seconds: float) -> float:
    return float(f"{max(0.0, seconds):.2g}")


def _empty_state() -> Any:
    from bigk.cluster.state import ClusterState

    return ClusterState([])
