"""Every Prometheus metric bigk exports, in one place.

`bigk serve` exposes `REGISTRY` on `/metrics` (use `render()` and `CONTENT_TYPE`);
`bigk agent` exposes `AGENT_REGISTRY` (use `render_agent()`). Both are private
registries rather than prometheus-client's global default, so tests can read and
reset them in isolation and no library metric leaks in by accident.

Labels are kept low-cardinality on purpose: queue, job spec name (`job_name`, as
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
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bigk.cluster.model import MILLI_GPU, Queue
from bigk.cluster.state import DEFAULT_STALE_AFTER_S, ClusterState

# `*_created` series double the output and nothing of ours reads them (process-wide switch).
disable_created_metrics()

CONTENT_TYPE = CONTENT_TYPE_LATEST
DEFAULT_IDLE_THRESHOLD_PCT = 5.0
MIB = 1024 * 1024

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
                  registry=REGISTRY)

# ---- scheduler ---------------------------------------------------------------------
BIND_ATTEMPTS = Counter(
    "bigk_scheduler_bind_attempts_total",
    "Pod bind calls the scheduler sent to the Kubernetes API (one per pod).",
    registry=REGISTRY)
BIND_SUCCESSES = Counter(
    "bigk_scheduler_bind_successes_total",
    "Pod binds the API server accepted.",
    registry=REGISTRY)
BIND_FAILURES = Counter(
    "bigk_scheduler_bind_failures_total",
    "Pod binds that failed, by reason code (e.g. conflict, node_gone, api_error, gated, timeout).",
    ["reason"], registry=REGISTRY)
CYCLE_DURATION = Histogram(
    "bigk_scheduler_cycle_duration_seconds",
    "Wall time of one scheduling cycle (snapshot, admit, allocate, preempt, backfill; excludes bind I/O).",
    buckets=_SECONDS_FAST, registry=REGISTRY)
LAST_CYCLE = Gauge(
    "bigk_scheduler_last_cycle_timestamp_seconds",
    "Unix time the last scheduling cycle finished; a stale value means the scheduler loop is stuck.",
    registry=REGISTRY)
IS_LEADER = Gauge(
    "bigk_scheduler_leader",
    "1 if this replica holds the scheduler leader lease, else 0.",
    registry=REGISTRY)
PENDING_PODS = Gauge(
    "bigk_scheduler_pending_pods",
    "Pods waiting for a node, by queue.",
    ["queue"], registry=REGISTRY)
PENDING_GANGS = Gauge(
    "bigk_scheduler_pending_gangs",
    "Gangs (Spark applications) not yet admitted, by queue.",
    ["queue"], registry=REGISTRY)
OLDEST_PENDING_GANG = Gauge(
    "bigk_scheduler_oldest_pending_gang_age_seconds",
    "Age of the oldest gang still waiting for admission, by queue (0 when none waits).",
    ["queue"], registry=REGISTRY)
GANG_ADMISSION_LATENCY = Histogram(
    "bigk_scheduler_gang_admission_latency_seconds",
    "Time from a gang's first pod appearing to the whole gang minimum being reserved, by queue.",
    ["queue"], buckets=_SECONDS_WAIT, registry=REGISTRY)
PREEMPTIONS = Counter(
    "bigk_scheduler_preemptions_total",
    "Pods evicted to make room for higher-priority or under-guarantee work, by the victim's queue.",
    ["queue"], registry=REGISTRY)
RESERVATIONS_ACTIVE = Gauge(
    "bigk_scheduler_reservations_active",
    "Gang reservations currently holding resources for executors not yet created.",
    registry=REGISTRY)
RESERVATIONS_EXPIRED = Counter(
    "bigk_scheduler_reservations_expired_total",
    "Gang reservations released because their executors did not show up in time.",
    registry=REGISTRY)
EXPLANATIONS = Counter(
    "bigk_scheduler_unschedulable_explanations_total",
    "Why-pending explanations produced, by main reason code (e.g. insufficient_gpu, quota, taint, gang_min).",
    ["reason"], registry=REGISTRY)

# ---- runs ----------------------------------------------------------------------------
RUN_TRANSITIONS = Counter(
    "bigk_runs_total",
    "Runs that entered a state, by job spec name and state (pending, submitted, running, succeeded, failed, "
    "cancelled).",
    ["job_name", "state"], registry=REGISTRY)
RUNS_CURRENT = Gauge(
    "bigk_runs_current",
    "Runs currently in a non-terminal state, by job spec name and state.",
    ["job_name", "state"], registry=REGISTRY)
RUN_DURATION = Histogram(
    "bigk_run_duration_seconds",
    "Wall time of finished runs from driver start to end, by job spec name and final state.",
    ["job_name", "state"], buckets=_SECONDS_RUN, registry=REGISTRY)
RUN_QUEUE_WAIT = Histogram(
    "bigk_run_queue_wait_seconds",
    "Time from a run being submitted to its driver starting, by queue.",
    ["queue"], buckets=_SECONDS_WAIT, registry=REGISTRY)
SPEC_LOAD_ERRORS = Gauge(
    "bigk_spec_load_errors",
    "Errors found in each job spec file at the last catalog load (0 once fixed; files with no error are absent).",
    ["file"], registry=REGISTRY)
SPEC_LOADS = Counter(
    "bigk_spec_loads_total",
    "Catalog loads of the job spec folder, by result (ok, error).",
    ["result"], registry=REGISTRY)

# ---- cluster and GPUs ----------------------------------------------------------------
_GPU_LABELS = ["node", "gpu", "pool", "model"]
GPU_ALLOCATED = Gauge(
    "bigk_gpu_allocated_milli",
    "Milli-GPU (1000 = the whole GPU) bigk has allocated on each GPU.",
    _GPU_LABELS, registry=REGISTRY)
GPU_UTILIZATION = Gauge(
    "bigk_gpu_utilization_percent",
    "Live GPU utilisation in percent from the last fresh reading (absent when the reading is stale or unknown).",
    _GPU_LABELS, registry=REGISTRY)
GPU_MEMORY_FREE = Gauge(
    "bigk_gpu_memory_free_bytes",
    "Live free GPU memory in bytes from the last fresh reading.",
    _GPU_LABELS, registry=REGISTRY)
GPU_MEMORY_TOTAL = Gauge(
    "bigk_gpu_memory_total_bytes",
    "GPU memory capacity in bytes.",
    _GPU_LABELS, registry=REGISTRY)
GPU_TEMPERATURE = Gauge(
    "bigk_gpu_temperature_celsius",
    "Live GPU temperature in degrees Celsius from the last fresh reading.",
    _GPU_LABELS, registry=REGISTRY)
GPU_HEALTHY = Gauge(
    "bigk_gpu_healthy",
    "1 if the GPU is usable (healthy or no fresh reading says otherwise), 0 if a fresh reading marks it unhealthy.",
    _GPU_LABELS, registry=REGISTRY)
GPU_READING_AGE = Gauge(
    "bigk_gpu_reading_age_seconds",
    "Seconds since the GPU's last live reading (absent if none ever arrived).",
    _GPU_LABELS, registry=REGISTRY)
GPUS_ALLOCATED_IDLE = Gauge(
    "bigk_gpus_allocated_idle",
    "GPUs (allocated share, in whole GPUs) that bigk allocated but whose fresh live utilisation is below "
    "the idle threshold (default 5%), by pool.",
    ["pool"], registry=REGISTRY)
GPUS_STRANDED = Gauge(
    "bigk_gpus_stranded",
    "Free GPU capacity (in GPUs) that cannot serve a whole-GPU pod, by pool and reason: partial_gpu = free share "
    "on a partly allocated GPU; host_full = free GPUs on a node with no CPU or memory left; "
    "unhealthy = free GPUs marked unhealthy.",
    ["pool", "reason"], registry=REGISTRY)
POOL_CAPACITY = Gauge(
    "bigk_pool_capacity",
    "Allocatable capacity of schedulable nodes, by pool and resource (cpu in cores, memory in bytes, gpu in GPUs).",
    ["pool", "resource"], registry=REGISTRY)
POOL_ALLOCATED = Gauge(
    "bigk_pool_allocated",
    "Capacity bigk has allocated, by pool and resource (cpu in cores, memory in bytes, gpu in GPUs).",
    ["pool", "resource"], registry=REGISTRY)
NODES = Gauge(
    "bigk_nodes",
    "Nodes known to bigk, by pool and state (schedulable, cordoned).",
    ["pool", "state"], registry=REGISTRY)
QUEUE_ALLOCATED = Gauge(
    "bigk_queue_allocated",
    "Resources allocated to a queue's pods (cpu in cores, memory in bytes, gpu in GPUs).",
    ["queue", "resource"], registry=REGISTRY)
QUEUE_GUARANTEED = Gauge(
    "bigk_queue_guaranteed",
    "Resources guaranteed to a queue (cpu in cores, memory in bytes, gpu in GPUs); absent if none.",
    ["queue", "resource"], registry=REGISTRY)
QUEUE_MAX = Gauge(
    "bigk_queue_max",
    "Ceiling on a queue's resources (cpu in cores, memory in bytes, gpu in GPUs); absent if unlimited.",
    ["queue", "resource"], registry=REGISTRY)

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


def render() -> bytes:
    """The `/metrics` body for `bigk serve` (Prometheus text format; see CONTENT_TYPE)."""
    with _LOCK:
        return generate_latest(REGISTRY)


def render_agent() -> bytes:
    """The `/metrics` body for `bigk agent`."""
    with _LOCK:
        return generate_latest(AGENT_REGISTRY)


# ---- scheduler helpers ---------------------------------------------------------------------
def record_bind(ok: bool, reason: str = "") -> None:
    """Count one bind attempt and its outcome; `reason` is a short code when it failed."""
    BIND_ATTEMPTS.inc()
    if ok:
        BIND_SUCCESSES.inc()
    else:
        BIND_FAILURES.labels(reason=_code(reason or "unknown")).inc()


def observe_cycle(seconds: float, finished_at: float) -> None:
    """Record one scheduling cycle's duration and when it finished (unix seconds)."""
    CYCLE_DURATION.observe(seconds)
    LAST_CYCLE.set(finished_at)


def set_leader(is_leader: bool) -> None:
    IS_LEADER.set(1 if is_leader else 0)


def set_pending(pods_by_queue: Mapping[str, int], gangs_by_queue: Mapping[str, int],
                oldest_gang_age_by_queue: Mapping[str, float] | None = None) -> None:
    """Replace the pending figures; queues missing from the mappings drop to absent."""
    with _LOCK:
        _replace(PENDING_PODS, {(q,): float(n) for q, n in pods_by_queue.items()})
        _replace(PENDING_GANGS, {(q,): float(n) for q, n in gangs_by_queue.items()})
        ages = oldest_gang_age_by_queue or {}
        queues = set(gangs_by_queue) | set(ages)
        _replace(OLDEST_PENDING_GANG, {(q,): float(ages.get(q, 0.0)) for q in queues})


def observe_gang_admission(queue: str, seconds: float) -> None:
    GANG_ADMISSION_LATENCY.labels(queue=queue).observe(seconds)


def record_preemption(victim_queue: str, pods: int = 1) -> None:
    PREEMPTIONS.labels(queue=victim_queue).inc(pods)


def set_reservations(active: int) -> None:
    RESERVATIONS_ACTIVE.set(active)


def record_reservation_expired(count: int = 1) -> None:
    RESERVATIONS_EXPIRED.inc(count)


def record_explanation(reason: str) -> None:
    EXPLANATIONS.labels(reason=_code(reason)).inc()


# ---- run helpers ---------------------------------------------------------------------------
def record_run_state(job: str, state: str) -> None:
    """Count a run entering `state`."""
    RUN_TRANSITIONS.labels(job_name=job, state=_code(state)).inc()


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
                   stale_after_s: float = DEFAULT_STALE_AFTER_S) -> ClusterFigures:
    """Refresh every per-GPU, per-pool and node gauge from the scheduler's arrays.

    Only fresh readings feed live gauges and the idle figure: a GPU whose agent
    went quiet is "unknown", not "idle".
    """
    fresh = state.fresh_readings(now, stale_after_s) & state.gpu_present
    usable = state.usable_gpus(now, stale_after_s)
    pools = [state.pools[p] for p in state.pool]
    gpu_rows: dict[str, dict[tuple[str, ...], float]] = {
        "alloc": {}, "util": {}, "free": {}, "total": {}, "temp": {}, "healthy": {}, "age": {}}
    idle: dict[str, float] = {pool: 0.0 for pool in state.pools}
    stranded: dict[tuple[str, str], float] = {
        (pool, reason): 0.0 for pool in state.pools for reason in ("partial_gpu", "host_full", "unhealthy")}
    host_full = (state.cpu_free <= 0) | (state.mem_free <= 0) | (state.pods_used >= state.pods_cap)
    for i, node in enumerate(state.nodes):
        pool = pools[i]
        for gpu in node.gpus:
            g = gpu.index
            key = (node.name, str(g), pool, gpu.model)
            used = int(state.gpu_milli_used[i, g])
            free_milli = MILLI_GPU - used
            gpu_rows["alloc"][key] = float(used)
            gpu_rows["total"][key] = float(state.gpu_mem_cap[i, g]) * MIB
            gpu_rows["healthy"][key] = 1.0 if usable[i, g] else 0.0
            if np.isfinite(state.live_at[i, g]):
                gpu_rows["age"][key] = max(0.0, now - float(state.live_at[i, g]))
            if fresh[i, g]:
                _put_finite(gpu_rows["util"], key, state.live_util[i, g])
                _put_finite(gpu_rows["free"], key, state.live_free_mem[i, g] * MIB)
                _put_finite(gpu_rows["temp"], key, state.live_temp[i, g])
                util = float(state.live_util[i, g])
                if used > 0 and np.isfinite(util) and util < idle_threshold_pct:
                    idle[pool] += used / MILLI_GPU
            if free_milli <= 0:
                continue
            if not usable[i, g]:
                stranded[(pool, "unhealthy")] += free_milli / MILLI_GPU
            elif used > 0:
                stranded[(pool, "partial_gpu")] += free_milli / MILLI_GPU
            elif host_full[i]:
                stranded[(pool, "host_full")] += 1.0
    cap: dict[tuple[str, str], float] = {}
    alloc: dict[tuple[str, str], float] = {}
    nodes: dict[tuple[str, str], float] = {}
    for i in range(state.size):
        pool = pools[i]
        nkey = (pool, "schedulable" if state.schedulable[i] else "cordoned")
        nodes[nkey] = nodes.get(nkey, 0.0) + 1
        gpus = float(state.gpu_count[i])
        gpu_alloc = float(state.gpu_milli_used[i].sum()) / MILLI_GPU
        for resource, total, taken in (("cpu", state.cpu_cap[i] / 1000, state.cpu_used[i] / 1000),
                                       ("memory", state.mem_cap[i] * MIB, state.mem_used[i] * MIB),
                                       ("gpu", gpus, gpu_alloc)):
            alloc[(pool, resource)] = alloc.get((pool, resource), 0.0) + float(taken)
            if state.schedulable[i]:
                cap[(pool, resource)] = cap.get((pool, resource), 0.0) + float(total)
            else:
                cap.setdefault((pool, resource), 0.0)
    with _LOCK:
        _replace(GPU_ALLOCATED, gpu_rows["alloc"])
        _replace(GPU_UTILIZATION, gpu_rows["util"])
        _replace(GPU_MEMORY_FREE, gpu_rows["free"])
        _replace(GPU_MEMORY_TOTAL, gpu_rows["total"])
        _replace(GPU_TEMPERATURE, gpu_rows["temp"])
        _replace(GPU_HEALTHY, gpu_rows["healthy"])
        _replace(GPU_READING_AGE, gpu_rows["age"])
        _replace(GPUS_ALLOCATED_IDLE, {(p,): v for p, v in idle.items()})
        _replace(GPUS_STRANDED, dict(stranded))
        _replace(POOL_CAPACITY, cap)
        _replace(POOL_ALLOCATED, alloc)
        _replace(NODES, nodes)
    return ClusterFigures(idle, stranded)


_RESOURCE_SCALE = {"cpu": 1 / 1000, "memory": float(MIB), "gpu": 1 / MILLI_GPU}


def update_queues(queues: Sequence[Queue], allocated: Mapping[str, Mapping[str, int]]) -> None:
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
        _replace(QUEUE_ALLOCATED, used)
        _replace(QUEUE_GUARANTEED, guaranteed)
        _replace(QUEUE_MAX, ceiling)


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


# ---- internals -------------------------------------------------------------------------------
def _replace(gauge: Gauge, values: Mapping[Any, float]) -> None:
    """Set a labelled gauge to exactly `values` (label tuples in declared order)."""
    gauge.clear()
    for labels, value in values.items():
        gauge.labels(*labels).set(value)


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

