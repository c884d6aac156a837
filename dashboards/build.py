"""Generate bigk's Grafana dashboards (the *.json files beside this script).

    python3 dashboards/build.py          # rewrite the JSON files (and the Helm chart's copies)
    python3 dashboards/build.py --check  # exit 1 if any committed copy is out of date

The Helm chart cannot read files outside its folder, so this script also copies
the dashboards and alerts.yaml into helm/bigk/files/ (the chart's ConfigMap and
PrometheusRule); `--check` fails when a copy differs.

Panels are declared here once, in a compact form, so the PromQL stays readable
and every dashboard shares the same datasource and filter variables. Only
metric names from `bigk/metrics.py` may appear; tests/observability runs every
expression against a real Prometheus.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CHART_FILES = HERE.parent / "helm" / "bigk" / "files"
DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"


@dataclass
class Panel:
    title: str
    exprs: list[tuple[str, str]]  # (PromQL, legend)
    unit: str = "short"
    kind: str = "timeseries"  # timeseries | stat | table | bargauge
    description: str = ""
    width: int = 12
    height: int = 8
    extra: dict[str, Any] = field(default_factory=dict)


def _var_query(name: str, label: str, metric: str) -> dict[str, Any]:
    query = f"label_values({metric}, {label})"
    return {"type": "query", "name": name, "label": name, "datasource": DS, "definition": query,
            "query": {"query": query, "refId": f"{name}-values"}, "refresh": 2, "includeAll": True,
            "multi": True, "allValue": ".*", "current": {"text": "All", "value": "$__all"}, "sort": 1}


def _cluster_var() -> dict[str, Any]:
    """Every scheduler, pool, per-GPU and queue family carries `cluster` (one cluster: "default")."""
    return _var_query("cluster", "cluster", "bigk_scheduler_last_cycle_timestamp_seconds")


def _dashboard(uid: str, title: str, description: str, variables: list[dict[str, Any]],
               rows: list[list[Panel]]) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    y = 0
    pid = 1
    for row in rows:
        x = 0
        height = max(p.height for p in row)
        for p in row:
            targets = [{"datasource": DS, "expr": expr, "legendFormat": legend, "refId": chr(ord("A") + i),
                        **({"instant": True, "format": "table"} if p.kind == "table" else {})}
                       for i, (expr, legend) in enumerate(p.exprs)]
            panel: dict[str, Any] = {
                "id": pid, "type": p.kind, "title": p.title, "description": p.description, "datasource": DS,
                "gridPos": {"x": x, "y": y, "w": p.width, "h": p.height},
                "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
                "options": {"legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull"]}}
                if p.kind == "timeseries" else {},
                "targets": targets,
            }
            panel.update(p.extra)
            panels.append(panel)
            pid += 1
            x += p.width
        y += height
    datasource_var = {"type": "datasource", "name": "datasource", "label": "Prometheus", "query": "prometheus",
                      "current": {}, "hide": 0}
    return {
        "uid": uid, "title": title, "description": description, "tags": ["bigk"], "editable": True,
        "schemaVersion": 39, "version": 1, "refresh": "30s", "timezone": "browser",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [datasource_var, *variables]},
        "annotations": {"list": []},
        "panels": panels,
    }


def gpus() -> dict[str, Any]:
    sel = 'cluster=~"$cluster",pool=~"$pool"'
    return _dashboard(
        "bigk-gpus", "bigk / Cluster and GPUs",
        "GPU capacity, allocation, live utilisation, health and fragmentation, from bigk serve and bigk agent.",
        [_cluster_var(), _var_query("pool", "pool", "bigk_pool_capacity")],
        [
            [Panel("GPUs allocated", [(f'sum(bigk_pool_allocated{{resource="gpu",{sel}}})', "allocated")],
                   kind="stat", width=6, height=5),
             Panel("GPU capacity (schedulable nodes)", [(f'sum(bigk_pool_capacity{{resource="gpu",{sel}}})',
                                                         "capacity")], kind="stat", width=6, height=5),
             Panel("GPUs allocated but idle", [(f"sum(bigk_gpus_allocated_idle{{{sel}}})", "idle")], kind="stat",
                   width=6, height=5, description="Allocated GPU share whose live utilisation is under the idle "
                                                  "threshold (default 5%)."),
             Panel("Unhealthy GPUs", [(f"count(bigk_gpu_healthy{{{sel}}} == 0) or vector(0)", "unhealthy")],
                   kind="stat", width=6, height=5)],
            [Panel("GPU allocation by cluster and pool", [(
                f'sum by (cluster, pool) (bigk_pool_allocated{{resource="gpu",{sel}}}) / '
                f'sum by (cluster, pool) (bigk_pool_capacity{{resource="gpu",{sel}}})', "{{cluster}} {{pool}}")],
                unit="percentunit"),
             Panel("Allocated but idle GPUs by pool", [(f"bigk_gpus_allocated_idle{{{sel}}}", "{{cluster}} {{pool}}")],
                   description="GPUs bigk handed out that are doing (almost) nothing: candidates for reclaim.")],
            [Panel("Live utilisation of allocated GPUs", [(
                f"avg by (cluster, pool) (bigk_gpu_utilization_percent{{{sel}}} and on (cluster, node, gpu) "
                f"(bigk_gpu_allocated_milli{{{sel}}} > 0))", "{{cluster}} {{pool}}")], unit="percent"),
             Panel("Stranded GPU capacity by reason", [(f"sum by (reason) (bigk_gpus_stranded{{{sel}}})",
                                                        "{{reason}}")],
                   description="Free GPU capacity no whole-GPU pod can use: partial_gpu fragments, GPUs on nodes "
                               "whose CPU/memory is full, unhealthy GPUs.")],
            [Panel("Allocated but idle GPUs (per GPU)", [(
                f"(bigk_gpu_allocated_milli{{{sel}}} > 0) and on (cluster, node, gpu) "
                f"(bigk_gpu_utilization_percent{{{sel}}} < 5)", "")], kind="table"),
             Panel("Unhealthy GPUs (per GPU)", [(f"bigk_gpu_healthy{{{sel}}} == 0", "")], kind="table")],
            [Panel("GPUs idle for the whole window, by job", [
                ('sum by (cluster, queue, job_name) (bigk_gpus_idle{cluster=~"$cluster"})',
                 "{{cluster}} {{queue}} / {{job_name}}")],
                description="GPUs held by runs whose every reading stayed under the idle threshold for "
                            "--gpu-idle-minutes; `bigk get gpus --idle` names the runs."),
             Panel("GPUs busy without bigk, over their share, given twice", [
                 (f"sum by (cluster, pool) (bigk_gpus_busy_without_bigk{{{sel}}})",
                  "busy without bigk {{cluster}} {{pool}}"),
                 (f"sum by (cluster, pool) (bigk_gpus_over_share{{{sel}}})", "over share {{cluster}} {{pool}}"),
                 (f"sum by (cluster, pool) (bigk_gpu_device_conflicts{{{sel}}})",
                  "device conflict {{cluster}} {{pool}}")],
                 description="Someone else's work on a GPU; a share using more memory than it asked for; a GPU "
                             "the device plugin gave out while bigk shared it (docs/gpus.md).")],
            [Panel("Hottest GPU per node", [(f"max by (cluster, node) (bigk_gpu_temperature_celsius{{{sel}}})",
                                             "{{cluster}} {{node}}")], unit="celsius", width=8),
             Panel("Free GPU memory by pool", [(f"sum by (pool) (bigk_gpu_memory_free_bytes{{{sel}}})", "{{pool}}")],
                   unit="bytes", width=8),
             Panel("Oldest GPU reading per node", [(f"max by (cluster, node) (bigk_gpu_reading_age_seconds{{{sel}}})",
                                                    "{{cluster}} {{node}}")], unit="s", width=8,
                   description="A growing age means the node's bigk agent (or DCGM) stopped reporting.")],
            [Panel("CPU and memory allocation by pool", [
                (f'sum by (pool) (bigk_pool_allocated{{resource="cpu",{sel}}}) / '
                 f'sum by (pool) (bigk_pool_capacity{{resource="cpu",{sel}}})', "cpu {{pool}}"),
                (f'sum by (pool) (bigk_pool_allocated{{resource="memory",{sel}}}) / '
                 f'sum by (pool) (bigk_pool_capacity{{resource="memory",{sel}}})', "memory {{pool}}")],
                unit="percentunit"),
             Panel("Nodes by state", [(f"sum by (cluster, state) (bigk_nodes{{{sel}}})", "{{cluster}} {{state}}")])],
            [Panel("Agent: GPU utilisation (NVML)", [("bigk_agent_gpu_utilization_percent", "{{node}}/{{gpu}}")],
                   unit="percent"),
             Panel("Agent: publish errors", [('sum by (instance) (rate(bigk_agent_publishes_total{result="error"}'
                                              f"[{RATE}]))", "{{instance}}")], unit="ops")],
        ])


def queues() -> dict[str, Any]:
    sel = 'cluster=~"$cluster",queue=~"$queue"'
    qsel = 'queue=~"$queue"'  # run families (bigk.service.lifecycle) count runs wherever they went
    rows = []
    for resource, unit in (("gpu", "short"), ("cpu", "short"), ("memory", "bytes")):
        rows.append([Panel(f"{resource.upper()} allocated vs guaranteed and max", [
            (f'bigk_queue_allocated{{resource="{resource}",{sel}}}', "allocated {{queue}}"),
            (f'bigk_queue_guaranteed{{resource="{resource}",{sel}}}', "guaranteed {{queue}}"),
            (f'bigk_queue_max{{resource="{resource}",{sel}}}', "max {{queue}}")], unit=unit, width=24)])
    return _dashboard(
        "bigk-queues", "bigk / Queues",
        "Per-queue usage against guarantees and ceilings, what waits, and what gets preempted.",
        [_cluster_var(), _var_query("queue", "queue", "bigk_queue_allocated")],
        [
            *rows,
            [Panel("GPUs by model (gpuByModel quotas): allocated vs guaranteed and max", [
                (f"bigk_queue_gpu_model_allocated{{{sel}}}", "allocated {{queue}} {{model}}"),
                (f"bigk_queue_gpu_model_guaranteed{{{sel}}}", "guaranteed {{queue}} {{model}}"),
                (f"bigk_queue_gpu_model_max{{{sel}}}", "max {{queue}} {{model}}")], width=24)],
            [Panel("GPU use as share of guarantee", [(
                f'bigk_queue_allocated{{resource="gpu",{sel}}} / bigk_queue_guaranteed{{resource="gpu",{sel}}}',
                "{{queue}}")], unit="percentunit"),
             Panel("Preemptions by victim queue", [(
                f"sum by (queue) (rate(bigk_scheduler_preemptions_total{{{sel}}}[{RATE}]))", "{{queue}}")],
                unit="ops")],
            [Panel("Pending pods", [(f"bigk_scheduler_pending_pods{{{sel}}}", "{{queue}}")], width=8),
             Panel("Pending gangs", [(f"bigk_scheduler_pending_gangs{{{sel}}}", "{{queue}}")], width=8),
             Panel("Oldest pending gang", [(f"bigk_scheduler_oldest_pending_gang_age_seconds{{{sel}}}", "{{queue}}")],
                   unit="s", width=8)],
            [Panel("Gang admission latency p50 / p95", [
                (f"histogram_quantile(0.5, sum by (le, queue) "
                 f"(rate(bigk_scheduler_gang_admission_latency_seconds_bucket{{{sel}}}[{RATE}])))", "p50 {{queue}}"),
                (f"histogram_quantile(0.95, sum by (le, queue) "
                 f"(rate(bigk_scheduler_gang_admission_latency_seconds_bucket{{{sel}}}[{RATE}])))", "p95 {{queue}}")],
                unit="s"),
             Panel("Run queue wait p95", [(
                f"histogram_quantile(0.95, sum by (le, queue) (rate(bigk_run_queue_wait_seconds_bucket{{{qsel}}}"
                f"[{RATE}])))", "{{queue}}")], unit="s")],
        ])


def scheduler() -> dict[str, Any]:
    sel = 'cluster=~"$cluster"'
    return _dashboard(
        "bigk-scheduler", "bigk / Scheduler",
        "Clusters, scheduling throughput, latency, bind failures, reservations and why pods wait.",
        [_cluster_var()],
        [
            [Panel("Clusters answering", [(f"bigk_cluster_up{{{sel}}}", "{{cluster}}")], kind="stat", width=6,
                   description="1 while the cluster's API answers bigk serve (bigk get clusters)."),
             Panel("GPU allocation by cluster", [(
                 f"bigk_cluster_gpus_allocated{{{sel}}} / clamp_min(bigk_cluster_gpus{{{sel}}}, 1e-9)",
                 "{{cluster}}")], unit="percentunit", width=6),
             Panel("Waiting gangs by cluster", [(f"bigk_cluster_waiting_gangs{{{sel}}}", "{{cluster}}")], width=6),
             Panel("Active runs by cluster", [(f"sum by (cluster) (bigk_cluster_runs{{{sel}}})", "{{cluster}}")],
                   width=6, description="Runs recorded on each cluster and not ended (Unknown while it is lost).")],
            [Panel("Binds per second", [(f"sum by (cluster) (rate(bigk_scheduler_bind_successes_total{{{sel}}}"
                                         f"[{RATE}]))", "{{cluster}}")], unit="ops", width=8),
             Panel("Bind failure ratio", [(
                f"sum by (cluster) (rate(bigk_scheduler_bind_failures_total{{{sel}}}[{RATE}])) / "
                f"clamp_min(sum by (cluster) (rate(bigk_scheduler_bind_attempts_total{{{sel}}}[{RATE}])), 1e-9)",
                "{{cluster}}")], unit="percentunit", width=8),
             Panel("Seconds since last scheduling cycle", [(
                f"time() - max by (cluster) (bigk_scheduler_last_cycle_timestamp_seconds{{{sel}}})", "{{cluster}}")],
                unit="s", kind="stat", width=8)],
            [Panel("Bind failures by reason", [(
                f"sum by (cluster, reason) (rate(bigk_scheduler_bind_failures_total{{{sel}}}[{RATE}]))",
                "{{cluster}} {{reason}}")], unit="ops"),
             Panel("Scheduling cycle duration p50 / p99", [
                 (f"histogram_quantile(0.5, sum by (le, cluster) (rate(bigk_scheduler_cycle_duration_seconds_bucket"
                  f"{{{sel}}}[{RATE}])))", "p50 {{cluster}}"),
                 (f"histogram_quantile(0.99, sum by (le, cluster) (rate(bigk_scheduler_cycle_duration_seconds_bucket"
                  f"{{{sel}}}[{RATE}])))", "p99 {{cluster}}")], unit="s")],
            [Panel("Scheduling cycles per second", [(
                f"sum by (cluster) (rate(bigk_scheduler_cycle_duration_seconds_count{{{sel}}}[{RATE}]))",
                "{{cluster}}")], unit="ops", width=8),
             Panel("Gang reservations", [
                 (f"sum by (cluster) (bigk_scheduler_reservations_active{{{sel}}})", "active {{cluster}}"),
                 (f"sum by (cluster) (rate(bigk_scheduler_reservations_expired_total{{{sel}}}[{RATE}]))",
                  "expired/s {{cluster}}")], width=8),
             Panel("Leader", [(f"bigk_scheduler_leader{{{sel}}}", "{{cluster}} {{instance}}")], width=8)],
            [Panel("Why pods wait (explanations by reason)", [(
                f"sum by (reason) (rate(bigk_scheduler_unschedulable_explanations_total{{{sel}}}[{RATE}]))",
                "{{reason}}")], unit="ops"),
             Panel("Preemptions", [(f"sum by (cluster) (rate(bigk_scheduler_preemptions_total{{{sel}}}[{RATE}]))",
                                    "{{cluster}}")], unit="ops")],
            [Panel("Versions", [("bigk_build_info", "")], kind="table", width=24, height=5)],
        ])


def runs() -> dict[str, Any]:
    sel = 'job_name=~"$job_name"'
    return _dashboard(
        "bigk-runs", "bigk / Runs",
        "Scheduled Spark runs: outcomes, durations, queue wait, and job spec health.",
        [_var_query("job_name", "job_name", "bigk_runs_total")],
        [
            [Panel("Runs entering each state (per hour)", [(
                f"sum by (state) (increase(bigk_runs_total{{{sel}}}[1h]))", "{{state}}")]),
             Panel("Success ratio by job (6h)", [(
                f'sum by (job_name) (increase(bigk_runs_total{{state="succeeded",{sel}}}[6h])) / '
                f'sum by (job_name) (increase(bigk_runs_total{{state=~"succeeded|failed",{sel}}}[6h]))',
                "{{job_name}}")], unit="percentunit")],
            [Panel("Active runs by state", [(f"sum by (state) (bigk_runs_current{{{sel}}})", "{{state}}")],
                   width=8),
             Panel("Run duration p50 / p95", [
                 (f"histogram_quantile(0.5, sum by (le, job_name) (rate(bigk_run_duration_seconds_bucket{{{sel}}}"
                  f"[{RATE}])))", "p50 {{job_name}}"),
                 (f"histogram_quantile(0.95, sum by (le, job_name) (rate(bigk_run_duration_seconds_bucket{{{sel}}}"
                  f"[{RATE}])))", "p95 {{job_name}}")], unit="s", width=8),
             Panel("Queue wait p95", [(
                f"histogram_quantile(0.95, sum by (le) (rate(bigk_run_queue_wait_seconds_bucket[{RATE}])))", "p95")],
                unit="s", width=8)],
            [Panel("Job spec files with errors", [("bigk_spec_load_errors > 0", "")], kind="table", width=8),
             Panel("Catalog loads by result", [(f"sum by (result) (rate(bigk_spec_loads_total[{RATE}]))",
                                                "{{result}}")], unit="ops", width=8),
             Panel("Fires missed (beyond startingDeadlineSeconds, per hour)", [(
                 f"sum by (job_name) (increase(bigk_runs_missed_total{{{sel}}}[1h]))", "{{job_name}}")], width=8,
                 description="Scheduled fire times found too late to run (bigk down or not leading); 0 is good.")],
        ])


DASHBOARDS = {"bigk-gpus.json": gpus, "bigk-queues.json": queues, "bigk-scheduler.json": scheduler,
              "bigk-runs.json": runs}


def render_all() -> dict[Path, str]:
    """Path -> text of every generated file, exactly as committed."""
    out: dict[Path, str] = {}
    for name, build in DASHBOARDS.items():
        text = json.dumps(build(), indent=2, sort_keys=False) + "\n"
        out[HERE / name] = text
        out[CHART_FILES / "dashboards" / name] = text
    out[CHART_FILES / "alerts.yaml"] = (HERE / "alerts.yaml").read_text()
    return out


def main(argv: list[str]) -> int:
    stale = []
    for path, text in render_all().items():
        if "--check" in argv:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(HERE.parent)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"out of date: {', '.join(stale)} (run python3 dashboards/build.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
