"""Filters as users meet them: selectors, taints, GPU models, cordons, GPU health and live memory, pools."""

import numpy as np

from bigk.cluster.model import GpuReading, PodRequest, Toleration
from bigk.cluster.state import ClusterState, Placement
from bigk.scheduler import CycleResult, Scheduler, Snapshot

from .helpers import GPU_TOL, World, cpu_node, gang, gpu_node, pod


def _where(result: CycleResult) -> dict[str, str]:
    return {b.pod_key.split("/")[1]: b.node for b in result.binds}


def test_node_selector_and_taints_are_honoured() -> None:
    nodes = [gpu_node("tainted", taint=True), cpu_node("plain")]
    nodes[1].labels["disk"] = "ssd"
    w = World(nodes)
    w.add(pod("gpu-no-tol", gpus=1), pod("gpu-tol", gpus=1, tolerations=GPU_TOL, created_at=1),
          pod("ssd", node_selector={"disk": "ssd"}, created_at=2),
          pod("hdd", node_selector={"disk": "hdd"}, created_at=3))
    r = w.cycle(0)
    assert _where(r) == {"gpu-tol": "tainted", "ssd": "plain"}
    assert r.waiting["default/gpu-no-tol"].reasons == {"insufficient nvidia.com/gpu": 1, "untolerated taint": 1}
    assert r.waiting["default/hdd"].reasons == {"node selector mismatch": 2}


def test_gpu_model_constraint() -> None:
    w = World([gpu_node("a100", model="A100"), gpu_node("t4", model="T4", gpus=4)])
    w.add(pod("wants-t4", gpus=2, models=frozenset({"T4"})), pod("wants-h100", gpus=1, models=frozenset({"H100"})))
    r = w.cycle(0)
    assert _where(r) == {"wants-t4": "t4"}
    exp = r.waiting["default/wants-h100"]
    assert exp.state == "never-fits" and exp.reasons == {"GPU model mismatch": 2}
    assert "(1 GPU H100)" in exp.message and "no node could ever hold it" in exp.message


def test_cordoned_nodes_take_nothing_new() -> None:
    nodes = [gpu_node("g0", gpus=2), gpu_node("g1", gpus=2)]
    nodes[0].unschedulable = True
    w = World(nodes)
    w.add(pod("a", gpus=2), pod("b", gpus=2, created_at=1))
    r = w.cycle(0)
    assert _where(r) == {"a": "g1"}
    assert r.waiting["default/b"].reasons == {"insufficient nvidia.com/gpu": 1, "node cordoned": 1}


def test_unhealthy_gpu_is_avoided_while_the_reading_is_fresh() -> None:
    nodes = [gpu_node("g0", gpus=2)]
    nodes[0].gpus[0].reading = GpuReading(80_000, 0, 40, healthy=False, observed_at=100)
    w = World(nodes)
    w.add(pod("two", gpus=2), pod("one", gpus=1, created_at=1))
    r = w.cycle(110)
    assert r.binds[0].pod_key == "default/one" and r.binds[0].gpus == (1,)
    assert r.waiting["default/two"].reasons == {"unhealthy GPU": 1}


def test_stale_unhealthy_reading_falls_back_to_accounting() -> None:
    nodes = [gpu_node("g0", gpus=2)]
    nodes[0].gpus[0].reading = GpuReading(80_000, 0, 40, healthy=False, observed_at=100)
    w = World(nodes, stale_after_s=60)
    w.add(pod("two", gpus=2))
    assert _where(w.cycle(1000)) == {"two": "g0"}


def test_fraction_needs_live_free_gpu_memory() -> None:
    nodes = [gpu_node("g0", gpus=1, gpu_mem=16_384), gpu_node("g1", gpus=1, gpu_mem=16_384)]
    nodes[0].gpus[0].reading = GpuReading(2_000, 90, 80, healthy=True, observed_at=100)  # busy outside k8s
    w = World(nodes, policy="binpack")
    w.add(pod("frac", gpus=1, milli=500, gpu_mem=8_000), pod("frac2", gpus=1, milli=500, gpu_mem=8_000,
                                                             created_at=1))
    r = w.cycle(101)
    assert _where(r) == {"frac": "g1", "frac2": "g1"}
    w.add(pod("frac3", gpus=1, milli=100, gpu_mem=4_000, created_at=2))
    exp = w.cycle(102).waiting["default/frac3"]
    assert exp.reasons == {"insufficient live GPU memory": 1, "insufficient nvidia.com/gpu": 1}
    assert "0/2 nodes have 0.1 GPU + 4000 MiB GPU memory free" in exp.message


def test_preferred_pool_is_tried_first_then_any() -> None:
    w = World([cpu_node("c-a", pool="blue"), cpu_node("c-b", pool="green")], policy="spread")
    w.add(pod("p1", preferred_pools=("green",)), pod("p2", cpu=31_500, preferred_pools=("green",), created_at=1))
    r = w.cycle(0)
    assert _where(r) == {"p1": "c-b", "p2": "c-a"}


def test_explanation_counts_every_reason_in_one_line() -> None:
    nodes = [gpu_node(f"a{i}") for i in range(3)] + [gpu_node(f"t{i}", model="T4", gpus=4) for i in range(2)]
    nodes += [cpu_node("c0")]
    nodes[0].gpus[3].reading = GpuReading(0, 0, 90, healthy=False, observed_at=0)
    w = World(nodes)
    w.add(*(pod(f"busy{i}", gpus=7, on="a1" if i else "a2", slots=tuple(range(7))) for i in range(2)))
    for g in range(7):
        nodes[0].gpus[g].reading = GpuReading(80_000, 0, 40, healthy=g != 0, observed_at=0)
    info, drv = gang("app", 8, executor=pod("x", gpus=2, models=frozenset({"A100"})).request, priority=0)
    w.add_gang(info, drv)
    r = w.cycle(1)
    exp = r.waiting["app"]
    # a0 takes 3 executors on its 7 healthy GPUs, then has 1 healthy + 1 sick GPU left; a1 and a2 have 1 free
    # GPU each; the T4 nodes and the CPU node have no A100.
    assert exp.message == ("gang needs 1 driver + 8 executors (16 GPUs A100); 3 executors fit; "
                           "0/6 nodes have 2 free GPUs: 3 GPU model mismatch, 2 insufficient nvidia.com/gpu, "
                           "1 unhealthy GPU; head of the queue: room is held for it")
    assert exp.executors_fit == 3 and exp.nodes_total == 6 and exp.nodes_fit == 0


def test_tolerations_on_gang_reach_its_reserved_executors() -> None:
    w = World([gpu_node("g0", taint=True, gpus=2), cpu_node("c0")])
    info, drv = gang("app", 2, tolerations=[Toleration("nvidia.com/gpu", operator="Exists")])
    w.add_gang(info, drv)
    r = w.cycle(0)
    assert [s.node for s in r.reservations["app"]] == ["g0", "g0"]


class _CarelessPolicy:
    """Always GPU 0 of the first feasible node, whatever its health: the core must not trust it."""

    name = "careless"

    def select(self, state: ClusterState, req: PodRequest, feasible: np.ndarray,
               now: float | None = None) -> Placement | None:
        node = int(np.argmax(feasible))
        return state.placement_for(node, req, tuple(range(req.gpu_count)))

    def observe_workload(self, requests: list[PodRequest]) -> None:
        """No model."""


def test_a_policy_cannot_put_a_pod_on_a_sick_or_busy_gpu() -> None:
    nodes = [gpu_node("g0", gpus=4, gpu_mem=16_384)]
    nodes[0].gpus[0].reading = GpuReading(16_000, 0, 40, healthy=False, observed_at=0)
    nodes[0].gpus[1].reading = GpuReading(1_000, 99, 80, healthy=True, observed_at=0)
    sched = Scheduler(_CarelessPolicy())
    r = sched.cycle(Snapshot(nodes, [pod("whole", gpus=1), pod("frac", gpus=1, milli=300, gpu_mem=4_000,
                                                                  created_at=1)]), 10)
    assert {b.pod_key: b.gpus for b in r.binds} == {"default/whole": (1,), "default/frac": (2,)}


def test_every_policy_judges_readings_by_the_configured_staleness() -> None:
    """The filters and the policy's own GPU choice read one rule: a reading older than the scheduler's
    `stale_after_s` is unknown to both (the bigk policy once judged shares with a default 60 s of its own,
    so the filters admitted the node and the policy then found no GPU on it)."""
    for policy in ("bigk", "fgd", "binpack", "spread"):
        for ttl, placed in ((10.0, True), (60.0, False)):
            nodes = [gpu_node("g0", gpus=1, gpu_mem=16_384)]
            nodes[0].gpus[0].reading = GpuReading(2_000, 90, 80, healthy=True, observed_at=100)  # 30 s old below
            w = World(nodes, policy=policy, stale_after_s=ttl)
            w.add(pod("frac", gpus=1, milli=500, gpu_mem=8_000))
            r = w.cycle(130)
            assert (_where(r) == {"frac": "g0"}) is placed, (policy, ttl)
            if not placed:
                assert r.waiting["default/frac"].reasons == {"insufficient live GPU memory": 1}
