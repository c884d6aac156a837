"""What operators see of queues: the tree with guarantee, maximum, usage, borrowing, share and runs.

Declarations come from the served catalog (the spec repo's `kind: Queue`
documents, or `--queues`); usage and shares from the scheduler loop's last
cycle (bound pods plus reservations, each queue counting its whole subtree);
running and pending runs from the store. Queues that pods name but nobody
declared show too (weight 1, no limits), so nothing in use is hidden.

Per-model GPU quotas show under `gpuByModel` in guarantee, max, allocated and
borrowed, keyed by the model names the queue declares (allocated sums the GPU
products each name matches); `allocated.gpuByProduct` says which products the
queue's GPUs are actually on.
"""

from __future__ import annotations

from typing import Any

from bigk.cluster.usage import RESOURCES, ZERO
from bigk.errors import NotFound
from bigk.kube.loop_view import LoopView
from bigk.service.catalog import Catalog
from bigk.service.runstate import RunState
from bigk.service.store import Store

_WAITING = (RunState.PENDING, RunState.SUBMITTED, RunState.ADMITTED)


class UnknownQueue(NotFound):
    pass


def _human(resource: str, value: int | None) -> float | None:
    """Core units -> what people read: CPU cores, memory GiB, GPUs."""
    if value is None:
        return None
    if resource == "memory":
        return round(value / 1024, 3)
    return round(value / 1000, 3)


def _resources(values: dict[str, int], models: dict[str, int] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {r: _human(r, values[r]) for r in RESOURCES if r in values}
    if models:
        out["gpuByModel"] = {m: _human("gpu", v) for m, v in sorted(models.items())}
    return out


def queue_rows(catalog: Catalog, store: Store, loop: LoopView) -> list[dict[str, Any]]:
    """Every queue, parents before their children (depth-first, by name); usage from the loop's last cycle."""
    view = catalog.view
    declared = view.queues.to_core() if view.queues else {}
    usage, totals = loop.queue_usage, loop.totals
    runs = store.list_runs(states=[RunState.RUNNING, *_WAITING])
    counts: dict[str, list[int]] = {}
    for run in runs:
        c = counts.setdefault(run.queue, [0, 0])
        c[0 if run.state is RunState.RUNNING else 1] += 1
    names = set(declared) | set(usage) | set(counts)
    parents = {n: (declared[n].parent if n in declared else "") for n in names}
    rows = []
    for name in sorted(names, key=lambda n: _path_key(n, parents)):
        q = declared.get(name)
        guarantee = dict(q.guaranteed) if q else {}
        full = usage[name].usage if name in usage else ZERO
        allocated = full.as_dict()
        borrowed = {r: max(0, allocated[r] - guarantee.get(r, 0)) for r in RESOURCES}
        g_models = dict(q.guaranteed_models) if q else {}
        m_models = dict(q.maximum_models) if q else {}
        on_models = {m: full.on_model(m) for m in sorted(set(g_models) | set(m_models))}
        borrowed_models = {m: v - g_models[m] for m, v in on_models.items() if m in g_models and v > g_models[m]}
        alloc_row = _resources(allocated, on_models)
        if on_models and "gpuByModel" not in alloc_row:
            alloc_row["gpuByModel"] = {m: 0.0 for m in on_models}
        if full.gpu_by_model:
            alloc_row["gpuByProduct"] = {p: _human("gpu", v) for p, v in full.gpu_by_model}
        subtree = [n for n in counts if n == name or n.startswith(name + ".")]
        rows.append({
            "name": name, "parent": parents[name], "declared": q is not None,
            "depth": _depth(name, parents), "leaf": not any(p == name for p in parents.values()),
            "weight": q.weight if q else 1.0, "borrow": q.borrow if q else True, "lend": q.lend if q else True,
            "guarantee": _resources(guarantee, g_models), "max": _resources(dict(q.maximum) if q else {}, m_models),
            "allocated": alloc_row,
            "borrowed": _resources({r: v for r, v in borrowed.items() if v}, borrowed_models),
            "dominant_share": round(usage[name].dominant_share, 4) if name in usage else 0.0,
            "running_runs": sum(counts[n][0] for n in subtree),
            "pending_runs": sum(counts[n][1] for n in subtree),
        })
    if totals != (0, 0, 0):
        for row in rows:
            row["cluster"] = _resources(dict(zip(RESOURCES, totals, strict=True)))
    return rows


def queue_detail(catalog: Catalog, store: Store, loop: LoopView, name: str) -> dict[str, Any]:
    """One queue's row, its priority range, and the gangs waiting in it in the order the scheduler takes them."""
    from bigk.spec.queues import QueueNameError, queue_name

    try:
        wanted = queue_name(name)
    except QueueNameError as exc:
        raise UnknownQueue(str(exc)) from None
    rows = {r["name"]: r for r in queue_rows(catalog, store, loop)}
    row = rows.get(wanted)
    if row is None:
        known = ", ".join(sorted(rows)) or "none"
        raise UnknownQueue(f"no queue {wanted!r} (queues: {known}); see `bigk get queues`")
    tree = catalog.view.queues
    rng = tree.priority_of(wanted) if tree else None
    row["priority"] = {"default": rng.default, "min": rng.min, "max": rng.max} if rng is not None else None
    row["children"] = sorted(n for n, r in rows.items() if r["parent"] == wanted)
    runs_by_gang = {r.spark_app_id: r for r in store.list_runs(states=list(_WAITING)) if r.spark_app_id}
    waiting = []
    for gang, exp in loop.explanations.items():  # insertion order = the order of the scheduler's last cycle
        if exp.queue != wanted and not exp.queue.startswith(wanted + "."):
            continue
        run = runs_by_gang.get(gang)
        waiting.append({"gang": gang, "run": run.id if run else None, "job": run.job if run else None,
                        "queue": exp.queue, "priority": exp.priority, "state": exp.state, "reason": exp.reason,
                        "explanation": exp.message})
    row["waiting"] = waiting
    return row


def _path_key(name: str, parents: dict[str, str]) -> tuple[str, ...]:
    chain = [name]
    while parents.get(chain[-1]) and len(chain) < 16:
        chain.append(parents[chain[-1]])
    return tuple(reversed(chain))


def _depth(name: str, parents: dict[str, str]) -> int:
    return len(_path_key(name, parents)) - 1
