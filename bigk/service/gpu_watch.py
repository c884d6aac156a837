"""The GPU watch of `bigk serve`: a window of every GPU's readings, and what is wrong with the GPUs.

Every `sample_s` the leader lists nodes and pods, works out who holds each GPU
(bigk's shares by `bigk.io/assigned-gpus`; pods that asked the device plugin by
the node's device allocations when published, else by bigk's binding), feeds the
latest agent readings into a `ReadingWindow` and keeps the `Findings`
(`bigk.gpu.findings`): GPUs idle while held by a run, busy with no bigk pod, over
their shares, and device conflicts. They are exported as metrics
(`bigk_gpus_idle{queue,job_name}`, ...), served at `/api/v1/gpus/idle` and
`/api/v1/gpus/findings`, and shown by `bigk get gpus --idle` and as notes of `bigk get gpus`.

`bigk serve` over several clusters runs one watch per cluster (`ClusterRuntime.gpu_watch`), each
sampling its own cluster and exporting its own series (`cluster` label); `bigk.service.gpu_watches`
samples them all and merges their findings.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from kubernetes import client

from bigk import metrics
from bigk.cluster import labels as L
from bigk.cluster.devices import DEVICE_ALLOCATIONS_ANNOTATION, Conflict, conflicts, decode_allocations
from bigk.cluster.model import MILLI_GPU
from bigk.gpu.findings import Findings, GpuNow, Holder, ReadingWindow, WatchSettings, find
from bigk.kube.podlist import list_pods_on
from bigk.kube.translate import TranslateError, gpu_nodes, occupies_node, pod_from_v1

log = logging.getLogger(__name__)
DEFAULT_SAMPLE_S = 10.0  # the agent publishes every 10 s


def _holders(v1pod: Any, devices: tuple[int, ...] | None, scheduler_name: str) -> tuple[Holder, tuple[int, ...]]:
    pod = pod_from_v1(v1pod)
    labels = (v1pod.metadata.labels or {}) if v1pod.metadata is not None else {}
    holder = Holder(pod.key, v1pod.spec.scheduler_name == scheduler_name, labels.get(L.RUN_LABEL, ""),
                    labels.get(L.JOB_LABEL, ""), labels.get(L.QUEUE_LABEL) or pod.queue,
                    pod.request.gpu_milli or MILLI_GPU, pod.request.gpu_memory_mib)
    return holder, devices if devices is not None else pod.gpus


def cluster_gpus(nodes: list[Any], pods: list[Any], scheduler_name: str = L.SCHEDULER_NAME
                 ) -> tuple[list[GpuNow], list[Conflict]]:
    """Every GPU with its holders and latest reading, and the device conflicts, from API objects."""
    by_node: dict[str, list[Any]] = {}
    for pod in pods:
        if occupies_node(pod):
            by_node.setdefault(pod.spec.node_name, []).append(pod)
    out: list[GpuNow] = []
    found: list[Conflict] = []
    for v1, node in gpu_nodes(nodes):
        annotations = (v1.metadata and v1.metadata.annotations) or {}
        plugin = decode_allocations(annotations.get(DEVICE_ALLOCATIONS_ANNOTATION))
        by_uid = {a.pod_uid: a.devices for a in plugin.values()}
        held: dict[int, list[Holder]] = {}
        shares: dict[str, tuple[int, ...]] = {}
        for v1pod in by_node.get(node.name, []):
            try:
                holder, gpus = _holders(v1pod, by_uid.get(v1pod.metadata.uid or ""), scheduler_name)
            except TranslateError:
                continue
            if holder.share_milli < MILLI_GPU and holder.bigk:
                shares[holder.pod] = gpus
            if holder.bigk or v1pod.metadata.uid in by_uid:
                for g in gpus:
                    held.setdefault(g, []).append(holder)
        found += conflicts(node.name, plugin, shares)
        for gpu in node.gpus:
            r = gpu.reading
            out.append(GpuNow(node.name, gpu.index, node.pool, gpu.uuid, gpu.model, gpu.memory_mib,
                              tuple(held.get(gpu.index, ())), r.utilization_pct if r else None,
                              r.free_memory_mib if r else None, r.observed_at if r else None))
    return out, found


def export(findings: Findings, gpus: list[GpuNow], cluster: str = metrics.DEFAULT_CLUSTER) -> None:
    """One cluster's findings as gauges: an idle GPU counts once for each (queue, job spec) holding it.

    Every (queue, job spec) holding a GPU and every GPU pool has a series, 0 when nothing is found, so
    dashboards and alert rules always read a live series; the other clusters' series are left alone."""
    pools = {g.key: g.pool for g in gpus}
    idle: dict[tuple[str, str], float] = {(h.queue, h.job): 0.0 for g in gpus for h in g.holders if h.bigk}
    for gpu in findings.idle:
        pairs = {(h.queue, h.job) for h in gpu.holders} or {("", "")}
        for pair in pairs:
            idle[pair] = idle.get(pair, 0.0) + 1.0
    by_pool: list[dict[str, float]] = [dict.fromkeys(pools.values(), 0.0) for _ in range(3)]
    for counts, items in zip(by_pool, ([(g.node, g.gpu) for g in findings.foreign],
                                       [(g.node, g.gpu) for g in findings.over_share],
                                       sorted({(c.node, c.gpu) for c in findings.conflicts})), strict=True):
        for key in items:
            pool = pools.get(key, "default")
            counts[pool] = counts.get(pool, 0.0) + 1.0
    busy, over, twice = by_pool
    metrics.set_gpu_findings(idle, busy, over, twice, cluster=cluster)


class GpuWatch:
    """Samples one cluster's GPUs on the leader; readers get the latest findings (thread-safe).

    cluster: the cluster's name (the metrics' `cluster` label; logs name it unless it is `default`);
    list_timeout_s: a bound on each listing (several clusters: a silent API server costs one tick at most)."""

    def __init__(self, api: client.ApiClient, clock: Callable[[], float], settings: WatchSettings | None = None,
                 sample_s: float = DEFAULT_SAMPLE_S, scheduler_name: str = L.SCHEDULER_NAME,
                 cluster: str = metrics.DEFAULT_CLUSTER, list_timeout_s: float | None = None) -> None:
        self.core = client.CoreV1Api(api)
        self.cluster = cluster
        self.list_timeout_s = list_timeout_s
        self._where = "" if cluster == metrics.DEFAULT_CLUSTER else f" cluster={cluster}"
        self.clock = clock
        self.settings = settings or WatchSettings()
        self.sample_s = sample_s
        self.scheduler_name = scheduler_name
        self.window = ReadingWindow(self.settings)
        self._findings = Findings()
        self._sampled_at = 0.0
        self._last = -float("inf")
        self._lock = threading.Lock()

    def maybe_sample(self) -> None:
        """Sample when `sample_s` has passed since the last time (called from the service's tick)."""
        if time.monotonic() - self._last >= self.sample_s:
            self._last = time.monotonic()
            try:
                self.sample()
            except Exception as exc:  # API server away: keep the last findings, try next time
                log.warning("event=gpu_watch_failed%s error=%r", self._where, str(exc)[:300])

    def sample(self) -> Findings:
        bound: dict[str, Any] = {} if self.list_timeout_s is None else {"_request_timeout": self.list_timeout_s}
        nodes = list(self.core.list_node(**bound).items)
        pods = list_pods_on(self.core, {node.name for _, node in gpu_nodes(nodes)}, **bound)  # only theirs matter
        gpus, found = cluster_gpus(nodes, pods, self.scheduler_name)
        for gpu in gpus:
            self.window.observe(gpu)
        self.window.forget_except(g.key for g in gpus)
        now = self.clock()
        findings = find(gpus, self.window, now, found)
        export(findings, gpus, self.cluster)
        with self._lock:
            self._findings, self._sampled_at = findings, now
        for idle in findings.idle:
            log.info("event=gpu_idle%s node=%s gpu=%d pods=%s runs=%s idle_s=%.0f", self._where, idle.node, idle.gpu,
                     ",".join(idle.pods), ",".join(idle.runs), idle.idle_s)
        return findings

    def report(self) -> dict[str, Any]:
        """The latest findings as JSON-ready data, each row with this watch's `cluster`, and the settings they were
        found under."""
        with self._lock:
            f, at = self._findings, self._sampled_at

        def rows(items: list[Any]) -> list[dict[str, Any]]:
            return [{"cluster": self.cluster, **asdict(x)} for x in items]

        return {"sampled_at": at, "idle_minutes": self.settings.idle_minutes,
                "threshold_pct": self.settings.threshold_pct,
                "idle": rows(f.idle), "foreign": rows(f.foreign), "over_share": rows(f.over_share),
                "conflicts": rows(f.conflicts)}

    def notes(self) -> dict[tuple[str, int], list[str]]:
        """Per GPU, the notes `bigk get gpus` shows for the findings."""
        with self._lock:
            f = self._findings
        out: dict[tuple[str, int], list[str]] = {}
        for idle in f.idle:
            out.setdefault((idle.node, idle.gpu), []).append(f"idle-{int(idle.idle_s // 60)}m")
        for busy in f.foreign:
            out.setdefault((busy.node, busy.gpu), []).append("busy-without-bigk")
        for over in f.over_share:
            out.setdefault((over.node, over.gpu), []).append("over-share")
        for c in f.conflicts:
            out.setdefault((c.node, c.gpu), []).append("device-conflict")
        return out


def annotate_gpus(rows: list[dict[str, Any]], watch: GpuWatch) -> list[dict[str, Any]]:
    """Add the watch's notes (idle-12m, busy-without-bigk, over-share, device-conflict) to `/gpus` rows."""
    notes: dict[Any, list[str]] = dict(watch.notes())
    for row in rows:
        extra = notes.get((row.get("node"), row.get("index")), [])
        if extra:
            row["notes"] = [*row.get("notes", []), *extra]
    return rows
