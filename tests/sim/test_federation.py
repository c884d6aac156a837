"""`bigk simulate --split N`: the inflation protocol over several clusters, each pod dispatched (issue 18)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bigk.cli.main import app
from bigk.cluster.model import Gpu, Node, PodRequest
from bigk.errors import UsageError
from bigk.sim import trace
from bigk.sim.federated_timeline import run_timeline_federated
from bigk.sim.federation import run_federated, split_nodes
from bigk.sim.inflation import run_inflation
from bigk.sim.timeline import run_timeline


def _node(name: str, gpus: int, model: str) -> Node:
    return Node(name, 64_000, 256_000, 1000, [Gpu(i, model, 16_384) for i in range(gpus)])


def test_split_by_model_gives_each_cluster_whole_models_largest_first() -> None:
    nodes = [_node(f"g2-{i}", 8, "G2") for i in range(4)] + [_node(f"t4-{i}", 2, "T4") for i in range(6)]
    nodes += [_node(f"p100-{i}", 2, "P100") for i in range(3)] + [_node("cpu", 0, "")]
    parts = split_nodes(nodes, 2, "model")
    assert [{n.gpu_model for n in p if n.gpus} for p in parts] == [{"G2"}, {"T4", "P100"}]  # 32 GPUs, then 12 + 6
    assert [n.name for n in parts[1]] == [n.name for n in nodes if n.gpu_model in ("T4", "P100")]  # order kept
    even = split_nodes(nodes, 3, "even")
    assert [len(p) for p in even] == [6, 4, 4] and even[0][0].name == "g2-0" and even[1][0].name == "g2-1"
    assert [n.name for p in even for n in p if not n.gpus] == ["cpu"]  # nodes without GPUs: dealt round robin
    with pytest.raises(ValueError, match="only 3 GPU models"):
        split_nodes(nodes, 4, "model")
    with pytest.raises(ValueError, match="unknown split"):
        split_nodes(nodes, 2, "region")


@pytest.mark.parametrize("policy", ["fgd", "bestfit", "bigk"])
def test_one_cluster_is_exactly_the_single_cluster_protocol(small_trace: tuple[Path, Path], policy: str) -> None:
    nodes, pods = (trace.load_nodes(small_trace[0]), [p.request for p in trace.load_pods(small_trace[1])])
    for seed in (1, 2):
        alone = run_inflation(nodes, pods, policy, seed)
        fed = run_federated(nodes, pods, policy, seed, 1)
        assert fed.single_pct_at_100 == fed.federated_pct_at_100 == alone.unallocated_gpu_pct_at_100
        assert fed.single_failed == fed.federated_failed == alone.failed and fed.pods == alone.pods


def test_every_pod_is_dispatched_to_one_cluster_where_it_fits_or_fails(small_trace: tuple[Path, Path]) -> None:
    nodes = trace.load_nodes(small_trace[0])
    pods = [p.request for p in trace.load_pods(small_trace[1])]
    pods += [PodRequest(4000, 1024, 1, 1000, gpu_models=frozenset({"T4"}))] * 40  # only the T4 cluster holds these
    fed = run_federated(nodes, pods, "bigk", 3, 2, "model")
    g2, t4 = fed.shares
    assert (g2.models, t4.models) == ({"G2": 96}, {"T4": 24})
    assert g2.pods + t4.pods + fed.federated_failed == fed.pods
    assert t4.pods > 0 and g2.pods > 0
    assert fed.cost_points == pytest.approx(fed.federated_pct_at_100 - fed.single_pct_at_100)
    # what each cluster leaves unallocated, weighted by its GPUs, is the federation's figure at that instant
    # (up to the protocol's averaging over the pods around 100 %)
    weighted = (g2.unallocated_gpu_pct_at_100 * 96 + t4.unallocated_gpu_pct_at_100 * 24) / 120
    assert weighted == pytest.approx(fed.federated_pct_at_100, abs=3.0)


def test_simulate_split_reports_one_cluster_beside_the_federation(small_trace: tuple[Path, Path],
                                                                   tmp_path: Path) -> None:
    nodes, pods = small_trace
    out = tmp_path / "fed.json"
    result = CliRunner().invoke(app, ["simulate", "--nodes", str(nodes), "--pods", str(pods), "--policy", "fgd,bigk",
                                      "--seeds", "1-2", "--split", "2", "--json", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["meta"]["clusters"] == 2 and report["meta"]["split"] == "model" and report["meta"]["fill"] == "spread"
    for name in ("fgd", "bigk"):
        row = report["policies"][name]
        assert [r["seed"] for r in row["runs"]] == [1, 2]
        for r in row["runs"]:
            assert r["cost_points"] == round(r["federated"] - r["single"], 2)
            assert [c["models"] for c in r["clusters"]] == [{"G2": 96}, {"T4": 24}]
        alone = run_inflation(trace.load_nodes(nodes), [p.request for p in trace.load_pods(pods)], name, 1)
        assert row["runs"][0]["single"] == alone.unallocated_gpu_pct_at_100
    assert "one cluster" in result.output and "federated" in result.output and "c1: 12 nodes, 24 GPUs" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--split", "2", "--protocol", "eta"], "with --protocol inflation or timeline"),
    (["--split", "3"], "only 2 GPU models"),
    (["--split", "2", "--split-by", "region"], "--split-by: model or even"),
    (["--split", "2", "--fill", "tight"], "--fill: pack or spread"),
    (["--split", "2", "--dispatch", "late"], "only with --protocol timeline"),
    (["--split", "2", "--protocol", "timeline", "--dispatch", "soon"], "--dispatch: once or late"),
    (["--split", "2", "--protocol", "timeline", "--hold-limit", "60"], "--hold-limit: seconds >= 0, with --dispatch"),
])
def test_split_usage_errors(small_trace: tuple[Path, Path], args: list[str], message: str) -> None:
    nodes, pods = small_trace
    result = CliRunner().invoke(app, ["simulate", "--nodes", str(nodes), "--pods", str(pods), "--seeds", "1",
                                      "--quiet", *args])
    assert isinstance(result.exception, UsageError) and message in str(result.exception), result.output


@pytest.mark.parametrize("speedup", [1.0, 20.0])
def test_timeline_on_one_cluster_is_exactly_run_timeline(small_trace: tuple[Path, Path], speedup: float) -> None:
    nodes, pods = trace.load_nodes(small_trace[0]), trace.load_pods(small_trace[1])
    alone = run_timeline(nodes, pods, "bigk", 1, speedup=speedup)
    fed, taken = run_timeline_federated(nodes, pods, "bigk", 1, 1, speedup=speedup)
    assert fed.waits_s == alone.waits_s and (fed.ran, fed.never_ran, fed.cycles) == (alone.ran, alone.never_ran,
                                                                                     alone.cycles)
    assert taken == [len(pods)]
    if speedup > 1:
        assert sum(1 for w in alone.waits_s if w > 0) > 10  # the loaded replay has queue waits to compare


def test_timeline_over_two_clusters_accounts_for_every_pod(small_trace: tuple[Path, Path]) -> None:
    nodes, pods = trace.load_nodes(small_trace[0]), trace.load_pods(small_trace[1])
    fed, taken = run_timeline_federated(nodes, pods, "bigk", 1, 2, speedup=20.0)
    assert fed.ran + fed.never_ran == fed.pods == len(pods) == sum(taken)
    assert all(t > 0 for t in taken) and len(fed.waits_s) == fed.ran


def test_simulate_timeline_split_has_a_row_per_policy_and_federation(small_trace: tuple[Path, Path],
                                                                     tmp_path: Path) -> None:
    nodes, pods = small_trace
    out = tmp_path / "t.json"
    result = CliRunner().invoke(app, ["simulate", "--nodes", str(nodes), "--pods", str(pods), "--protocol", "timeline",
                                      "--policy", "bigk", "--seeds", "1", "--speedup", "20", "--split", "2",
                                      "--json", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report["summary"]) == {"bigk (1 cluster)", "bigk (2 clusters)"}
    assert [c["gpus"] for c in report["meta"]["cluster_shapes"]] == [96, 24]
    assert sum(report["meta"]["pods_per_cluster"]["bigk (2 clusters)"][0]) == 300
    assert "Timeline replay" in result.output


def test_late_dispatch_holds_pods_until_a_cluster_fits_them(small_trace: tuple[Path, Path]) -> None:
    nodes, pods = trace.load_nodes(small_trace[0]), trace.load_pods(small_trace[1])
    once, _ = run_timeline_federated(nodes, pods, "bigk", 1, 2, speedup=20.0)
    late, taken = run_timeline_federated(nodes, pods, "bigk", 1, 2, speedup=20.0, when="late")
    assert late.ran + late.never_ran == late.pods == len(pods)
    assert late.ran <= sum(taken) <= len(pods)  # only pods that fit somewhere are dispatched; nearly all then run
    # on this trace: 250 ran late vs 235 once (pods no longer wait in one cluster while another has room)
    assert late.ran > once.ran
    alone, _ = run_timeline_federated(nodes, pods, "bigk", 1, 1, speedup=20.0, when="late")
    plain = run_timeline(nodes, pods, "bigk", 1, speedup=20.0)
    assert alone.ran + alone.never_ran == plain.pods and abs(alone.ran - plain.ran) <= 0.05 * plain.pods
    with pytest.raises(ValueError, match="unknown dispatch mode"):
        run_timeline_federated(nodes, pods, "bigk", 1, 2, when="never")


def test_a_hold_limit_sends_long_held_pods_to_queue_where_they_start_soonest(small_trace: tuple[Path, Path]) -> None:
    nodes, pods = trace.load_nodes(small_trace[0]), trace.load_pods(small_trace[1])
    held, _ = run_timeline_federated(nodes, pods, "bigk", 1, 2, speedup=20.0, when="late")
    bounded, taken = run_timeline_federated(nodes, pods, "bigk", 1, 2, speedup=20.0, when="late", hold_limit_s=0.0)
    once, _ = run_timeline_federated(nodes, pods, "bigk", 1, 2, speedup=20.0)
    assert bounded.ran + bounded.never_ran == len(pods)
    # a limit of 0 s queues at once every pod that does not fit now: the same as dispatching at arrival
    assert (bounded.ran, bounded.never_ran, bounded.waits_s) == (once.ran, once.never_ran, once.waits_s)
    assert sum(taken) == len(pods) and held.ran != once.ran
