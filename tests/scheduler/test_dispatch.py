"""The dispatcher (issue 18): one gang, several clusters of different shapes, one choice and a reason for each."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bigk.cluster.model import Gang, PodRequest
from bigk.cluster.state import ClusterState
from bigk.cluster.usage import Usage
from bigk.scheduler import Scheduler, Snapshot
from bigk.scheduler.dispatch import ClusterRule, ClusterView, LabelRequirement, dispatch, gang_items

from .helpers import cpu_node, executor_pods, gang, gpu_node, pod

A100_EXEC = PodRequest(4000, 8192, 1, 1000)


def onprem() -> ClusterState:
    """Two 8x A100 nodes and two CPU nodes."""
    return ClusterState([gpu_node("a100-0"), gpu_node("a100-1"), cpu_node("cpu-0"), cpu_node("cpu-1")])


def cloud_h100() -> ClusterState:
    """One 8x H100 node and one CPU node."""
    return ClusterState([gpu_node("h100-0", model="H100"), cpu_node("cpu-0")])


def cloud_t4() -> ClusterState:
    """Four 4x T4 nodes (small GPUs) and one CPU node."""
    return ClusterState([*[gpu_node(f"t4-{i}", gpus=4, model="T4", gpu_mem=15_360, cpu=32_000, mem=192_000)
                           for i in range(4)], cpu_node("cpu-0")])


def views(**overrides: dict) -> list[ClusterView]:
    base = {"onprem": ClusterView("onprem", onprem(), {"region": "eu", "cloud": "onprem"}, cost_tier=0),
            "h100": ClusterView("h100", cloud_h100(), {"region": "eu", "cloud": "aws"}, cost_tier=2),
            "t4": ClusterView("t4", cloud_t4(), {"region": "us", "cloud": "gcp"}, cost_tier=1)}
    for name, fields in overrides.items():
        for key, value in fields.items():
            setattr(base[name], key, value)
    return list(base.values())


def fill(state: ClusterState, gpus_per_node: int, cpu: int = 1000) -> None:
    """Take `gpus_per_node` whole GPUs on every GPU node."""
    for i, node in enumerate(state.nodes):
        for g in range(min(gpus_per_node, len(node.gpus))):
            req = PodRequest(cpu, 1024, 1, 1000)
            state.allocate(f"busy-{node.name}-{g}", req, state.placement_for(i, req, (g,)))


def g(executors: int, executor: PodRequest = A100_EXEC, queue: str = "default") -> Gang:
    info, _ = gang("app", executors, executor=executor, queue=queue)
    return info


def untouched(states: list[ClusterState]) -> list[tuple[int, int, int]]:
    return [(int(s.cpu_used.sum()), int(s.gpu_milli_used.sum()), len(s.allocations)) for s in states]


def test_a_gang_that_fits_everywhere_goes_to_the_cheapest_and_the_states_are_left_as_they_came() -> None:
    vs = views()
    before = untouched([v.state for v in vs])
    d = dispatch(g(4), vs)
    assert d.cluster == "onprem" and d.how == "fits-now"
    assert untouched([v.state for v in vs]) == before
    reasons = d.reasons
    assert reasons["onprem"].startswith("fits now (5 pods on")
    assert "cheaper: cost tier 0 < 2" in reasons["h100"] and "cheaper: cost tier 0 < 1" in reasons["t4"]
    assert d.message().startswith("onprem: fits now")


def test_a_gang_is_never_split_it_goes_where_the_whole_minimum_fits() -> None:
    vs = views()
    fill(vs[0].state, 6)  # onprem: 2 free A100s per node, 4 in all
    fill(vs[2].state, 4)  # t4: full
    d = dispatch(g(6), vs)  # 6 one-GPU executors: onprem has 4 free GPUs, h100 has 8
    assert d.cluster == "h100"
    assert "does not fit now" in d.reasons["onprem"] and "h100 fits now" in d.reasons["onprem"]
    assert "executor 5 of 6" in d.reasons["onprem"]  # four executors fit, the fifth does not: all or nothing
    assert "(it needs 1 free GPU; nodes: 4 insufficient nvidia.com/gpu)" in d.reasons["onprem"]


def test_never_fits_is_told_apart_from_not_now() -> None:
    big = PodRequest(4000, 8192, 8, 1000, gpu_models=frozenset({"A100"}))
    d = dispatch(g(3, big), views())  # 3 x 8 A100s: onprem has 16 in all, no one else has A100s
    assert d.cluster is None and d.how == "none"
    assert d.reasons["onprem"] == "it needs 24 GPUs in all, the cluster has 16 GPUs"
    assert d.reasons["h100"] == "no node could ever hold its executor (4 CPU, 8192 MiB, 8 GPUs of A100; nodes: 2 GPU " \
        "model mismatch)"
    assert "no node could ever hold its executor" in d.reasons["t4"]


def test_the_spec_restricts_and_orders_clusters() -> None:
    rule = ClusterRule(names=("h100", "onprem"))
    d = dispatch(g(2), views(), rule)
    assert d.cluster == "h100"  # preferred first although dearer
    assert d.reasons["t4"] == "not in the job's clusters (h100, onprem)"
    assert "the job prefers it" in d.reasons["onprem"]
    by_label = ClusterRule(match_labels=(("region", "eu"),),
                           expressions=(LabelRequirement("cloud", "NotIn", ("onprem",)),))
    d = dispatch(g(2), views(), by_label)
    assert d.cluster == "h100"
    assert d.reasons["t4"] == "clusterSelector wants region=eu, the cluster has region=us"
    assert d.reasons["onprem"] == "clusterSelector requirement cloud notin (onprem) does not hold"


def test_cordoned_and_unreachable_clusters_get_nothing() -> None:
    d = dispatch(g(2), views(onprem={"cordoned": True}, t4={"reachable": False}))
    assert d.cluster == "h100"
    assert d.reasons["onprem"].startswith("cordoned") and d.reasons["t4"] == "unreachable"


def test_when_it_fits_nowhere_now_the_soonest_start_wins_then_the_forecast_when_every_cluster_has_one() -> None:
    vs = views(t4={"reachable": False})
    fill(vs[0].state, 8)  # onprem full: 16 GPUs busy
    fill(vs[1].state, 8)  # h100 full: 8 busy
    vs[0].queued = Usage(gpu=4000)  # 4 GPUs queued ahead on onprem (16 GPUs), 8 on h100 (8 GPUs)
    vs[1].queued = Usage(gpu=8000)
    d = dispatch(g(2), vs)
    assert d.cluster == "onprem" and d.how == "soonest"
    assert "backlog 0.38 of its capacity" in d.reasons["onprem"]  # (4 queued + 2 wanted - 0 free) / 16 GPUs
    assert "backlog 1.25 of its capacity" in d.reasons["h100"]  # (8 + 2 - 0) / 8
    vs[0].expected_wait_s, vs[1].expected_wait_s = 900.0, 120.0
    d = dispatch(g(2), vs)
    assert d.cluster == "h100" and "~120 s" in d.reasons["h100"]
    vs[1].expected_wait_s = None  # not every waiting cluster has a forecast: the backlog decides for all
    assert dispatch(g(2), vs).cluster == "onprem"


def test_per_cluster_queue_limits() -> None:
    vs = views(onprem={"queue_limits": {"adhoc": {"gpu": 2000}}, "queue_used": {"adhoc": Usage(gpu=1000)}},
               h100={"queue_limits": {"adhoc": {"gpu": 0}}})
    d = dispatch(g(2, queue="adhoc"), vs)
    assert d.cluster == "t4"
    assert "queue adhoc would exceed its gpu maximum here (2 GPUs; it uses 1 GPU)" in d.reasons["onprem"]
    assert d.reasons["h100"] == "it needs 2 GPUs, more than queue adhoc's gpu maximum here (0 GPUs)"
    assert dispatch(g(2, queue="etl"), vs).cluster == "onprem"  # other queues are not limited there


def test_fill_pack_prefers_the_fuller_cluster_spread_the_emptier() -> None:
    a, b = ClusterState([gpu_node("a-0"), gpu_node("a-1")]), ClusterState([gpu_node("b-0"), gpu_node("b-1")])
    fill(a, 4)
    vs = [ClusterView("a", a), ClusterView("b", b)]
    packed = dispatch(g(1), vs, fill="pack")
    assert packed.cluster == "a"  # 8 of 16 GPUs busy in a, none in b
    assert "same preference and cost tier; pack: 44% of it left free vs 94% here" in packed.reasons["b"]
    assert dispatch(g(1), vs, fill="spread").cluster == "b"
    assert dispatch(g(1), vs).cluster == "b"  # spread is the default
    assert dispatch(g(1), list(reversed(vs)), fill="pack").cluster == "a"  # the input order does not matter


def test_keep_leaves_the_gang_placed_on_the_chosen_cluster_only() -> None:
    vs = views()
    d = dispatch(g(3), vs, keep=True)
    assert d.cluster == "onprem" and len(d.placed) == 4
    assert len(vs[0].state.allocations) == 4 and not vs[1].state.allocations and not vs[2].state.allocations
    assert int(vs[0].state.gpu_milli_used.sum()) == 3000


def test_duplicate_cluster_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        dispatch(g(1), [ClusterView("a", onprem()), ClusterView("a", cloud_t4())])


@pytest.mark.parametrize("seed", range(12))
def test_fits_now_agrees_with_the_scheduler_cycle(seed: int) -> None:
    """The dispatcher's 'fits now' is the scheduler's own answer: a cycle on the cluster admits the gang."""
    rng = np.random.default_rng(seed)
    nodes = [gpu_node(f"n{i}", gpus=int(rng.choice([2, 4, 8])), cpu=int(rng.integers(8, 64)) * 1000)
             for i in range(4)]
    busy = [pod(f"busy{i}", cpu=2000, gpus=int(rng.integers(1, 3)), on=f"n{int(rng.integers(4))}") for i in range(6)]
    state = ClusterState(nodes)
    bound = []
    for p in busy:  # place the busy pods where they fit on their node (lowest free GPUs), drop the others
        i = state.index[p.node]
        gpus = state.default_gpus(i, p.request)
        if gpus is None or not state.feasible(p.request)[i]:
            continue
        state.allocate(p.key, p.request, state.placement_for(i, p.request, gpus))
        bound.append(replace(p, gpus=gpus))
    executors = int(rng.integers(1, 12))
    exe = PodRequest(int(rng.integers(1, 16)) * 1000, 4096, int(rng.choice([1, 2])), 1000)
    info, driver = gang("app", executors, executor=exe)
    said = dispatch(info, [ClusterView("c", state)]).how == "fits-now"
    sched = Scheduler("binpack")
    result = sched.cycle(Snapshot(nodes, [*bound, driver], gangs={"app": info}), now=0.0)
    admitted = any(b.pod_key == driver.key for b in result.binds)
    assert said == admitted, (seed, executors, exe)
    assert len(executor_pods(info, 1)) == 1 and len(gang_items(info)) == executors + 1


@pytest.mark.parametrize("seed", range(8))
def test_random_federations_choice_is_sound_and_independent_of_input_order(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)

    def federation() -> list[ClusterView]:
        out = []
        r = np.random.default_rng(seed)  # the same clusters every call
        for k in range(4):
            nodes = [gpu_node(f"c{k}-n{i}", gpus=int(r.choice([2, 4, 8])), model=str(r.choice(["A100", "T4"])))
                     for i in range(int(r.integers(1, 4)))]
            state = ClusterState(nodes)
            fill(state, int(r.integers(0, 8)))
            out.append(ClusterView(f"c{k}", state, {"zone": str(r.choice(["a", "b"]))}, int(r.integers(0, 3)),
                                   cordoned=bool(r.random() < 0.2)))
        return out

    for _ in range(5):
        exe = PodRequest(2000, 4096, int(rng.choice([1, 2, 4])), 1000)
        info = g(int(rng.integers(0, 6)), exe)
        rule = ClusterRule(names=tuple(str(n) for n in rng.permutation(["c0", "c1", "c2", "c3"])[:3]))
        vs = federation()
        before = untouched([v.state for v in vs])
        d = dispatch(info, vs, rule)
        assert untouched([v.state for v in vs]) == before
        shuffled = federation()
        order = rng.permutation(len(shuffled))
        assert dispatch(info, [shuffled[i] for i in order], rule).cluster == d.cluster  # input order does not matter
        outcome = {v.cluster: v.outcome for v in d.verdicts}
        if d.cluster is not None:
            chosen = next(v for v in vs if v.name == d.cluster)
            assert not chosen.cordoned and d.cluster in rule.names and outcome[d.cluster] == "chosen"
            kept = dispatch(info, federation(), rule, keep=True)
            assert kept.cluster == d.cluster
            assert (len(kept.placed) == info.min_executors + 1) == (d.how == "fits-now")
        assert all(outcome[v.name] == "excluded" for v in vs if v.cordoned or v.name not in rule.names)
        if d.how == "fits-now":
            assert next(v for v in d.verdicts if v.outcome == "chosen").reason.startswith("fits now")
        else:  # nothing fits now anywhere: no verdict says it does
            assert "fits" not in outcome.values()
