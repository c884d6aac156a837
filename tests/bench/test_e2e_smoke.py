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
from bigk.cluster.model import Gpu, Node


def test_packing_pool_is_trace_gpu_nodes_with_gfd_products_and_pods_stop_before_100_percent() -> None:
    pool = e2e.trace_pool(40, seed=7)
    assert pool == e2e.trace_pool(40, seed=7) and len({n.name for n in pool}) == 40
    assert all(n.name.startswith("openb-node-") and n.gpus and n.labels == {e2e.POOL: "packing"} for n in pool)
    assert {n.gpus[0].model for n in pool} - {"G1", "G2", "G3"} <= set(e2e.GFD_PRODUCTS.values())
    capacity = sum(len(n.gpus) for n in pool)
    requests = e2e.sampled_requests(capacity, seed=7)
    assert requests == e2e.sampled_requests(capacity, seed=7) != e2e.sampled_requests(capacity, seed=8)
    assert capacity - 8 < sum(r[3] for r in requests) <= capacity
    assert any(r[3] == 0 for r in requests)  # CPU-only pods of the trace come too


def test_pending_reasons_tell_gpu_fragmentation_from_cpu_stranding() -> None:
    pool = [Node("a", 8_000, 64_000, gpus=[Gpu(g, "T", 1) for g in range(4)]),
            Node("b", 16_000, 64_000, gpus=[Gpu(g, "T", 1) for g in range(2)])]
    requests = {"big": ("t", 4_000, 1_000, 4), "cpu": ("t", 10_000, 1_000, 1), "gpu": ("t", 1_000, 1_000, 4),
                "fits": ("t", 1_000, 1_000, 1), "hog": ("t", 7_000, 1_000, 0)}
    out = e2e.pending_reasons(pool, {"big": "a", "hog": "b"}, requests)
    # a: 4,000 m CPU and no GPU free; b: 9,000 m and 2 GPUs free
    assert out["pending_pods_by_reason"] == {"gpu": 1, "cpu_or_memory": 1, "fits_somewhere": 1}
    assert out["pending_gpus_by_reason"] == {"gpu": 4, "cpu_or_memory": 1, "fits_somewhere": 1}
    assert out["free_gpus"] == 2 and out["nodes_with_free_gpus"] == 1
    out = e2e.pending_reasons(pool, {"big": "a", "hog": "b", "fits": "b"}, requests)
    assert out["pending_pods_by_reason"] == {"gpu": 1, "cpu_or_memory": 1, "fits_somewhere": 0}
    assert out["free_gpus_on_nodes_without_cpu_for_a_gpu_pod"] == 0
    requests["hog"] = ("t", 15_500, 1_000, 0)  # b keeps 500 m CPU: its 2 free GPUs are stranded
    out = e2e.pending_reasons(pool, {"big": "a", "hog": "b"}, requests)
    assert out["free_gpus_on_nodes_without_cpu_for_a_gpu_pod"] == 2 == out["free_gpus"]
    assert out["pending_pods_by_reason"] == {"gpu": 1, "cpu_or_memory": 2, "fits_somewhere": 0}


@pytest.mark.cluster
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
        assert spark["gangs_whole"] + spark["gangs_never_whole"] == 4
        if spark["gangs_whole"]:
            assert 0 < spark["gang_latency_p50_s"] <= spark["gang_latency_p99_s"] <= spark["window_s"]
        pack = rows[(scheduler, "packing")]
        assert 0 <= pack["unallocated_gpu_pct"] <= 100 and pack["requested_gpus"] <= pack["pool_gpus"]
        assert pack["pool_nodes"] == 3 and sum(pack["pending_pods_by_reason"].values()) == \
            pack["trace_pods"] - pack["bound"]
    assert rows[("bigk", "throughput")]["bound"] == 20
    bigk_spark = rows[("bigk", "spark")]
    assert bigk_spark["stuck"] == 0 and bigk_spark["gpus_held_by_stuck"] == 0
    assert bigk_spark["complete"] == 4 and bigk_spark["gangs_whole"] == 4  # every gang became whole, in turn
    assert (tmp_path / "e2e.png").stat().st_size > 0
