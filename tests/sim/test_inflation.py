"""The inflation protocol on a small synthetic cluster: what it measures and that it is repeatable."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from bigk.sim.inflation import inflated_workload, run_inflation, unallocated_curve
from bigk.sim.runner import parse_seeds, run_inflation_sweep
from bigk.sim.trace import load_nodes, load_pods


def test_workload_is_the_trace_plus_samples_up_to_the_ratio(small_trace: tuple[Path, Path]) -> None:
    reqs = [p.request for p in load_pods(small_trace[1])]
    demand = sum(r.total_gpu_milli for r in reqs)
    seq = inflated_workload(reqs, demand, np.random.default_rng(1), ratio=1.3)
    total = sum(r.total_gpu_milli for r in seq)
    assert len(seq) > len(reqs) and demand * 1.25 < total <= demand * 1.3
    assert [r for r in seq[: len(reqs)] if r not in reqs] == []  # the trace's own pods come first, shuffled
    small = inflated_workload(reqs, demand // 2, np.random.default_rng(1), ratio=1.3)  # too much: thinned
    assert sum(r.total_gpu_milli for r in small) <= 0.65 * demand and len(small) < len(reqs)


def test_unallocated_curve_follows_the_artifact_analysis() -> None:
    arrived = np.array([50, 100, 150, 200]) * 10  # milli-GPU, capacity 2000
    used = np.array([50, 100, 100, 150]) * 10
    curve = unallocated_curve(arrived, used, 2000)
    assert curve[25] == 75.0 and curve[50] == 50.0
    assert curve[75] == 50.0 and curve[100] == 25.0  # 100% arrived, 75% allocated


def test_inflation_run_is_repeatable_and_packs_no_better_than_capacity(small_trace: tuple[Path, Path]) -> None:
    nodes = load_nodes(small_trace[0])
    reqs = [p.request for p in load_pods(small_trace[1])][:80]
    a = run_inflation(nodes, reqs, "fgd", 7)
    b = run_inflation(nodes, reqs, "fgd", 7)
    c = run_inflation(nodes, reqs, "fgd", 8)
    assert a.unallocated_gpu_pct_at_100 == b.unallocated_gpu_pct_at_100 and a.failed == b.failed
    assert (a.pods, a.failed) != (c.pods, c.failed) or a.unallocated_gpu_pct != c.unallocated_gpu_pct
    assert 0.0 <= a.unallocated_gpu_pct_at_100 < 100.0
    for pct in range(10, 45):  # nothing fails at low load: unallocated follows 100 - arrived (in pod-sized steps)
        value = a.unallocated_gpu_pct[pct]
        assert value is None or abs(value - (100 - pct)) <= 7
    frag = [v for v in a.frag_gpu_pct if v is not None]
    assert len(frag) > 100 and all(v >= 0 for v in frag)


def test_sweep_runs_every_policy_on_every_seed(small_trace: tuple[Path, Path]) -> None:
    nodes, pods = load_nodes(small_trace[0]), load_pods(small_trace[1])
    calls: list[tuple[str, int]] = []

    def progress(policy: str, seed: int) -> Callable[[int, int], None]:
        calls.append((policy, seed))
        return lambda done, total: None

    runs = run_inflation_sweep(nodes, pods, ["random", "bigk"], [1, 2], progress=progress)
    assert [r.seed for r in runs["random"]] == [1, 2] and len(runs["bigk"]) == 2
    assert calls == [("random", 1), ("random", 2), ("bigk", 1), ("bigk", 2)]


def test_a_sweep_in_worker_processes_gives_the_serial_results(small_trace: tuple[Path, Path]) -> None:
    nodes, pods = load_nodes(small_trace[0]), load_pods(small_trace[1])
    serial = run_inflation_sweep(nodes, pods, ["fgd", "bigk"], [1, 2])
    done: list[tuple[str, int, int, int]] = []

    def progress(policy: str, seed: int) -> Callable[[int, int], None]:
        return lambda finished, total: done.append((policy, seed, finished, total))

    parallel = run_inflation_sweep(nodes, pods, ["fgd", "bigk"], [1, 2], progress=progress, jobs=2)
    for policy in ("fgd", "bigk"):
        for a, b in zip(serial[policy], parallel[policy], strict=True):
            outcome = (a.seed, a.pods, a.failed, a.unallocated_gpu_pct)
            assert outcome == (b.seed, b.pods, b.failed, b.unallocated_gpu_pct)
    assert sorted(done) == [("bigk", 1, 1, 1), ("bigk", 2, 1, 1), ("fgd", 1, 1, 1), ("fgd", 2, 1, 1)]


def test_parse_seeds() -> None:
    assert parse_seeds("42-45") == [42, 43, 44, 45]
    assert parse_seeds("1, 3-4,9") == [1, 3, 4, 9]
    for bad in ("", "5-3", "x", "1-"):
        try:
            parse_seeds(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_feasible_cache_agrees_with_the_state_as_nodes_fill(small_trace: tuple[Path, Path]) -> None:
    from bigk.cluster.state import ClusterState
    from bigk.sim.inflation import FeasibleCache

    nodes = [n for n in load_nodes(small_trace[0]) if n.gpus]
    reqs = list(dict.fromkeys(p.request for p in load_pods(small_trace[1])))
    reqs.append(reqs[0].__class__(2_000, 4_000, gpu_count=1, gpu_milli=500, gpu_memory_mib=9_000))
    state = ClusterState(nodes)
    cache = FeasibleCache(state)
    rng = np.random.default_rng(3)
    placed = 0
    for i in range(400):
        req = reqs[int(rng.integers(len(reqs)))]
        got = cache.get(req)
        want = state.feasible(req, base_mask=state.static_mask({}, (), req.gpu_models))
        assert np.array_equal(got, want), (i, req)
        if got.any():
            node = int(rng.choice(np.flatnonzero(got)))
            gpus = state.default_gpus(node, req)
            assert gpus is not None
            state.allocate(f"p{i}", req, state.placement_for(node, req, gpus))
            placed += 1
    assert placed > 50 and not cache.get(reqs[-1]).flags.writeable
