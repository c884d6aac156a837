"""spread, binpack and bestfit on tiny clusters: the choices a user would see."""

from __future__ import annotations

import pytest

from bigk.cluster.state import ClusterState
from bigk.scheduler.policies.base import make_policy, policy_names
from tests.policies.helpers import CPU_ONLY, HALF, WHOLE, gpu_node, put


def test_builtins_are_registered() -> None:
    assert {"spread", "binpack", "bestfit"} <= set(policy_names())


def test_binpack_fills_the_fuller_node_and_spread_the_emptier() -> None:
    state = ClusterState([gpu_node("a"), gpu_node("b")])
    put(state, "p0", WHOLE, 1, (0,))
    feasible = state.feasible(WHOLE)
    packed = make_policy("binpack").select(state, WHOLE, feasible)
    spread = make_policy("spread").select(state, WHOLE, feasible)
    assert packed is not None and packed.node == 1
    assert spread is not None and spread.node == 0


def test_bestfit_prefers_the_node_left_with_least_room() -> None:
    state = ClusterState([gpu_node("big", gpus=8, cpu=96_000), gpu_node("small", gpus=2, cpu=16_000)])
    placement = make_policy("bestfit").select(state, WHOLE, state.feasible(WHOLE))
    assert placement is not None and placement.node == 1


def test_fraction_goes_to_the_fullest_fitting_gpu_under_binpack_and_bestfit() -> None:
    state = ClusterState([gpu_node("a", gpus=2)])
    put(state, "h", HALF, 0, (1,))
    for name in ("binpack", "bestfit"):
        placement = make_policy(name).select(state, HALF, state.feasible(HALF))
        assert placement is not None and placement.gpus == (1,)
    spread = make_policy("spread").select(state, HALF, state.feasible(HALF))
    assert spread is not None and spread.gpus == (0,)


@pytest.mark.parametrize("name", ["spread", "binpack", "bestfit"])
def test_nothing_feasible_gives_none(name: str) -> None:
    state = ClusterState([gpu_node("a", gpus=1)])
    put(state, "w", WHOLE, 0, (0,))
    assert make_policy(name).select(state, WHOLE, state.feasible(WHOLE)) is None


@pytest.mark.parametrize("name", ["spread", "binpack", "bestfit"])
def test_ties_go_to_the_lowest_node_index(name: str) -> None:
    state = ClusterState([gpu_node("a"), gpu_node("b"), gpu_node("c")])
    placement = make_policy(name).select(state, CPU_ONLY, state.feasible(CPU_ONLY))
    assert placement is not None and placement.node == 0 and placement.gpus == ()
