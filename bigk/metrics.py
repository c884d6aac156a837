"""Every Prometheus metric bigk exports, in one place.

`bigk serve` exposes `REGISTRY` on `/metrics` (use `render()` and `CONTENT_TYPE`);
`bigk agent` exposes `AGENT_REGISTRY` (use `render_agent()`). Both are private
registries rather than prometheus-client's global default, so tests can read and
reset them in isolation and no library metric leaks in by accident.

Labels are kept low-cardinality on purpose: cluster, queue, job spec name (`job_name`, as
`job` is the label Prometheus itself puts on every scraped series), pool, node,
GPU index, GPU model and short fixed reason codes; never pod, run or gang names. Reasons
are normalised by `_code()` (lowercase, `[a-z0-9_]`, at most 48 characters).

Units follow Prometheus conventions: seconds, bytes, CPU cores, GPUs; GPU shares
in milli-GPU (1000 = one GPU) where the scheduler thinks in milli-GPU; GPU
utilisation in percent, as NVML and DCGM report it.

Dashboards in `dashboards/` and alert rules in `dashboards/alerts.yaml` use only
names defined here; `tests/observability` checks that against a real Prometheus.
"""

from __future__ import annotations

import contextlib
import platform
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    Metric,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from bigk.cluster.model import MILLI_GPU, Queue
from bigk.cluster.state import ClusterState
from bigk.cluster.usage import Usage

# `*_created` series double the output and nothing of ours reads them (process-wide switch).
disable_created_metrics()

CONTENT_TYPE = CONTENT_TYPE_LATEST
DEFAULT_IDLE_THRESHOLD_PCT = 5.0
DEFAULT_CLUSTER = "default"  # the `cluster` label when bigk serve runs one cluster
MIB = 1024 * 1024

# `_CORE` holds the ordinary metrics; `REGISTRY` is the full view (core + per-GPU families) that
# tests and callers read with get_sample_value(); render() formats the per-GPU part itself.
_CORE = CollectorRegistry()
REGISTRY = CollectorRegistry()
AGENT_REGISTRY = CollectorRegistry()

# Gauges that are rebuilt wholesale (clear + set) are guarded by this lock, and
# render() takes it too, so a scrape never sees a half-filled family.
_LOCK = threading.RLock()

_SECONDS_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SECONDS_WAIT = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0)
_SECONDS_RUN = (30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0)

# ---- build -----------------------------------------------------------------------
BUILD_INFO = Info("bigk_build", "bigk version and Python version of this process (value is always 1).",
                  registry=_CORE)

# ---- scheduler ---------------------------------------------------------------------
BIND_ATTEMPTS = Counter(
    "bigk_scheduler_bind_attempts_total",
    "Pod bind calls the scheduler sent to the Kubernetes API (one per pod).",
    ["cluster"], registry=_CORE)
BIND_SUCCESSES = Counter(
    "bigk_scheduler_bind_successes_total",
    "Pod binds the API server accepted.",
    ["cluster"], registry=_CORE)
BIND_FAILURES = Counter(
    "bigk_scheduler_bind_failures_total",
    "Pod binds that failed, by reason code (e.g. conflict, node_gone, api_error, gated, timeout).",
    ["cluster", "reason"], registry=_CORE)
CYCLE_DURATION = Histogram(
    "bigk_scheduler_cycle_duration_seconds",
    "Wall time of one scheduling cycle (snapshot, admit, allocate, preempt, backfill; excludes bind I/O).",
    ["cluster"], buckets=_SECONDS_FAST, registry=_CORE)
LAST_CYCLE = Gauge(
    "bigk_scheduler_last_cycle_timestamp_seconds",
    "Unix time the last scheduling cycle finished; a stale value means the scheduler loop is stuck.",
    ["cluster"], registry=_CORE)
IS_LEADER = Gauge(
    "bigk_scheduler_leader",
    "1 if this replica holds the scheduler leader lease, else 0.",
    ["cluster"], registry=_CORE)
PENDING_PODS = Gauge(
    "bigk_scheduler_pending_pods",
    "Pods waiting for a node, by queue.",
    ["cluster", "queue"], registry=_CORE)
PENDING_GANGS = Gauge(
    "bigk_scheduler_pending_gangs",
    "Gangs (Spark applications) not yet admitted, by queue.",
    ["cluster", "queue"], registry=_CORE)
OLDEST_PENDING_GANG = Gauge(
    "bigk_scheduler_oldest_pending_gang_age_seconds",
    "Age of the oldest gang still waiting for admission, by queue (0 when none waits).",
    ["cluster", "queue"], registry=_CORE)
GANG_ADMISSION_LATENCY = Histogram(
    "bigk_scheduler_gang_admission_latency_seconds",
    "Time from a gang's first pod appearing to the whole gang minimum being reserved, by queue.",
    ["cluster", "queue"], buckets=_SECONDS_WAIT, registry=_CORE)
PREEMPTIONS = Counter(
    "bigk_scheduler_preemptions_total",
    "Pods evicted to make room for higher-priority or under-guarantee work, by the victim's queue.",
    ["cluster", "queue"], registry=_CORE)
RESERVATIONS_ACTIVE = Gauge(
    "bigk_scheduler_reservations_active",
    "Gang reservations currently holding resources for executors not yet created.",
    ["cluster"], registry=_CORE)
RESERVATIONS_EXPIRED = Counter(
    "bigk_scheduler_reservations_expired_total",
    "Gang reservations released because their executors did not show up in time.",
    ["cluster"], registry=_CORE)
EXPLANATIONS = Counter(
    "bigk_scheduler_unschedulable_explanations_total",
    "Why-pending explanations produced, by main reason code (e.g. insufficient_gpu, quota, taint, gang_min).",
    ["cluster", "reason"], registry=_CORE)

# ---- runs ----------------------------------------------------------------------------
RUN_TRANSITIONS = Counter(
    "bigk_runs_total",
    "Runs that entered a state, by job spec name and state (pending, submitted, running, succeeded, failed, "
    "cancelled).",
    ["job_name", "state"], registry=_CORE)
RUNS_MISSED = Counter(
    "bigk_runs_missed_total",
    "Scheduled fire times that never ran because they were found later than startingDeadlineSeconds "
    "(bigk was down or not leading), by job spec name.",
    ["job_name"], registry=_CORE)
RUNS_CURRENT = Gauge(
    "bigk_runs_current",
    "Runs currently in a non-terminal state, by job spec name and state.",
    ["job_name", "state"], registry=_CORE)
RUN_DURATION = Histogram(
    "bigk_run_duration_seconds",
    "Wall time of finished runs from driver start to end, by job spec name and final state.",
    ["job_name", "state"], buckets=_SECONDS_RUN, registry=_CORE)
RUN_QUEUE_WAIT = Histogram(
    "bigk_run_queue_wait_seconds",
    "Time from a run being submitted to its driver starting, by queue.",
    ["queue"], buckets=_SECONDS_WAIT, registry=_CORE)
# ---- start-time estimates (bigk.service.eta) ----------------------------------------------------
ETA_ERROR = Histogram(
    "bigk_eta_error_seconds",
    "Absolute error of the first start-time estimate a run got (estimated p50 start vs actual start), by queue.",
    ["queue"], buckets=_SECONDS_WAIT, registry=_CORE)
ETA_STARTS = Counter(
    "bigk_eta_starts_total",
    "Runs that started after waiting with an estimate, by queue and whether the start fell inside the first "
    "estimated range (inside = true | false).",
    ["queue", "inside"], registry=_CORE)
ETA_WAIT = Histogram(
    "bigk_eta_wait_seconds",
    "Wait from a run's first estimate to its start, by queue (the scale the estimate error compares to).",
    ["queue"], buckets=_SECONDS_WAIT, registry=_CORE)
ETA_COMPUTE = Histogram(
    "bigk_eta_compute_seconds",
    "CPU seconds of one recomputation of every waiting run's estimate (off the scheduling thread).",
    buckets=_SECONDS_FAST, registry=_CORE)
ETA_WAITING = Gauge(
    "bigk_eta_waiting_runs",
    "Waiting runs that have a start-time estimate at the last recomputation.",
    registry=_CORE)
SPEC_LOAD_ERRORS = Gauge(
    "bigk_spec_load_errors",
    "Errors found in each job spec file at the last catalog load (0 once fixed; files with no error are absent).",
    ["file"], registry=_CORE)
SPEC_LOADS = Counter(
    "bigk_spec_loads_total",
    "Catalog loads of the job spec folder, by result (ok, error).",
    ["result"], registry=_CORE)

# ---- cluster and GPUs ----------------------------------------------------------------
_GPU_LABELS = ("cluster", "node", "gpu", "pool", "model")
# Per-GPU families: (name, help). Served by `_GpuCollector` from arrays, because a labelled
# Gauge per GPU costs ~20 us per series to update, and a 6,000-GPU cluster has ~40,000 of them.
GPU_FAMILIES: dict[str, tuple[str, str]] = {
    "alloc": ("bigk_gpu_allocated_milli", "Milli-GPU (1000 = the whole GPU) bigk has allocated on each GPU."),
    "util": ("bigk_gpu_utilization_percent",
             "Live GPU utilisation in percent from the last fresh reading (absent when the reading is stale or "
             "unknown)."),
    "free": ("bigk_gpu_memory_free_bytes", "Live free GPU memory in bytes from the last fresh reading."),
    "total": ("bigk_gpu_memory_total_bytes", "GPU memory capacity in bytes."),
    "temp": ("bigk_gpu_temperature_celsius",
             "Live GPU temperature in degrees Celsius from the last fresh reading."),
    "healthy": ("bigk_gpu_healthy",
                "1 if the GPU is usable (healthy, or no fresh reading says otherwise), 0 if a fresh reading marks "
                "it unhealthy."),
    "age": ("bigk_gpu_reading_age_seconds", "Seconds since the GPU's last live reading (absent if none ever arrived)."),
}


class _GpuCollector(Collector):
    """The per-GPU families from the last `update_cluster` snapshot (label tuples + value arrays).

    `collect()` serves registry readers; `exposition()` writes the same samples as
    Prometheus text directly (about 10x faster than prometheus-client's generic path),
    cached until the next update.
    """

    def __init__(self) -> None:
        self._by_cluster: dict[str, tuple[Sequence[tuple[str, ...]], dict[str, np.ndarray]]] = {}
        self._text: bytes | None = None

    def set(self, cluster: str, labels: Sequence[tuple[str, ...]], values: dict[str, np.ndarray]) -> None:
        """Replace one cluster's GPUs (label tuples in `_GPU_LABELS` order, one value array per family)."""
        with _LOCK:
            self._by_cluster = {**self._by_cluster, cluster: (labels, values)}
            self._text = None

    def collect(self) -> Iterable[Metric]:
        snapshots = list(self._by_cluster.values())
        for key, (name, doc) in GPU_FAMILIES.items():
            family = GaugeMetricFamily(name, doc, labels=_GPU_LABELS)
            for labels, values in snapshots:
                column = values.get(key)
                if column is not None:
                    for row in np.flatnonzero(np.isfinite(column)).tolist():
                        family.add_metric(labels[row], float(column[row]))
            yield family

    def exposition(self) -> bytes:
        with _LOCK:
            if self._text is None:
                self._text = self._format()
            return self._text

    def _format(self) -> bytes:
        snapshots = [(["{" + ",".join(f'{k}="{_escape(v)}"' for k, v in zip(_GPU_LABELS, row, strict=True)) + "}"
                       for row in labels], values) for labels, values in self._by_cluster.values()]
        parts: list[str] = []
        for key, (name, doc) in GPU_FAMILIES.items():
            parts.append(f"# HELP {name} {doc}\n# TYPE {name} gauge\n")
            for label_text, values in snapshots:
                column = values.get(key)
                if column is None:
                    continue
                rows = np.flatnonzero(np.isfinite(column))
                parts.extend(f"{name}{label_text[r]} {v!r}\n"
                             for r, v in zip(rows.tolist(), column[rows].astype(float).tolist(), strict=True))
        return "".join(parts).encode()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _FullView(Collector):
    """Core metrics then per-GPU families, as one collector for REGISTRY."""

    def collect(self) -> Iterable[Metric]:
        yield from _CORE.collect()
        yield from GPU_COLLECTOR.collect()


GPU_COLLECTOR = _GpuCollector()
REGISTRY.register(_FullView())
GPUS_ALLOCATED_IDLE = Gauge(
    "bigk_gpus_allocated_idle",
    "GPUs (allocated share, in whole GPUs) that bigk allocated but whose fresh live utilisation is below "
    "the idle threshold (default 5%), by pool.",
    ["cluster", "pool"], registry=_CORE)
GPUS_STRANDED = Gauge(
    "bigk_gpus_stranded",
    "Free GPU capacity (in GPUs) that cannot serve a whole-GPU pod, by pool and reason: partial_gpu = free share "
    "on a partly allocated GPU; host_full = free GPUs on a node with no CPU or memory left; "
    "unhealthy = free GPUs marked unhealthy.",
    ["cluster", "pool", "reason"], registry=_CORE)
POOL_CAPACITY = Gauge(
    "bigk_pool_capacity",
    "Allocatable capacity of schedulable nodes, by pool and resource (cpu in cores, memory in bytes, gpu in GPUs).",
    ["cluster", "pool", "resource"], registry=_CORE)
POOL_ALLOCATED = Gauge(
    "bigk_pool_allocated",
    "Capacity bigk has allocated, by pool and resource (cpu in cores, memory in bytes, gpu in GPUs).",
    ["cluster", "pool", "resource"], registry=_CORE)
NODES = Gauge(
    "bigk_nodes",
    "Nodes known to bigk, by pool and state (schedulable, cordoned).",
    ["cluster", "pool", "state"], registry=_CORE)
QUEUE_ALLOCATED = Gauge(
    "bigk_queue_allocated",
    "Resources allocated to a queue's pods (cpu in cores, memory in bytes, gpu in GPUs).",
    ["cluster", "queue", "resource"], registry=_CORE)
QUEUE_GUARANTEED = Gauge(
    "bigk_queue_guaranteed",
    "Resources guaranteed to a queue (cpu in cores, memory in bytes, gpu in GPUs); absent if none.",
    ["cluster", "queue", "resource"], registry=_CORE)
QUEUE_MAX = Gauge(
    "bigk_queue_max",
    "Ceiling on a queue's resources (cpu in cores, memory in bytes, gpu in GPUs); absent if unlimited.",
    ["cluster", "queue", "resource"], registry=_CORE)
# Per-model GPU quotas (`gpuByModel`): `model` is the model name as the queue declares it (e.g. A100); allocated
# counts the GPUs of the products that name matches, for every model a queue has a guarantee or maximum on.
QUEUE_GPU_MODEL_ALLOCATED = Gauge(
    "bigk_queue_gpu_model_allocated",
    "GPUs of a model allocated to a queue's pods, for each model the queue has a per-model guarantee or maximum on.",
    ["cluster", "queue", "model"], registry=_CORE)
QUEUE_GPU_MODEL_GUARANTEED = Gauge(
    "bigk_queue_gpu_model_guaranteed",
    "GPUs of a model guaranteed to a queue (spec guarantee.gpuByModel); absent if none.",
    ["cluster", "queue", "model"], registry=_CORE)
QUEUE_GPU_MODEL_MAX = Gauge(
    "bigk_queue_gpu_model_max",
    "Ceiling on a queue's GPUs of a model (spec max.gpuByModel); absent if unlimited.",
    ["cluster", "queue", "model"], registry=_CORE)

# GPU findings over a window of readings (bigk.service.gpu_watch, docs/gpus.md).
GPUS_IDLE = Gauge(
    "bigk_gpus_idle",
    "GPUs held by bigk runs whose every reading stayed below the idle threshold for the whole idle window "
    "(serve --gpu-idle-minutes, --gpu-idle-threshold), by cluster, queue and job spec; `bigk get gpus --idle` names "
    "the runs.",
    ["cluster", "queue", "job_name"], registry=_CORE)
GPUS_BUSY_WITHOUT_BIGK = Gauge(
    "bigk_gpus_busy_without_bigk",
    "GPUs that no bigk pod holds but that were busy (utilisation at or above the idle threshold, or memory in use) "
    "for the whole idle window: someone else's process or pod, by cluster and pool.",
    ["cluster", "pool"], registry=_CORE)
GPUS_OVER_SHARE = Gauge(
    "bigk_gpus_over_share",
    "GPUs holding only bigk shares whose live memory use exceeds the shares' memory (plus a driver allowance), "
    "by cluster and pool: a fractional pod uses more than its share.",
    ["cluster", "pool"], registry=_CORE)
GPU_DEVICE_CONFLICTS = Gauge(
    "bigk_gpu_device_conflicts",
    "GPUs the device plugin gave a pod while bigk had shared them out (one owner per GPU broken), by cluster and pool.",
    ["cluster", "pool"], registry=_CORE)

# ---- agent (its own process and registry) ---------------------------------------------
_AGENT_GPU_LABELS = ["node", "gpu", "model"]
AGENT_GPU_UTILIZATION = Gauge(
    "bigk_agent_gpu_utilization_percent", "GPU utilisation in percent, as NVML last reported it.",
    _AGENT_GPU_LABELS, registry=AGENT_REGISTRY)
AGENT_GPU_MEMORY_FREE = Gauge(
    "bigk_agent_gpu_memory_free_bytes", "Free GPU memory in bytes, as NVML last reported it.",
    _AGENT_GPU_LABELS, registry=AGENT_REGISTRY)
AGENT_GPU_MEMORY_TOTAL = Gauge(
    "bigk_agent_gpu_memory_total_bytes", "GPU memory capacity in bytes.",
    _AGENT_GPU_LABELS, registry=AGENT_REGISTRY)
AGENT_GPU_TEMPERATURE = Gauge(
    "bigk_agent_gpu_temperature_celsius", "GPU temperature in degrees Celsius, as NVML last reported it.",
    _AGENT_GPU_LABELS, registry=AGENT_REGISTRY)
AGENT_GPU_HEALTHY = Gauge(
    "bigk_agent_gpu_healthy", "1 if the agent's health rules pass for this GPU, else 0.",
    _AGENT_GPU_LABELS, registry=AGENT_REGISTRY)
AGENT_READ_ERRORS = Counter(
    "bigk_agent_nvml_errors_total", "NVML calls that failed while reading a GPU, by field.",
    ["field"], registry=AGENT_REGISTRY)
AGENT_PUBLISHES = Counter(
    "bigk_agent_publishes_total", "Node annotation patches the agent sent, by result (ok, error).",
    ["result"], registry=AGENT_REGISTRY)
AGENT_LAST_PUBLISH = Gauge(
    "bigk_agent_last_publish_timestamp_seconds", "Unix time of the agent's last successful node patch.",
    registry=AGENT_REGISTRY)

_CODE_RE = re.compile(r"[^a-z0-9_]+")


def _code(text: str) -> str:
    """A reason code fit for a label: lowercase, [a-z0-9_], at most 48 characters."""
    code = _CODE_RE.sub("_", text.strip().lower()).strip("_")
    return code[:48] or "unknown"


def _version() -> str:
    try:
        return metadata.version("bigk")
    except metadata.PackageNotFoundError:
        return "unknown"


BUILD_INFO.info({"version": _version(), "python": platform.python_version()})


def register_collector(collector: Collector) -> None:
    """Add a collector whose families `render()` serves (e.g. bigk.service.cluster_metrics' per-cluster figures)."""
    _CORE.register(collector)


def render() -> bytes:
    """The `/metrics` body for `bigk serve` (Prometheus text format; see CONTENT_TYPE)."""
    with _LOCK:
        return generate_latest(_CORE) + GPU_COLLECTOR.exposition()


def render_agent() -> bytes:
    """The `/metrics` body for `bigk agent`."""
    with _LOCK:
        return generate_latest(AGENT_REGISTRY)


# ---- scheduler helpers ---------------------------------------------------------------------
# Every scheduler, pool, node, per-GPU and queue family carries `cluster`: each cluster `bigk serve` runs has its
# own scheduling loop, which sets its own series (one cluster: cluster="default").
def declare_cluster(cluster: str) -> None:
    """Start a cluster's unlabelled-but-for-cluster counters at 0, so rate() and dashboards see 0, not no data."""
    for counter in (BIND_ATTEMPTS, BIND_SUCCESSES, RESERVATIONS_EXPIRED):
        counter.labels(cluster)
    CYCLE_DURATION.labels(cluster)


def record_bind(ok: bool, reason: str = "", cluster: str = DEFAULT_CLUSTER) -> None:
    """Count one bind attempt and its outcome; `reason` is a short code when it failed."""
    BIND_ATTEMPTS.labels(cluster).inc()
    if ok:
        BIND_SUCCESSES.labels(cluster).inc()
    else:
        BIND_FAILURES.labels(cluster, _code(reason or "unknown")).inc()


def observe_cycle(seconds: float, finished_at: float, cluster: str = DEFAULT_CLUSTER) -> None:
    """Record one scheduling cycle's duration and when it finished (unix seconds)."""
    CYCLE_DURATION.labels(cluster).observe(seconds)
    LAST_CYCLE.labels(cluster).set(finished_at)


def set_leader(is_leader: bool, cluster: str = DEFAULT_CLUSTER) -> None:
    IS_LEADER.labels(cluster).set(1 if is_leader else 0)


def set_pending(pods_by_queue: Mapping[str, int], gangs_by_queue: Mapping[str, int],
                oldest_gang_age_by_queue: Mapping[str, float] | None = None,
                cluster: str = DEFAULT_CLUSTER) -> None:
    """Replace the cluster's pending figures; queues missing from the mappings drop to absent."""
    with _LOCK:
        _replace(PENDING_PODS, {(q,): float(n) for q, n in pods_by_queue.items()}, cluster)
        _replace(PENDING_GANGS, {(q,): float(n) for q, n in gangs_by_queue.items()}, cluster)
        ages = oldest_gang_age_by_queue or {}
        queues = set(gangs_by_queue) | set(ages)
        _replace(OLDEST_PENDING_GANG, {(q,): float(ages.get(q, 0.0)) for q in queues}, cluster)


def observe_gang_admission(queue: str, seconds: float, cluster: str = DEFAULT_CLUSTER) -> None:
    GANG_ADMISSION_LATENCY.labels(cluster, queue).observe(seconds)


def record_preemption(victim_queue: str, pods: int = 1, cluster: str = DEFAULT_CLUSTER) -> None:
    PREEMPTIONS.labels(cluster, victim_queue).inc(pods)


def set_reservations(active: int, cluster: str = DEFAULT_CLUSTER) -> None:
    RESERVATIONS_ACTIVE.labels(cluster).set(active)


def record_reservation_expired(count: int = 1, cluster: str = DEFAULT_CLUSTER) -> None:
    RESERVATIONS_EXPIRED.labels(cluster).inc(count)


def record_explanation(reason: str, cluster: str = DEFAULT_CLUSTER) -> None:
    EXPLANATIONS.labels(cluster, _code(reason)).inc()


# ---- run helpers ---------------------------------------------------------------------------
def record_run_state(job: str, state: str) -> None:
    """Count a run entering `state`."""
    RUN_TRANSITIONS.labels(job_name=job, state=_code(state)).inc()


def observe_eta_computation(cpu_s: float, runs: int) -> None:
    """One recomputation of the start-time estimates: its CPU time and how many waiting runs it covered."""
    ETA_COMPUTE.observe(cpu_s)
    ETA_WAITING.set(runs)


def observe_eta_outcome(queue: str, error_s: float | None, inside: bool, waited_s: float) -> None:
    """A run with an estimate started: how far off its first estimate was, and whether it was in the range."""
    if error_s is not None:
        ETA_ERROR.labels(queue=queue).observe(error_s)
    ETA_STARTS.labels(queue=queue, inside="true" if inside else "false").inc()
    ETA_WAIT.labels(queue=queue).observe(waited_s)


def record_run_missed(job: str) -> None:
    """Count a scheduled fire recorded as missed instead of run."""
    RUNS_MISSED.labels(job_name=job).inc()


def declare_scheduled_jobs(jobs: Iterable[str]) -> None:
    """Start each scheduled job's missed-fire counter at 0, so a dashboard shows 0 rather than no data."""
    for job in jobs:
        RUNS_MISSED.labels(job_name=job)


def set_runs_current(counts: Mapping[tuple[str, str], int]) -> None:
    """Replace the live run counts; keys are (job, state) for non-terminal states."""
    with _LOCK:
        _replace(RUNS_CURRENT, {(job, _code(state)): float(n) for (job, state), n in counts.items()})


def observe_run_finished(job: str, state: str, seconds: float) -> None:
    RUN_DURATION.labels(job_name=job, state=_code(state)).observe(seconds)


def observe_queue_wait(queue: str, seconds: float) -> None:
    RUN_QUEUE_WAIT.labels(queue=queue).observe(seconds)


def set_spec_load_errors(errors_by_file: Mapping[str, int]) -> None:
    """Replace the spec error counts after a catalog load; files with 0 errors are dropped."""
    with _LOCK:
        _replace(SPEC_LOAD_ERRORS, {(f,): float(n) for f, n in errors_by_file.items() if n})
        SPEC_LOADS.labels(result="error" if any(errors_by_file.values()) else "ok").inc()


# ---- cluster helpers -------------------------------------------------------------------------
@dataclass(frozen=True)
class ClusterFigures:
    """What `update_cluster` derived, returned so callers (and tests) can log or check it."""

    idle_gpus_by_pool: dict[str, float]
    stranded_by_pool: dict[tuple[str, str], float]


def update_cluster(state: ClusterState, now: float, idle_threshold_pct: float = DEFAULT_IDLE_THRESHOLD_PCT,
                   stale_after_s: float | None = None, cluster: str = DEFAULT_CLUSTER) -> ClusterFigures:
    """Refresh every per-GPU, per-pool and node figure from the scheduler's arrays (vectorised).

    Only fresh readings feed live gauges and the idle figure: a GPU whose agent
    went quiet is "unknown", not "idle". Cost: about 10-20 ms for 1,213 nodes and
    5,700 GPUs (bench/metrics_scale.py), so call it every few seconds, not per pod.
    """
    ni, gi = np.nonzero(state.gpu_present)
    pools = state.pools
    node_pool = state.pool
    gpu_pool = node_pool[ni]
    fresh = (state.fresh_readings(now, stale_after_s) & state.gpu_present)[ni, gi]
    usable = state.usable_gpus(now, stale_after_s)[ni, gi]
    used = state.gpu_milli_used[ni, gi].astype(float)
    util = state.live_util[ni, gi]
    live_at = state.live_at[ni, gi]
    nan = np.full(len(ni), np.nan)
    models = {(nd.name, gpu.index): gpu.model for nd in state.nodes for gpu in nd.gpus}
    labels = [(cluster, state.nodes[n].name, str(g), pools[node_pool[n]], models.get((state.nodes[n].name, g), ""))
              for n, g in zip(ni.tolist(), gi.tolist(), strict=True)]
    GPU_COLLECTOR.set(cluster, labels, {
        "alloc": used,
        "util": np.where(fresh, util, nan),
        "free": np.where(fresh, state.live_free_mem[ni, gi] * MIB, nan),
        "total": state.gpu_mem_cap[ni, gi].astype(float) * MIB,
        "temp": np.where(fresh, state.live_temp[ni, gi], nan),
        "healthy": usable.astype(float),
        "age": np.where(np.isfinite(live_at), np.maximum(0.0, now - live_at), nan),
    })

    k = len(pools)
    with np.errstate(invalid="ignore"):
        idle_mask = fresh & (used > 0) & (util < idle_threshold_pct)
    idle_gpus = np.bincount(gpu_pool[idle_mask], weights=used[idle_mask] / MILLI_GPU, minlength=k)
    free = (MILLI_GPU - used) / MILLI_GPU
    host_full = ((state.cpu_free <= 0) | (state.mem_free <= 0) | (state.pods_used >= state.pods_cap))[ni]
    stranded_masks = {"unhealthy": ~usable & (free > 0),
                      "partial_gpu": usable & (used > 0) & (free > 0),
                      "host_full": usable & (used == 0) & host_full}
    idle = {pools[p]: float(idle_gpus[p]) for p in range(k)}
    stranded: dict[tuple[str, str], float] = {}
    for reason, mask in stranded_masks.items():
        sums = np.bincount(gpu_pool[mask], weights=free[mask], minlength=k)
        stranded.update({(pools[p], reason): float(sums[p]) for p in range(k)})

    sched = state.schedulable.astype(float)
    gpu_alloc_node = state.gpu_milli_used.sum(axis=1) / MILLI_GPU
    per_resource = {"cpu": (state.cpu_cap / 1000, state.cpu_used / 1000),
                    "memory": (state.mem_cap * float(MIB), state.mem_used * float(MIB)),
                    "gpu": (state.gpu_count.astype(float), gpu_alloc_node)}
    cap: dict[tuple[str, str], float] = {}
    alloc: dict[tuple[str, str], float] = {}
    for resource, (total, taken) in per_resource.items():
        cap_sums = np.bincount(node_pool, weights=total * sched, minlength=k)
        alloc_sums = np.bincount(node_pool, weights=taken.astype(float), minlength=k)
        for p in range(k):
            cap[(pools[p], resource)] = float(cap_sums[p])
            alloc[(pools[p], resource)] = float(alloc_sums[p])
    nodes: dict[tuple[str, str], float] = {}
    for state_name, mask in (("schedulable", state.schedulable), ("cordoned", ~state.schedulable)):
        counts = np.bincount(node_pool[mask], minlength=k)
        nodes.update({(pools[p], state_name): float(counts[p]) for p in range(k) if counts[p]})
    with _LOCK:
        _replace(GPUS_ALLOCATED_IDLE, {(p,): v for p, v in idle.items()}, cluster)
        _replace(GPUS_STRANDED, stranded, cluster)
        _replace(POOL_CAPACITY, cap, cluster)
        _replace(POOL_ALLOCATED, alloc, cluster)
        _replace(NODES, nodes, cluster)
    return ClusterFigures(idle, stranded)


_RESOURCE_SCALE = {"cpu": 1 / 1000, "memory": float(MIB), "gpu": 1 / MILLI_GPU}


def update_queues(queues: Sequence[Queue], allocated: Mapping[str, Mapping[str, int]],
                  cluster: str = DEFAULT_CLUSTER) -> None:
    """Refresh per-queue usage against guarantee and ceiling.

    `allocated` maps queue name to {"cpu": milli, "memory": MiB, "gpu": milli-GPU},
    the same keys and units as `Queue.guaranteed`/`Queue.maximum`.
    """
    used: dict[tuple[str, str], float] = {}
    guaranteed: dict[tuple[str, str], float] = {}
    ceiling: dict[tuple[str, str], float] = {}
    names = [q.name for q in queues] + [n for n in allocated if n not in {q.name for q in queues}]
    for name in names:
        for resource, scale in _RESOURCE_SCALE.items():
            used[(name, resource)] = float(allocated.get(name, {}).get(resource, 0)) * scale
    for q in queues:
        for resource, scale in _RESOURCE_SCALE.items():
            if resource in q.guaranteed:
                guaranteed[(q.name, resource)] = q.guaranteed[resource] * scale
            if resource in q.maximum:
                ceiling[(q.name, resource)] = q.maximum[resource] * scale
    with _LOCK:
        _replace(QUEUE_ALLOCATED, used, cluster)
        _replace(QUEUE_GUARANTEED, guaranteed, cluster)
        _replace(QUEUE_MAX, ceiling, cluster)


def update_queue_models(queues: Sequence[Queue], allocated: Mapping[str, Usage],
                        cluster: str = DEFAULT_CLUSTER) -> None:
    """Refresh per-model GPU usage against per-model guarantee and ceiling, for the models queues declare."""
    used: dict[tuple[str, str], float] = {}
    guaranteed: dict[tuple[str, str], float] = {}
    ceiling: dict[tuple[str, str], float] = {}
    for q in queues:
        usage = allocated.get(q.name)
        for model in sorted(set(q.guaranteed_models) | set(q.maximum_models)):
            used[(q.name, model)] = (usage.on_model(model) if usage is not None else 0) / MILLI_GPU
            if model in q.guaranteed_models:
                guaranteed[(q.name, model)] = q.guaranteed_models[model] / MILLI_GPU
            if model in q.maximum_models:
                ceiling[(q.name, model)] = q.maximum_models[model] / MILLI_GPU
    with _LOCK:
        _replace(QUEUE_GPU_MODEL_ALLOCATED, used, cluster)
        _replace(QUEUE_GPU_MODEL_GUARANTEED, guaranteed, cluster)
        _replace(QUEUE_GPU_MODEL_MAX, ceiling, cluster)


# ---- agent helpers ---------------------------------------------------------------------------
def set_agent_readings(node: str, readings: Iterable[Mapping[str, Any]]) -> None:
    """Replace the agent's per-GPU gauges from readings in the annotation's JSON shape."""
    rows: dict[str, dict[tuple[str, ...], float]] = {"util": {}, "free": {}, "total": {}, "temp": {}, "ok": {}}
    for r in readings:
        key = (node, str(r["index"]), str(r.get("model") or "unknown"))
        _put_finite(rows["util"], key, r.get("utilization_pct"))
        _put_finite(rows["free"], key, _scaled(r.get("memory_free_mib"), MIB))
        _put_finite(rows["total"], key, _scaled(r.get("memory_total_mib"), MIB))
        _put_finite(rows["temp"], key, r.get("temperature_c"))
        rows["ok"][key] = 1.0 if r.get("healthy") else 0.0
    with _LOCK:
        _replace(AGENT_GPU_UTILIZATION, rows["util"])
        _replace(AGENT_GPU_MEMORY_FREE, rows["free"])
        _replace(AGENT_GPU_MEMORY_TOTAL, rows["total"])
        _replace(AGENT_GPU_TEMPERATURE, rows["temp"])
        _replace(AGENT_GPU_HEALTHY, rows["ok"])


def record_agent_read_error(field: str) -> None:
    AGENT_READ_ERRORS.labels(field=_code(field)).inc()


def record_agent_publish(ok: bool, at: float) -> None:
    AGENT_PUBLISHES.labels(result="ok" if ok else "error").inc()
    if ok:
        AGENT_LAST_PUBLISH.set(at)


def set_gpu_findings(idle: Mapping[tuple[str, str], float], busy_without_bigk: Mapping[str, float],
                     over_share: Mapping[str, float], conflicts: Mapping[str, float],
                     cluster: str = DEFAULT_CLUSTER) -> None:
    """Replace one cluster's GPU findings gauges (its GPU watch; the other clusters' series stay): idle GPUs by
    (queue, job spec), the others by pool."""
    with _LOCK:
        _replace(GPUS_IDLE, idle, cluster)
        _replace(GPUS_BUSY_WITHOUT_BIGK, {(p,): v for p, v in busy_without_bigk.items()}, cluster)
        _replace(GPUS_OVER_SHARE, {(p,): v for p, v in over_share.items()}, cluster)
        _replace(GPU_DEVICE_CONFLICTS, {(p,): v for p, v in conflicts.items()}, cluster)


# ---- internals -------------------------------------------------------------------------------
def _replace(gauge: Gauge, values: Mapping[Any, float], cluster: str | None = None) -> None:
    """Set a labelled gauge to exactly `values` (label tuples in declared order).

    With `cluster`, only that cluster's series are replaced (the tuples leave the leading cluster label out):
    each cluster's loop refreshes its own series and must not wipe the others'.
    """
    if cluster is None:
        gauge.clear()
        for labels, value in values.items():
            gauge.labels(*labels).set(value)
        return
    key = (id(gauge), cluster)
    wanted = {(cluster, *labels) for labels in values}
    for gone in _SERIES.get(key, set()) - wanted:
        with contextlib.suppress(KeyError):  # cleared meanwhile (a test's reset)
            gauge.remove(*gone)
    for labels, value in values.items():
        gauge.labels(cluster, *labels).set(value)
    _SERIES[key] = wanted


# The series `_replace` set per (gauge, cluster), so that the next call removes exactly those that went away.
_SERIES: dict[tuple[int, str], set[tuple[str, ...]]] = {}


def _put_finite(rows: dict[tuple[str, ...], float], key: tuple[str, ...], value: object) -> None:
    if value is None:
        return
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return
    if np.isfinite(number):
        rows[key] = number


def _scaled(value: object, factor: float) -> float | None:
    if value is None:
        return None
    try:
        return float(value) * factor  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None

