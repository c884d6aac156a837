"""`GET /api/v1/nodes/{name}/drain-plan` and `/pools/{pool}/drain-plan`: what a drain would evict, before doing it.

`bigk drain --dry-run` prints this plan, and `bigk drain --pool` shows it in its confirmation prompt: the
nodes that would be cordoned, every bigk pod that would be evicted from them, and the runs those pods
belong to (a run whose driver is evicted fails; one that loses only executors waits for new ones).
The same rule as the drain itself picks the pods: bigk's own pods that occupy the node.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from bigk.cluster import labels as L
from bigk.kube.translate import occupies_node
from bigk.service.cluster_view import ClusterView, UnknownNode
from bigk.service.node_clusters import locate_node, locate_pool
from bigk.service.parts import Parts
from bigk.service.store import Store

NAME = Annotated[str, Path(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
CLUSTER = Annotated[str | None, Query(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]


def drain_plan(cluster: ClusterView, store: Store, nodes: list[str]) -> dict[str, Any]:
    """The pods a drain of `nodes` would evict and the runs they belong to; changes nothing."""
    core = cluster.core
    wanted = set(nodes)
    pods: list[dict[str, Any]] = []
    listed: list[Any] = list(core.list_pod_for_all_namespaces().items)
    for pod in listed:
        spec = pod.spec
        if spec is None or spec.node_name not in wanted or spec.scheduler_name != L.SCHEDULER_NAME:
            continue
        if not occupies_node(pod):
            continue
        labels = pod.metadata.labels or {}
        pods.append({"pod": f"{pod.metadata.namespace or 'default'}/{pod.metadata.name}", "node": spec.node_name,
                     "run": labels.get(L.RUN_LABEL, ""), "role": labels.get(L.SPARK_ROLE, "")})
    runs: dict[str, dict[str, Any]] = {}
    for pod in pods:
        if not pod["run"]:
            continue
        entry = runs.setdefault(pod["run"], {"run": pod["run"], "job": "", "state": "", "pods": 0,
                                             "driver_evicted": False})
        entry["pods"] += 1
        entry["driver_evicted"] = entry["driver_evicted"] or pod["role"] == "driver"
    for run_id, entry in runs.items():
        found = store.find_run(run_id)
        if found is not None:
            entry["job"], entry["state"] = found.job, str(found.state)
    return {"nodes": sorted(wanted), "pods": sorted(pods, key=lambda p: (p["node"], p["pod"])),
            "runs": sorted(runs.values(), key=lambda r: r["run"])}


def drain_router(parts: Parts, read: Sequence[Any]) -> APIRouter:
    store, actions = parts.store, parts.actions
    router = APIRouter(prefix="/api/v1", tags=["actions"])

    @router.get("/nodes/{name}/drain-plan", dependencies=list(read))
    def node_plan(name: NAME, cluster: CLUSTER = None) -> dict[str, Any]:
        """What `drain NAME` would evict (nothing is changed); `?cluster=NAME`: on that cluster."""
        member = locate_node(parts, cluster, name)
        if name not in member.view.node_names():
            raise UnknownNode(f"no node {name!r}{member.where()} (list them with `bigk get nodes`)")
        return {**drain_plan(member.view, store, [name]), "cluster": member.name}

    @router.get("/pools/{pool}/drain-plan", dependencies=list(read))
    def pool_plan(pool: NAME, cluster: CLUSTER = None) -> dict[str, Any]:
        """What `drain --pool POOL` would evict (nothing is changed)."""
        member = locate_pool(parts, cluster, pool)
        return {**drain_plan(member.view, store, actions.pool_nodes(pool, on=member.view)), "cluster": member.name}

    return router
