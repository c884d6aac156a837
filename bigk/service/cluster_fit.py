"""The fit guard over several clusters: a job never fits only when no cluster it may go to could ever hold it.

With one cluster `bigk.service.guards.FitGuard` checks a job against that cluster's nodes.
With several, a job that fits on one cluster and on no other is fine (the dispatcher sends
it there); it is refused (no run created, a scheduled fire skipped, listed by `bigk get
problems`) only when every cluster its `clusters` / `clusterSelector` allow says no, and
then with the first allowed cluster's problems, named.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bigk.service.guards import FitGuard
from bigk.service.runtime import ClusterRuntime
from bigk.spec.clusters import cluster_rule
from bigk.spec.problems import SpecProblem


class ClustersFit(FitGuard):
    """`FitGuard` with one guard per cluster (each on its own nodes, cached as the single guard caches)."""

    def __init__(self, runtimes: Mapping[str, ClusterRuntime]) -> None:
        self.runtimes = runtimes
        self.guards = {name: FitGuard(runtime.nodes) for name, runtime in runtimes.items()}
        super().__init__(lambda: [node for guard in self.guards.values() for node in guard.nodes()])

    def allowed(self, loaded: Any) -> list[str]:
        """The clusters the job's spec allows, in the declared order."""
        rule = cluster_rule(loaded.spec)
        return [name for name, runtime in self.runtimes.items() if not rule.refusal(name, runtime.source.labels)]

    def problems(self, loaded: Any) -> list[SpecProblem]:
        allowed = self.allowed(loaded)
        if not allowed:
            rule = cluster_rule(loaded.spec)
            why = "; ".join(f"{name}: {rule.refusal(name, rt.source.labels)}" for name, rt in self.runtimes.items())
            return [SpecProblem(loaded.file, getattr(loaded, "line", 1), 1, "spec.clusters",
                                f"no served cluster is allowed ({why}); bigk creates no runs of it")]
        first: list[SpecProblem] = []
        for name in allowed:
            found = self.guards[name].problems(loaded)
            if not found:
                return []
            if not first:
                first = [SpecProblem(p.file, p.line, p.col, p.field, f"{p.message} (cluster {name}; no allowed "
                                     f"cluster can hold it: {', '.join(allowed)})") for p in found]
        return first

    def reason(self, loaded: Any) -> str:
        problems = self.problems(loaded)
        if not problems:
            return ""
        first = problems[0]
        return f"it can never run on any of its clusters: {first.field}: {first.message}"

    def reason_on(self, loaded: Any, cluster: str) -> str:
        """Why the job can never run on this one cluster ('' when it can, or when unknown)."""
        guard = self.guards.get(cluster)
        return guard.reason(loaded).replace("the cluster's", f"cluster {cluster}'s", 1) if guard is not None else ""
