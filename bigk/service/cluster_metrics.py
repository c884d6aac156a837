"""Per-cluster figures on `/metrics`, labelled `cluster` (issue 18): health, cordon, GPUs, waiting gangs, runs.

`bigk serve` sets the source (`serve_clusters`) once started; the families are read from it
at each scrape: the rows of `bigk get clusters` (`bigk.service.clusters_api.cluster_rows`).
With one cluster they carry `cluster="default"`. The per-GPU, per-pool and node families of
`bigk.metrics` stay unlabelled and, with several clusters, describe the first (home) cluster.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bigk import metrics

log = logging.getLogger(__name__)

_lock = threading.Lock()
_source: Callable[[], list[dict[str, Any]]] | None = None


def serve_clusters(source: Callable[[], list[dict[str, Any]]] | None) -> None:
    """Where the rows come from (None: no service; the families are declared, with no samples)."""
    global _source
    with _lock:
        _source = source


class _ClustersCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        with _lock:
            source = _source
        rows: list[dict[str, Any]] = []
        try:
            rows = source() if source is not None else []
        except Exception as exc:  # a scrape must not fail because one cluster hiccups
            log.info("event=cluster_metrics_unavailable error=%r", str(exc)[:200])
        up = GaugeMetricFamily("bigk_cluster_up", "1 while the cluster's API answers bigk serve.", labels=["cluster"])
        cordoned = GaugeMetricFamily("bigk_cluster_cordoned", "1 while nothing new is dispatched to the cluster.",
                                     labels=["cluster"])
        gpus = GaugeMetricFamily("bigk_cluster_gpus", "GPUs on the cluster's schedulable nodes.", labels=["cluster"])
        allocated = GaugeMetricFamily("bigk_cluster_gpus_allocated", "GPUs allocated on the cluster (shares summed).",
                                      labels=["cluster"])
        waiting = GaugeMetricFamily("bigk_cluster_waiting_gangs", "Gangs the cluster's scheduler has waiting.",
                                    labels=["cluster"])
        runs = GaugeMetricFamily("bigk_cluster_runs", "Active runs on the cluster, by state.",
                                 labels=["cluster", "state"])
        for row in rows:
            name = row["name"]
            up.add_metric([name], 1.0 if row["reachable"] else 0.0)
            cordoned.add_metric([name], 1.0 if row["cordoned"] else 0.0)
            if row["capacity"]["gpus"] is not None:
                gpus.add_metric([name], float(row["capacity"]["gpus"]))
                allocated.add_metric([name], float(row["allocated"]["gpus"]))
            waiting.add_metric([name], float(row["waiting_gangs"]))
            for state, n in sorted(row["runs"].items()):
                runs.add_metric([name, state.lower()], float(n))
        yield from (up, cordoned, gpus, allocated, waiting, runs)


metrics.register_collector(_ClustersCollector())
