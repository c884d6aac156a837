"""The side-by-side benchmark (`bench/e2e.py`) in miniature, on the real control plane, so that it never rots.

A few nodes and pods, one small row of each workload for bigk and kube-scheduler. Figures are not checked
(2 shared cores); what is checked is that every row ran to the end and that bigk's guarantees hold:
every throughput pod bound, and no Spark application stuck with its driver bound and executors pending.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench import e2e

pytestmark = pytest.mark.cluster


@pytest.mark.skipif(bool(os.environ.get("BIGK_TEST_KUBECONFIG")), reason="starts its own control plane")
def test_e2e_smoke_runs_every_row_and_bigk_leaves_no_spark_app_stuck(tmp_path: Path) -> None:
    out = tmp_path / "e2e.json"
    assert e2e.main(["--smoke", "--nodes", "20", "--schedulers", "bigk,kube-scheduler", "--json", str(out),
                     "--plot", str(tmp_path / "e2e.png"), "--workdir", str(tmp_path / "work")]) == 0
    doc = json.loads(out.read_text())
    rows = {(r["scheduler"], r["workload"]): r["figures"] for r in doc["rows"]}
    assert set(rows) == {(s, w) for s in ("bigk", "kube-scheduler") for w in ("throughput", "spark", "packing")}
    assert doc["machine"]["cpus"] >= 1 and "kube-scheduler" in doc["versions"]
    for scheduler in ("bigk", "kube-scheduler"):
        tp = rows[(scheduler, "throughput")]  # kube-scheduler may spread GPU pods so that an 8-GPU pod fits nowhere
        assert 0 < tp["bound"] <= tp["pods"] == 20 and tp["p99_latency_s"] >= tp["p50_latency_s"] > 0
        assert tp["scheduler_cpu_s"] > 0 and tp["scheduler_peak_rss_mib"] > 0 and tp["apiserver_requests_per_s"] > 0
        spark = rows[(scheduler, "spark")]
        assert spark["complete"] + spark["stuck"] + spark["other_incomplete"] == spark["apps"] == 4
        pack = rows[(scheduler, "packing")]
        assert 0 <= pack["unallocated_gpu_pct"] <= 100 and pack["requested_gpus"] <= pack["pool_gpus"]
    assert rows[("bigk", "throughput")]["bound"] == 20
    bigk_spark = rows[("bigk", "spark")]
    assert bigk_spark["stuck"] == 0 and bigk_spark["gpus_held_by_stuck"] == 0
    assert bigk_spark["complete"] == 4
    assert (tmp_path / "e2e.png").stat().st_size > 0
