"""The FGD paper's headline table on the shared Alibaba trace (slow: 10 seeds x 7 policies)."""

from __future__ import annotations

import pytest

from bigk.sim.report import PUBLISHED
from bigk.sim.runner import run_inflation_sweep
from bigk.sim.trace import DEFAULT_NODES, DEFAULT_PODS, load_nodes, load_pods

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results() -> dict[str, float]:
    if not DEFAULT_NODES.exists():
        pytest.skip(f"shared trace not found at {DEFAULT_NODES}")
    nodes, pods = load_nodes(DEFAULT_NODES), load_pods(DEFAULT_PODS)
    runs = run_inflation_sweep(nodes, pods, [*PUBLISHED, "bigk"], list(range(42, 52)))
    import statistics

    return {p: statistics.median(r.unallocated_gpu_pct_at_100 for r in rs) for p, rs in runs.items()}


@pytest.mark.parametrize("policy", list(PUBLISHED))
def test_baselines_reproduce_the_paper_within_half_a_point(results: dict[str, float], policy: str) -> None:
    assert abs(results[policy] - PUBLISHED[policy]) <= 0.5


def test_bigk_beats_fgd_by_ten_percent(results: dict[str, float]) -> None:
    assert results["bigk"] <= 4.3
    assert results["bigk"] < results["fgd"]
