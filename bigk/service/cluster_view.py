"""What the operator sees of the cluster (nodes, GPUs) and the node actions (cordon, drain).

Read straight from the API server on each request, not from the scheduler's
cache: an operator at 3 a.m. wants the server's truth, and these calls are rare.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from bigk.cluster import labels as L
from bigk.cluster.model import MILLI_GPU, POOL_LABEL, Node
from bigk.cluster.state import DEFAULT_STALE_AFTER_S
from bigk.errors import NotFound
from bigk.kube.client import drain
from bigk.kube.translate import TranslateError, gpu_nodes, node_from_v1, node_ready, occupies_node, pod_from_v1
from bigk.metrics import DEFAULT_IDLE_THRESHOLD_PCT

log = logging.getLogger(__name__)

IDLE_UTILIZATION_PCT = DEFAULT_IDLE_THRESHOLD_PCT  # allocated but below this: probably wasted


class UnknownNode(NotFound):
    pass


class ClusterView:
    """Nodes, GPUs and node actions over one Kubernetes API client."""

    def __init__(self, api: client.ApiClient, clock: Callable[[], float],
                 stale_after_s: float = DEFAULT_STALE_AFTER_S, list_timeout_s: float | None = None) -> None:
        self.core = client.CoreV1Api(api)
        self._clock = clock
        self.stale_after_s = stale_after_s  # a reading older than this says nothing about the GPU now
        # with several clusters, one silent API server must not stall a listing of every cluster's nodes
        self._list_kw: dict[str, Any] = {"_request_timeout": list_timeout_s} if list_timeout_s else {}

    def _list_nodes(self) -> list[Any]:
        return list(self.core.list_node(**self._list_kw).items)

    def _pods_by_node(self) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        items: list[Any] = list(self.core.list_pod_for_all_namespaces(**self._list_kw).items)
        for pod in items:
            if occupies_node(pod):
                out.setdefault(pod.spec.node_name, []).append(pod)
        return out

    def nodes(self) -> list[dict[str, Any]]:
        """One row per node: pool, readiness, cordon, CPU/memory/GPU capacity and use, bigk pods."""
        pods = self._pods_by_node()
        rows = []
        for v1 in self._list_nodes():
            try:
                node = node_from_v1(v1)
            except TranslateError as exc:
                log.warning("event=node_unreadable error=%r", str(exc))
                continue
            cpu = mem = gpu_milli = 0
            bigk_pods = 0
            for v1pod in pods.get(node.name, []):
                try:
                    pod = pod_from_v1(v1pod)
                except TranslateError:
                    continue
                cpu += pod.request.cpu_milli
                mem += pod.request.memory_mib
                gpu_milli += pod.request.gpu_count * (pod.request.gpu_milli or MILLI_GPU)
                bigk_pods += v1pod.spec.scheduler_name == L.SCHEDULER_NAME
            unhealthy = sum(1 for g in node.gpus if g.reading is not None and not g.reading.healthy)
            rows.append({
                "name": node.name, "gpus_unhealthy": unhealthy, "pool": node.labels.get(POOL_LABEL, "default"),
                "ready": node_ready(v1),
                "unschedulable": bool(v1.spec is not None and v1.spec.unschedulable),
                "cpu_milli": node.cpu_milli, "cpu_used_milli": cpu, "memory_mib": node.memory_mib,
                "memory_used_mib": mem, "gpu_model": node.gpu_model, "gpus": len(node.gpus),
                "gpus_used": round(gpu_milli / MILLI_GPU, 3), "pods": len(pods.get(node.name, [])),
                "bigk_pods": bigk_pods, "taints": [f"{t.key}={t.value}:{t.effect}" for t in node.taints],
            })
        return sorted(rows, key=lambda r: r["name"])

    def gpus(self) -> list[dict[str, Any]]:
        """One row per GPU: share allocated, the pods on it, and the latest live reading if any."""
        pods = self._pods_by_node()
        now = self._clock()
        rows = []
        for _, node in gpu_nodes(self._list_nodes()):
            alloc: dict[int, int] = {}
            users: dict[int, list[str]] = {}
            for v1pod in pods.get(node.name, []):
                try:
                    pod = pod_from_v1(v1pod)
                except TranslateError:
                    continue
                share = pod.request.gpu_milli or MILLI_GPU
                for idx in pod.gpus:
                    alloc[idx] = alloc.get(idx, 0) + share
                    users.setdefault(idx, []).append(pod.key)
            for gpu in node.gpus:
                reading = gpu.reading
                fresh = reading is not None and now - reading.observed_at <= self.stale_after_s
                notes = []
                if reading is not None and not reading.healthy:
                    notes.append("unhealthy")
                if reading is not None and not fresh:
                    notes.append("stale-reading")
                if fresh and reading is not None and alloc.get(gpu.index, 0) > 0 \
                        and reading.utilization_pct < IDLE_UTILIZATION_PCT:
                    notes.append("allocated-idle")
                rows.append({
                    "node": node.name, "pool": node.pool, "index": gpu.index, "model": gpu.model,
                    "uuid": gpu.uuid, "memory_mib": gpu.memory_mib, "allocated_milli": alloc.get(gpu.index, 0),
                    "pods": users.get(gpu.index, []),
                    "utilization_pct": reading.utilization_pct if reading else None,
                    "memory_free_mib": reading.free_memory_mib if reading else None,
                    "temperature_c": reading.temperature_c if reading else None,
                    "healthy": reading.healthy if reading else None,
                    "reading_age_s": round(now - reading.observed_at, 1) if reading else None,
                    "notes": notes,
                })
        return rows

    def model_nodes(self) -> list[Node]:
        """Every readable node as the scheduler sees it (capacity, labels, taints, GPUs)."""
        out = []
        for v1 in self.core.list_node().items:
            try:
                out.append(node_from_v1(v1))
            except TranslateError:
                continue
        return out

    def node_names(self, pool: str | None = None) -> list[str]:
        names: list[str] = []
        nodes: list[Any] = self._list_nodes()
        for v1 in nodes:
            labels = (v1.metadata.labels or {}) if v1.metadata else {}
            if pool is None or labels.get(POOL_LABEL) == pool:
                names.append(v1.metadata.name)
        return sorted(names)

    def cordon(self, name: str, unschedulable: bool = True) -> None:
        try:
            self.core.patch_node(name, {"spec": {"unschedulable": unschedulable}})
        except ApiException as exc:
            if exc.status == 404:
                raise UnknownNode(f"no node {name!r} (list them with `bigk get nodes`)") from None
            raise
        log.info("event=node_%s node=%s", "cordoned" if unschedulable else "uncordoned", name)

    def drain(self, name: str) -> list[str]:
        """Cordon `name` and evict every bigk pod on it; return the evicted pod keys."""
        self.cordon(name)
        evicted = []
        selector = f"spec.nodeName={name}"
        on_node: list[Any] = list(self.core.list_pod_for_all_namespaces(field_selector=selector).items)
        for pod in on_node:
            if pod.spec.node_name != name or pod.spec.scheduler_name != L.SCHEDULER_NAME or not occupies_node(pod):
                continue
            ns, pname = pod.metadata.namespace or "default", pod.metadata.name
            body = client.V1Eviction(metadata=client.V1ObjectMeta(name=pname, namespace=ns))
            try:
                drain(self.core.create_namespaced_pod_eviction(pname, ns, body, _preload_content=False))
            except ApiException as exc:
                if exc.status == 404:
                    continue
                if exc.status in (405, 501):  # no Eviction API: delete instead
                    self.core.delete_namespaced_pod(pname, ns)
                else:
                    raise
            evicted.append(f"{ns}/{pname}")
            log.info("event=pod_evicted node=%s pod=%s/%s reason=drain", name, ns, pname)
        return evicted
