"""The clusters `bigk serve` runs (issue 18): `GET /api/v1/clusters[/{name}]` and the cluster cordon.

One row per cluster (with one cluster: `default`): its labels and cost tier, whether it
is cordoned (the operator's cordon, stored, wins over the clusters file's `cordoned`) and
reachable, whether this replica leads it, its capacity and what is allocated (from its
scheduler loop's published copy of the accounted cluster, at most a few seconds old), the
gangs its scheduler has waiting, and its runs by state. `POST .../{name}/cordon` stops
dispatching new runs there (runs already there keep running); `uncordon` undoes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Path

from bigk.cluster.model import MILLI_GPU
from bigk.errors import NotFound
from bigk.service.runstate import ACTIVE
from bigk.service.runtime import ClusterRuntime
from bigk.service.store import Store

NAME = Annotated[str, Path(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]


class UnknownCluster(NotFound):
    pass


def cluster_rows(runtimes: Mapping[str, ClusterRuntime], store: Store) -> list[dict[str, Any]]:
    """One row per cluster, in the declared order."""
    cordons = store.cluster_cordons()
    by_cluster: dict[str, dict[str, int]] = {}  # cluster -> state -> active runs (one grouped query per scrape)
    for _, cluster, state, n in store.run_counts(ACTIVE):
        runs = by_cluster.setdefault(cluster, {})
        runs[str(state)] = runs.get(str(state), 0) + n
    return [_row(runtime, cordons.get(name), by_cluster.get(name, {})) for name, runtime in runtimes.items()]


def _row(runtime: ClusterRuntime, override: bool | None, runs: dict[str, int]) -> dict[str, Any]:
    source = runtime.source
    view = runtime.view()
    state = view.cluster
    capacity: dict[str, Any] = {"nodes": None, "cpu_milli": None, "memory_mib": None, "gpus": None}
    allocated: dict[str, Any] = {"cpu_milli": None, "memory_mib": None, "gpus": None}
    if state is not None:  # the loop's copy: read its plain arrays only (its caches belong to the metrics reader)
        ok = state.schedulable
        capacity = {"nodes": len(state.nodes), "cpu_milli": int(state.cpu_cap[ok].sum()),
                    "memory_mib": int(state.mem_cap[ok].sum()), "gpus": int(state.gpu_count[ok].sum())}
        allocated = {"cpu_milli": int((state.cpu_cap - state.cpu_free)[ok].sum()),
                     "memory_mib": int((state.mem_cap - state.mem_free)[ok].sum()),
                     "gpus": round(float(state.gpu_milli_used[ok].sum()) / MILLI_GPU, 3)}
    elector = runtime.elector
    return {
        "name": runtime.name, "labels": dict(source.labels), "cost_tier": source.cost_tier,
        "cordoned": override if override is not None else source.cordoned,
        "cordon_by": ("operator" if override is not None else "clusters file" if source.cordoned else ""),
        "reachable": runtime.reachable, "unreachable_since": runtime.unreachable_since,
        "leader": bool(elector is not None and elector.is_leader), "server": runtime.kube_url,
        "embedded": source.embedded, "capacity": capacity, "allocated": allocated,
        "waiting_gangs": len(view.explanations), "runs": runs,
        "queues": sorted(set(source.queue_limits)), "queue_limits": source.queue_limits,
    }


def set_cordon(runtimes: Mapping[str, ClusterRuntime], store: Store, name: str, cordoned: bool, now: float) -> None:
    """The operator's cordon of one cluster (stored: it survives a restart)."""
    if name not in runtimes:
        raise UnknownCluster(f"no cluster {name!r}; this bigk serve runs {', '.join(runtimes)} "
                             "(see `bigk get clusters`)")
    store.set_cluster_cordon(name, cordoned, now)
    store.add_event("cordon" if cordoned else "uncordon", f"cluster {name}: "
                    + ("nothing new is dispatched there" if cordoned else "runs are dispatched there again"), now=now)


def clusters_router(runtimes: Mapping[str, ClusterRuntime], store: Store, clock: Any, wake: Any,
                    read: Sequence[Any], act: Sequence[Any]) -> APIRouter:
    """`GET /api/v1/clusters`, `GET /api/v1/clusters/{name}`, `POST /api/v1/clusters/{name}/cordon|uncordon`."""
    router = APIRouter(tags=["cluster"])

    @router.get("/api/v1/clusters", dependencies=list(read))
    def list_clusters() -> list[dict[str, Any]]:
        return cluster_rows(runtimes, store)

    @router.get("/api/v1/clusters/{name}", dependencies=list(read))
    def get_cluster(name: NAME) -> dict[str, Any]:
        for row in cluster_rows(runtimes, store):
            if row["name"] == name:
                return row
        raise UnknownCluster(f"no cluster {name!r}; this bigk serve runs {', '.join(runtimes)}")

    @router.post("/api/v1/clusters/{name}/cordon", dependencies=list(act))
    def cordon(name: NAME) -> dict[str, Any]:
        set_cordon(runtimes, store, name, True, clock())
        wake()
        return {"cluster": name, "cordoned": True}

    @router.post("/api/v1/clusters/{name}/uncordon", dependencies=list(act))
    def uncordon(name: NAME) -> dict[str, Any]:
        set_cordon(runtimes, store, name, False, clock())
        wake()
        return {"cluster": name, "cordoned": False}

    return router
