"""What `bigk serve` refuses before a run is created: jobs that can never fit, and piles of waiting runs.

One fit rule for `bigk validate` and `bigk serve`: `bigk.spec.fit.fit_problems`
checked against the nodes the cluster has now (the scheduler's informer cache,
else one list call). A job whose driver no node can hold, or whose gang needs
more than all eligible nodes together, gets no runs: a scheduled fire is
skipped with an event, `bigk run` is refused, and `bigk get problems` lists it
as `FILE:LINE:COL: field: message`, as validate prints it.

A cap on runs that wait to start (Pending or Submitted) per job, for scheduled
fires (`schedule.maxPendingRuns`, default 1), keeps cron from stacking up runs
that cannot start any sooner for being many.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from bigk.cluster.model import Node
from bigk.errors import BigkError
from bigk.service.runstate import RunState
from bigk.spec.fit import fit_problems
from bigk.spec.problems import SpecProblem

if TYPE_CHECKING:
    from bigk.kube.loop import SchedulerLoop
    from bigk.service.cluster_view import ClusterView

log = logging.getLogger(__name__)

NODES_TTL_S = 5.0
WAITING = (RunState.PENDING, RunState.SUBMITTED)
DEFAULT_MAX_PENDING = 1


class NeverFits(BigkError):
    """A run of a job that can never run on the cluster as it is."""


class FitGuard:
    """Fit problems of loaded jobs against the cluster's current nodes (cached a few seconds)."""

    def __init__(self, nodes: Callable[[], Sequence[Node]], clock: Callable[[], float] = time.monotonic) -> None:
        self._nodes_fn = nodes
        self._clock = clock
        self._nodes: list[Node] = []
        self._at = -1e18
        # job name -> (the loaded job, when its nodes were read, its problems): judged once per spec and node
        # listing, not once per waiting run (the queue view asks for every run of a job)
        self._judged: dict[str, tuple[Any, float, list[SpecProblem]]] = {}

    def nodes(self) -> list[Node]:
        if self._clock() - self._at > NODES_TTL_S:
            try:
                self._nodes = list(self._nodes_fn())
                self._at = self._clock()
            except Exception as exc:  # the API server hiccups: judge by the last nodes seen (or not at all)
                log.info("event=fit_nodes_unavailable error=%r", str(exc)[:200])
        return self._nodes

    def problems(self, loaded: Any) -> list[SpecProblem]:
        """The job's fit problems, located in its file; none when no nodes are known yet."""
        nodes = self.nodes()
        if not nodes:
            return []
        name = str(getattr(getattr(loaded.spec, "metadata", None), "name", ""))
        judged = self._judged.get(name)
        if judged is not None and judged[0] is loaded and judged[1] == self._at:
            return list(judged[2])
        out = []
        for where, message in fit_problems(loaded.spec, nodes):
            try:
                line, col = loaded.locate(tuple(where.split(".")), prefer_key=True)
            except Exception:
                line, col = getattr(loaded, "line", 1), 1
            out.append(SpecProblem(loaded.file, line, col, where,
                                   f"{message} (the cluster's {len(nodes)} nodes now; bigk creates no runs of it)"))
        self._judged[name] = (loaded, self._at, out)
        return list(out)

    def reason(self, loaded: Any) -> str:
        """One line on why the job can never run ('' when it can, or when that is unknown)."""
        problems = self.problems(loaded)
        if not problems:
            return ""
        first = problems[0]
        return f"it can never run on the cluster's {len(self.nodes())} nodes: {first.field}: {first.message}"

    def all_problems(self, jobs: Iterable[Any]) -> list[str]:
        return [str(p) for loaded in jobs for p in self.problems(loaded)]


def max_pending(spec: Any) -> int:
    schedule = spec.spec.schedule
    return int(getattr(schedule, "maxPendingRuns", DEFAULT_MAX_PENDING) or DEFAULT_MAX_PENDING)


def fire_refusal(guard: FitGuard | None, loaded: Any, active: Sequence[Any]) -> str:
    """Why a scheduled fire of `loaded` creates no run ('' when it may)."""
    if guard is not None:
        never = guard.reason(loaded)
        if never:
            return never
    waiting = [r for r in active if r.state in WAITING]
    cap = max_pending(loaded.spec)
    if len(waiting) >= cap:
        return (f"{len(waiting)} run(s) still waiting to start ({', '.join(r.id for r in waiting[:3])}); "
                f"schedule.maxPendingRuns is {cap}")
    return ""


def service_nodes(loop: SchedulerLoop | None, cluster: ClusterView) -> list[Node]:
    """The cluster's nodes as bigk serve knows them: the scheduler's informer cache once synced, else one list
    call."""
    if loop is not None and loop.node_informer.has_synced:
        return list(loop.cache.nodes())
    return list(cluster.model_nodes())
