"""The bigk policy: fragmentation-aware, CPU-node-first for CPU pods, and careful with live GPU readings."""

from __future__ import annotations

from bigk.cluster.model import Gpu, Node, PodRequest
from bigk.cluster.state import ClusterState
from bigk.scheduler.policies.base import make_policy
from tests.policies.helpers import CPU_ONLY, HALF, WHOLE, cpu_node, gpu_node, put

NOW = 1_000_000.0


def test_cpu_only_pods_stay_off_gpu_nodes_while_cpu_nodes_have_room() -> None:
    state = ClusterState([gpu_node("g"), cpu_node("c1", cpu=8_000), cpu_node("c2", cpu=32_000)])
    policy = make_policy("bigk")
    placement = policy.select(state, CPU_ONLY, state.feasible(CPU_ONLY), NOW)
    assert placement is not None and state.nodes[placement.node].name == "c1"  # tightest CPU node
    put(state, "a", PodRequest(8_000, 1_000), 1)
    put(state, "b", PodRequest(32_000, 1_000), 2)
    placement = policy.select(state, CPU_ONLY, state.feasible(CPU_ONLY), NOW)
    assert placement is not None and state.nodes[placement.node].name == "g"  # CPU nodes are full


def test_a_gpu_share_never_goes_to_an_unhealthy_gpu_or_one_lacking_live_memory() -> None:
    state = ClusterState([gpu_node("a", gpus=3)])
    need = PodRequest(1_000, 1_000, gpu_count=1, gpu_milli=500, gpu_memory_mib=6_000)
    put(state, "h", PodRequest(1_000, 1_000, gpu_count=1, gpu_milli=500, gpu_memory_mib=1_000), 0, (0,))
    put(state, "i", PodRequest(1_000, 1_000, gpu_count=1, gpu_milli=500, gpu_memory_mib=1_000), 0, (1,))
    state.set_reading(0, 0, 16_000, 10, 40, False, NOW)  # unhealthy
    state.set_reading(0, 1, 2_000, 10, 40, True, NOW)  # only 2 GiB really free
    placement = make_policy("bigk").select(state, need, state.feasible(need, now=NOW), NOW)
    assert placement is not None and placement.gpus == (2,)


def test_a_stale_unhealthy_reading_is_treated_as_unknown() -> None:
    state = ClusterState([gpu_node("a", gpus=1)])
    state.set_reading(0, 0, 16_000, 10, 40, False, NOW - 3_600)
    placement = make_policy("bigk").select(state, WHOLE, state.feasible(WHOLE, now=NOW), NOW)
    assert placement is not None and placement.gpus == (0,)


def test_sharing_prefers_the_cooler_less_busy_gpu() -> None:
    state = ClusterState([gpu_node("a", gpus=2)])
    state.set_reading(0, 0, 16_000, 95, 85, True, NOW)
    state.set_reading(0, 1, 16_000, 5, 35, True, NOW)
    placement = make_policy("bigk").select(state, HALF, state.feasible(HALF, now=NOW), NOW)
    assert placement is not None and placement.gpus == (1,)


def test_cpu_heavy_pods_go_where_cpu_is_plentiful() -> None:
    # An 8-GPU node with little CPU per GPU, and a CPU-rich 2-GPU node: the CPU hog must not starve the 8 GPUs.
    state = ClusterState([gpu_node("dense", gpus=8, cpu=64_000), gpu_node("rich", gpus=2, cpu=104_000)])
    policy = make_policy("bigk")
    policy.observe_workload([PodRequest(8_000, 8_000, 1, 1000)] * 9 + [PodRequest(40_000, 8_000)])
    hog = PodRequest(40_000, 8_000)
    placement = policy.select(state, hog, state.feasible(hog), None)
    assert placement is not None and state.nodes[placement.node].name == "rich"


def test_unconstrained_pods_leave_scarce_gpu_models_to_pods_that_need_them() -> None:
    nodes = [Node("t4", 64_000, 256_000, gpus=[Gpu(i, "T4", 15_360) for i in range(2)]),
             Node("g2", 64_000, 256_000, gpus=[Gpu(i, "G2", 0) for i in range(2)])]
    state = ClusterState(nodes)
    t4_only = PodRequest(4_000, 4_000, 1, 1000, gpu_models=frozenset({"T4"}))
    policy = make_policy("bigk")
    policy.observe_workload([t4_only] * 5 + [WHOLE] * 5)
    put(state, "x", WHOLE, 1, (0,))  # G2 half full: plain scoring would now pack onto it...
    state.release("x")
    put(state, "y", t4_only, 0, (0,))  # ...but T4 is the model constrained pods need, and it is filling
    placement = policy.select(state, WHOLE, state.feasible(WHOLE), None)
    assert placement is not None and state.nodes[placement.node].name == "g2"


def test_bigk_is_deterministic() -> None:
    state = ClusterState([gpu_node(f"n{i}") for i in range(5)])
    a = make_policy("bigk").select(state, HALF, state.feasible(HALF))
    b = make_policy("bigk").select(state, HALF, state.feasible(HALF))
    assert a == b


def test_keeps_the_last_nodes_that_can_host_a_large_pod() -> None:
    # Three identical empty 8-GPU nodes, but only "big" has the memory for the workload's 8-GPU pod:
    # a small pod, which would otherwise take the first node, goes elsewhere.
    big = Node("big", 128_000, 1_000_000, gpus=[Gpu(i, "G3", 0) for i in range(8)])
    others = [Node(f"g{i}", 128_000, 500_000, gpus=[Gpu(j, "G3", 0) for j in range(8)]) for i in range(2)]
    state = ClusterState([big, *others])
    large = PodRequest(120_000, 700_000, gpu_count=8, gpu_milli=1000)
    policy = make_policy("bigk")
    policy.observe_workload([WHOLE] * 20 + [large])
    placement = policy.select(state, WHOLE, state.feasible(WHOLE), None)
    assert placement is not None and state.nodes[placement.node].name != "big"


def test_with_model_constraints_a_cpu_only_pod_uses_spare_cpu_rather_than_starving_gpus() -> None:
    # Half the workload must run on T4; a CPU-only pod should still take the CPU-rich T4 node's
    # spare CPU rather than the CPU-poor G2 node's, whose GPUs it would leave without CPU.
    state = ClusterState([gpu_node("g2", gpus=8, cpu=32_000, model="G2"), gpu_node("t4", gpus=2, cpu=96_000)])
    policy = make_policy("bigk")
    t4 = PodRequest(4_000, 8_000, gpu_count=1, gpu_milli=1000, gpu_models=frozenset({"T4"}))
    policy.observe_workload([WHOLE] * 8 + [t4] * 8 + [PodRequest(16_000, 8_000)] * 4)
    put(state, "t", t4, 1, (0,))  # the T4 model is partly used, so constrained demand presses on it
    cpu_pod = PodRequest(16_000, 8_000)
    placement = policy.select(state, cpu_pod, state.feasible(cpu_pod), None)
    assert placement is not None and state.nodes[placement.node].name == "t4"


def test_alternatives_count_where_capacity_is_left() -> None:
    from bigk.scheduler.policies.bigk_policy import BigkPolicy

    policy = BigkPolicy()
    only_t4 = PodRequest(4_000, 8_000, gpu_count=1, gpu_milli=1000, gpu_models=frozenset({"T4"}))
    either = PodRequest(4_000, 8_000, gpu_count=1, gpu_milli=1000, gpu_models=frozenset({"T4", "G2"}))
    policy.observe_workload([only_t4] * 2 + [either] * 4)
    import numpy as np

    need = policy.constrained_need(["G2", "T4"], np.array([8_000.0, 2_000.0]))
    # T4 is already asked for in full by T4-only pods, so the 4 flexible GPUs count on G2
    assert need.tolist() == [0.5, 1.0]
