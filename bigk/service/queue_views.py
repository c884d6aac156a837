"""What operators see of queues: the tree with guarantee, maximum, usage, borrowing, share and runs.

Declarations come from the served catalog (the spec repo's `kind: Queue`
documents, or `--queues`); usage and shares from the scheduler loops' last
cycles (bound pods plus reservations, each queue counting its whole subtree);
running and pending runs from the store. Queues that pods name but nobody
declared show too (weight 1, no limits), so nothing in use is hidden.

Per-model GPU quotas show under `gpuByModel` in guarantee, max, allocated and
borrowed, keyed by the model names the queue declares (allocated sums the GPU
products each name matches); `allocated.gpuByProduct` says which products the
queue's GPUs are actually on.

Several clusters (issue 18, docs/multicluster.md "Queues over several clusters"): every cluster's
scheduler applies the whole tree to its own cluster, so a queue's guarantee and maximum hold in each
cluster, and the clusters file's `queues:` caps a queue in one cluster (the dispatcher checks it). A
row then sums the clusters in scope: `allocated` is the sum, `borrowed` the sum of what each cluster
lends it beyond its guarantee, `cluster` the clusters' capacity together, and `dominant_share` is
`share_of` over those sums: the queue's usage over the clusters' total capacity, largest of CPU,
memory and GPUs (as a MultiKueue manager counts a workload against its ClusterQueue wherever it
runs). `clusters` breaks it down per cluster: that cluster's allocation, borrowing, share (what its
own scheduler orders queues by), capacity, its `max` from the clusters file, waiting gangs and runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bigk.cluster.usage import RESOURCES, ZERO, Usage
from bigk.errors import NotFound
from bigk.kube.loop_view import LoopView
from bigk.service.catalog import Catalog
from bigk.service.runstate import RunState
from bigk.service.store import Store

if TYPE_CHECKING:
    from bigk.service.parts import Parts

_WAITING = (RunState.PENDING, RunState.SUBMITTED, RunState.ADMITTED)


class UnknownQueue(NotFound):
    pass


@dataclass(frozen=True)
class QueueCluster:
    """One cluster as the queue tree reads it: its scheduler's last view and its queue limits from the clusters
    file (queue -> {"cpu": milli, "memory": MiB, "gpu": milli})."""

    name: str
    view: LoopView
    limits: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    reachable: bool = True


@dataclass(frozen=True)
class QueueScope:
    """The clusters a queue listing covers.

    every: all of the service's clusters (then runs not dispatched to any cluster yet count too).
    several: the service runs several clusters: each row carries its per-cluster breakdown (`clusters`).
    """

    clusters: tuple[QueueCluster, ...]
    every: bool = True
    several: bool = False

    @classmethod
    def one(cls, view: LoopView) -> QueueScope:
        """One cluster's scheduler (the service over one cluster, or a caller without runtimes)."""
        return cls((QueueCluster("", view),))


def queue_scope(parts: Parts, cluster: str | None = None) -> QueueScope:
    """Every cluster the service runs, or only `cluster` (an unknown name is `NotFound`); one cluster: its loop
    alone, no breakdown, as before several clusters existed."""
    from bigk.service.clusters_api import UnknownCluster
    from bigk.service.runtime import DEFAULT_CLUSTER

    runtimes = parts.clusters
    known = list(runtimes) or [DEFAULT_CLUSTER]
    if cluster is not None and cluster not in known:
        raise UnknownCluster(f"no cluster {cluster!r}; this bigk serve runs {', '.join(known)} "
                             "(see `bigk get clusters`)")
    if len(runtimes) <= 1:
        return QueueScope.one(parts.loop_view())
    members = tuple(QueueCluster(name, rt.view(), rt.source.queue_limits, rt.reachable)
                    for name, rt in runtimes.items() if cluster is None or name == cluster)
    return QueueScope(members, every=cluster is None, several=True)


def share_of(usage: Usage, totals: tuple[int, int, int]) -> float:
    """A queue's dominant share: the largest of CPU, memory and GPUs as a fraction of `totals` (one cluster's, or
    several clusters' summed). The one rule for the queue views; over one cluster it is its scheduler's figure."""
    return max((u / t if t else 0.0) for u, t in zip(usage.triple(), totals, strict=True))


def _human(resource: str, value: int | None) -> float | None:
    """Core units -> what people read: CPU cores, memory GiB, GPUs."""
    if value is None:
        return None
    if resource == "memory":
        return round(value / 1024, 3)
    return round(value / 1000, 3)


def _resources(values: Mapping[str, int], models: dict[str, int] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {r: _human(r, values[r]) for r in RESOURCES if r in values}
    if models:
        out["gpuByModel"] = {m: _human("gpu", v) for m, v in sorted(models.items())}
    return out


def _in(queue: str, name: str) -> bool:
    """Whether `queue` is `name` or in its subtree."""
    return queue == name or queue.startswith(name + ".")


def _allocated(full: Usage, on_models: dict[str, int]) -> dict[str, Any]:
    row = _resources(full.as_dict(), on_models)
    if on_models and "gpuByModel" not in row:
        row["gpuByModel"] = {m: 0.0 for m in on_models}
    if full.gpu_by_model:
        row["gpuByProduct"] = {p: _human("gpu", v) for p, v in full.gpu_by_model}
    return row


def queue_rows(catalog: Catalog, store: Store, scope: QueueScope | LoopView) -> list[dict[str, Any]]:
    """Every queue, parents before their children (depth-first, by name); usage from the last cycle of each
    cluster's scheduler in `scope` (a LoopView: that one scheduler)."""
    if isinstance(scope, LoopView):
        scope = QueueScope.one(scope)
    view = catalog.view
    declared = view.queues.to_core() if view.queues else {}
    members = scope.clusters
    names_in = {c.name for c in members}
    counts: dict[str, list[int]] = {}  # queue -> [running, pending] over the scope
    by_cluster: dict[str, dict[str, list[int]]] = {c.name: {} for c in members}
    for queue, cluster, state, n in store.run_counts([RunState.RUNNING, *_WAITING]):
        slot = 0 if state is RunState.RUNNING else 1
        if scope.several and cluster in by_cluster:
            by_cluster[cluster].setdefault(queue, [0, 0])[slot] += n
        if scope.every or cluster in names_in:
            counts.setdefault(queue, [0, 0])[slot] += n
    names = set(declared) | set(counts)
    for member in members:
        names |= set(member.view.queue_usage)
    parents = {n: (declared[n].parent if n in declared else "") for n in names}
    cpu, memory, gpu = zip(*(c.view.totals for c in members), strict=True) if members else ((), (), ())
    totals = (sum(cpu), sum(memory), sum(gpu))
    rows = []
    for name in sorted(names, key=lambda n: _path_key(n, parents)):
        q = declared.get(name)
        guarantee = dict(q.guaranteed) if q else {}
        g_models = dict(q.guaranteed_models) if q else {}
        m_models = dict(q.maximum_models) if q else {}
        models = sorted(set(g_models) | set(m_models))
        per = {c.name: (c.view.queue_usage[name].usage if name in c.view.queue_usage else ZERO) for c in members}
        full = sum(per.values(), ZERO)
        borrowed: dict[str, int] = dict.fromkeys(RESOURCES, 0)  # what each cluster lends it beyond its guarantee
        borrowed_models: dict[str, int] = {}
        for used in per.values():
            for r, v in used.as_dict().items():
                borrowed[r] += max(0, v - guarantee.get(r, 0))
            for m in models:
                if m in g_models and used.on_model(m) > g_models[m]:
                    borrowed_models[m] = borrowed_models.get(m, 0) + used.on_model(m) - g_models[m]
        subtree = [n for n in counts if _in(n, name)]
        row: dict[str, Any] = {
            "name": name, "parent": parents[name], "declared": q is not None,
            "depth": _depth(name, parents), "leaf": not any(p == name for p in parents.values()),
            "weight": q.weight if q else 1.0, "borrow": q.borrow if q else True, "lend": q.lend if q else True,
            "guarantee": _resources(guarantee, g_models), "max": _resources(dict(q.maximum) if q else {}, m_models),
            "allocated": _allocated(full, {m: full.on_model(m) for m in models}),
            "borrowed": _resources({r: v for r, v in borrowed.items() if v}, borrowed_models),
            "dominant_share": round(share_of(full, totals), 4),
            "running_runs": sum(counts[n][0] for n in subtree),
            "pending_runs": sum(counts[n][1] for n in subtree),
        }
        if scope.several:
            row["clusters"] = {c.name: _cluster_part(c, name, per[c.name], guarantee, g_models, models,
                                                     by_cluster[c.name]) for c in members}
        rows.append(row)
    if totals != (0, 0, 0):
        for row in rows:
            row["cluster"] = _resources(dict(zip(RESOURCES, totals, strict=True)))
    return rows


def _cluster_part(member: QueueCluster, name: str, used: Usage, guarantee: dict[str, int], g_models: dict[str, int],
                  models: list[str], counts: dict[str, list[int]]) -> dict[str, Any]:
    """A queue's figures in one cluster: what that cluster's scheduler accounts to it, and its limit there."""
    borrowed = {r: v - guarantee.get(r, 0) for r, v in used.as_dict().items() if v > guarantee.get(r, 0)}
    borrowed_models = {m: used.on_model(m) - g_models[m] for m in models
                       if m in g_models and used.on_model(m) > g_models[m]}
    subtree = [n for n in counts if _in(n, name)]
    totals = member.view.totals
    return {
        "allocated": _allocated(used, {m: used.on_model(m) for m in models}),
        "borrowed": _resources(borrowed, borrowed_models),
        "dominant_share": round(share_of(used, totals), 4),
        "capacity": _resources(dict(zip(RESOURCES, totals, strict=True))),
        "max": _resources(member.limits.get(name, {})),
        "waiting_gangs": sum(1 for exp in member.view.explanations.values() if _in(exp.queue, name)),
        "running_runs": sum(counts[n][0] for n in subtree),
        "pending_runs": sum(counts[n][1] for n in subtree),
        "reachable": member.reachable,
    }


def queue_detail(catalog: Catalog, store: Store, scope: QueueScope | LoopView, name: str) -> dict[str, Any]:
    """One queue's row, its priority range, and the gangs waiting in it in the order the scheduler takes them
    (several clusters: cluster by cluster in the declared order, each entry with its `cluster`)."""
    from bigk.spec.queues import QueueNameError, queue_name

    if isinstance(scope, LoopView):
        scope = QueueScope.one(scope)
    try:
        wanted = queue_name(name)
    except QueueNameError as exc:
        raise UnknownQueue(str(exc)) from None
    rows = {r["name"]: r for r in queue_rows(catalog, store, scope)}
    row = rows.get(wanted)
    if row is None:
        known = ", ".join(sorted(rows)) or "none"
        raise UnknownQueue(f"no queue {wanted!r} (queues: {known}); see `bigk get queues`")
    tree = catalog.view.queues
    rng = tree.priority_of(wanted) if tree else None
    row["priority"] = {"default": rng.default, "min": rng.min, "max": rng.max} if rng is not None else None
    row["children"] = sorted(n for n, r in rows.items() if r["parent"] == wanted)
    runs_by_gang = {app: (run, job) for app, run, job in store.run_fields(_WAITING, "spark_app_id", "id", "job")
                    if app}
    waiting = []
    for member in scope.clusters:
        for gang, exp in member.view.explanations.items():  # insertion order = the order of its last cycle
            if not _in(exp.queue, wanted):
                continue
            run, job = runs_by_gang.get(gang, (None, None))
            entry = {"gang": gang, "run": run, "job": job,
                     "queue": exp.queue, "priority": exp.priority, "state": exp.state, "reason": exp.reason,
                     "explanation": exp.message}
            if scope.several:
                entry["cluster"] = member.name
            waiting.append(entry)
    row["waiting"] = waiting
    return row


def _path_key(name: str, parents: dict[str, str]) -> tuple[str, ...]:
    chain = [name]
    while parents.get(chain[-1]) and len(chain) < 16:
        chain.append(parents[chain[-1]])
    return tuple(reversed(chain))


def _depth(name: str, parents: dict[str, str]) -> int:
    return len(_path_key(name, parents)) - 1
