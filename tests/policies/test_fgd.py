"""FGD and the artifact baselines on tiny clusters: the choices a user would notice."""

from __future__ import annotations

import numpy as np

from bigk.cluster.model import PodRequest
from bigk.cluster.state import ClusterState
from bigk.scheduler.policies.base import make_policy
from tests.policies.helpers import CPU_ONLY, HALF, WHOLE, gpu_node, put

QUARTER = PodRequest(1_000, 2_000, gpu_count=1, gpu_milli=250)


def test_fgd_fills_a_half_used_gpu_instead_of_breaking_a_whole_one() -> None:
    # Workload: mostly whole-GPU pods. Opening a fresh GPU for a half would strand it for them.
    state = ClusterState([gpu_node("a", gpus=2), gpu_node("b", gpus=2)])
    put(state, "h", HALF, 1, (1,))
    fgd = make_policy("fgd")
    fgd.observe_workload([WHOLE] * 8 + [HALF] * 2)
    placement = fgd.select(state, HALF, state.feasible(HALF))
    assert placement is not None and (placement.node, placement.gpus) == (1, (1,))


def test_fgd_keeps_the_whole_node_free_for_a_four_gpu_workload() -> None:
    four = PodRequest(8_000, 8_000, gpu_count=4, gpu_milli=1000)
    state = ClusterState([gpu_node("big", gpus=4), gpu_node("small", gpus=1)])
    fgd = make_policy("fgd")
    fgd.observe_workload([four] * 5 + [WHOLE] * 5)
    placement = fgd.select(state, WHOLE, state.feasible(WHOLE))
    assert placement is not None and placement.node == 1


def test_fgd_learns_the_workload_online_when_none_was_observed() -> None:
    state = ClusterState([gpu_node("a", gpus=2), gpu_node("b", gpus=2)])
    put(state, "h", HALF, 0, (0,))
    fgd = make_policy("fgd")
    placement = fgd.select(state, HALF, state.feasible(HALF))
    assert placement is not None and (placement.node, placement.gpus) == (0, (0,))


def test_gpupacking_shares_a_used_gpu_before_opening_a_new_one() -> None:
    state = ClusterState([gpu_node("a", gpus=2), gpu_node("b", gpus=2)])
    put(state, "q", QUARTER, 1, (0,))
    placement = make_policy("gpupacking").select(state, QUARTER, state.feasible(QUARTER))
    assert placement is not None and (placement.node, placement.gpus) == (1, (0,))


def test_gpuclustering_puts_a_pod_next_to_its_own_kind() -> None:
    state = ClusterState([gpu_node("a"), gpu_node("b"), gpu_node("c")])
    put(state, "w", WHOLE, 0, (0,))
    put(state, "s", HALF, 2, (0,))
    policy = make_policy("gpuclustering")
    assert policy.select(state, HALF, state.feasible(HALF)).node == 2  # type: ignore[union-attr]
    assert policy.select(state, WHOLE, state.feasible(WHOLE)).node == 0  # type: ignore[union-attr]
    state.release("s")  # tags follow releases: node 2 is idle again, so the first idle node wins
    assert policy.select(state, HALF, state.feasible(HALF)).node == 1  # type: ignore[union-attr]


def test_dotprod_prefers_the_node_whose_free_resources_overlap_least_with_the_pod() -> None:
    state = ClusterState([gpu_node("roomy", gpus=4, cpu=96_000), gpu_node("tight", gpus=4, cpu=96_000)])
    put(state, "x", PodRequest(80_000, 8_000, gpu_count=2, gpu_milli=1000), 1, (0, 1))
    placement = make_policy("dotprod").select(state, WHOLE, state.feasible(WHOLE))
    assert placement is not None and placement.node == 1


def test_random_is_repeatable_from_its_seed_and_stays_on_feasible_nodes() -> None:
    state = ClusterState([gpu_node(f"n{i}", gpus=1) for i in range(10)])
    for i in range(0, 10, 2):
        put(state, f"w{i}", WHOLE, i, (0,))
    feasible = state.feasible(WHOLE)

    def picks(seed: int) -> list[int]:
        policy = make_policy("random")
        policy.seed(seed)  # type: ignore[attr-defined]
        return [policy.select(state, WHOLE, feasible).node for _ in range(20)]  # type: ignore[union-attr]

    assert picks(3) == picks(3)
    assert set(picks(3)) <= set(np.flatnonzero(feasible).tolist())
    assert len(set(picks(3))) > 1


def test_every_policy_places_cpu_only_pods_without_gpus() -> None:
    state = ClusterState([gpu_node("a")])
    for name in ("random", "dotprod", "gpuclustering", "gpupacking", "bestfit", "fgd", "bigk"):
        placement = make_policy(name).select(state, CPU_ONLY, state.feasible(CPU_ONLY))
        assert placement is not None and placement.gpus == (), name
