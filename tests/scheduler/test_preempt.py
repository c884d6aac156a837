"""Preemption: fewest, lowest-priority victims; extras first; whole gangs; guarantees respected."""

from bigk.cluster.model import Queue
from bigk.scheduler import CycleResult

from .helpers import World, cpu_node, executor_pods, gang, gpu_node, pod


def _evicted(result: CycleResult) -> set[str]:
    return {e.pod_key.split("/")[1] for e in result.evictions}


def _run_gang(w: World, app: str, executors: int, extras: int = 0, priority: int = 0, queue: str = "default",
              t: float = 0) -> None:
    info, drv = gang(app, executors, priority=priority, queue=queue, created_at=t)
    w.add_gang(info, drv)
    w.cycle(t)
    w.add(*executor_pods(info, executors + extras, created_at=t))
    w.cycle(t)


def test_higher_priority_gang_evicts_a_lower_one_and_runs_once_it_is_gone() -> None:
    w = World([gpu_node("g0", gpus=8), cpu_node("c0")])
    _run_gang(w, "low", 8)
    vip, drv = gang("vip", 6, priority=10, created_at=5)
    w.add_gang(vip, drv)
    r = w.cycle(10, evict=False)
    assert _evicted(r) == {"low-driver"} | {f"low-exec-{i}" for i in range(1, 9)}
    assert all(e.for_gang == "vip" and "priority 10 > 0" in e.reason for e in r.evictions)
    assert r.waiting["vip"].state == "preempting" and r.waiting["vip"].victims == 9
    assert r.binds == []
    r = w.cycle(11, evict=False)  # victims still terminating: no new evictions, still waiting
    assert r.evictions == [] and r.waiting["vip"].state == "preempting"
    for e in [k for k in w.pods if "/low-" in k]:
        del w.pods[e]
    r = w.cycle(12)
    assert [b.pod_key for b in r.binds] == ["default/vip-driver"] and len(r.reservations["vip"]) == 6


def test_room_freed_by_victims_is_kept_for_the_preemptor() -> None:
    w = World([gpu_node("g0", gpus=4), cpu_node("c0")])
    w.add(*(pod(f"low{i}", gpus=1, on="g0", slots=(i,)) for i in range(4)))
    w.add(pod("vip", gpus=4, priority=10, created_at=1))
    r = w.cycle(1, evict=False)
    assert _evicted(r) == {f"low{i}" for i in range(4)}
    del w.pods["default/low0"]
    del w.pods["default/low1"]
    w.add(pod("sneaky", gpus=1, created_at=2))  # would fit in the freed GPUs
    r = w.cycle(2, evict=False)
    assert r.binds == [] and r.waiting["default/sneaky"].state in {"held", "behind-head"}
    del w.pods["default/low2"]
    del w.pods["default/low3"]
    r = w.cycle(3)
    assert [b.pod_key for b in r.binds] == ["default/vip"]


def test_never_evicts_equal_or_higher_priority() -> None:
    w = World([gpu_node("g0", gpus=4)])
    w.add(pod("same", gpus=2, priority=5, on="g0", slots=(0, 1)), pod("higher", gpus=2, priority=9, on="g0",
                                                                      slots=(2, 3)))
    w.add(pod("p", gpus=2, priority=5))
    r = w.cycle(0)
    assert r.evictions == [] and r.waiting["default/p"].state == "held"


def test_extra_executors_go_before_anything_else() -> None:
    w = World([gpu_node("g0", gpus=8), cpu_node("c0")])
    _run_gang(w, "elastic", 2, extras=6)  # 2 in the minimum, 6 extras
    w.add(pod("lone-low", gpus=0, cpu=100))
    w.add(pod("vip", gpus=3, priority=10, created_at=1))
    r = w.cycle(1)
    ev = _evicted(r)
    assert len(ev) == 3 and all(name.startswith("elastic-exec") for name in ev)
    assert not ev & {"elastic-exec-1", "elastic-exec-2"}  # the oldest executors form the minimum


def test_whole_gang_is_evicted_rather_than_part_of_it() -> None:
    w = World([gpu_node("g0", gpus=8), cpu_node("c0")])
    _run_gang(w, "low", 8)
    w.add(pod("vip", gpus=1, priority=10))
    r = w.cycle(1)
    assert _evicted(r) == {"low-driver"} | {f"low-exec-{i}" for i in range(1, 9)}


def test_fewest_victims_and_lowest_priority_first() -> None:
    w = World([gpu_node("g0", gpus=8), cpu_node("c0")])
    _run_gang(w, "gang4", 4, priority=1)  # 4 GPUs in one gang of 5 pods
    w.add(pod("mid", gpus=2, priority=3, on="g0", slots=(4, 5)), pod("lone", gpus=2, priority=1, on="g0",
                                                                   slots=(6, 7)))
    w.add(pod("vip", gpus=2, priority=10))
    r = w.cycle(1)
    assert _evicted(r) == {"lone"}  # one pod at the lowest priority, not the 5-pod gang nor the mid one


def test_work_inside_its_queue_guarantee_is_not_evicted() -> None:
    w = World([gpu_node("g0", gpus=4)])
    w.queues = {"prod": Queue("prod", guaranteed={"gpu": 4000})}
    w.add(*(pod(f"p{i}", gpus=1, queue="prod", on="g0", slots=(i,)) for i in range(4)))
    w.add(pod("vip", gpus=1, priority=10, queue="other"))
    r = w.cycle(0)
    assert r.evictions == [] and r.waiting["default/vip"].state == "held"
    w.queues["prod"] = Queue("prod", guaranteed={"gpu": 3000})  # now one GPU is above the guarantee
    r = w.cycle(1)
    assert len(r.evictions) == 1


def test_a_preemptor_that_never_fits_evicts_nothing() -> None:
    w = World([gpu_node("g0", gpus=4)])
    w.add(*(pod(f"low{i}", gpus=1, on="g0", slots=(i,)) for i in range(4)))
    w.add(pod("huge", gpus=8, priority=10))
    r = w.cycle(0)
    assert r.evictions == [] and r.waiting["default/huge"].state == "never-fits"


def test_victims_are_chosen_on_the_node_where_fewest_must_go() -> None:
    w = World([gpu_node("a", gpus=4), gpu_node("b", gpus=4)])
    w.add(*(pod(f"small{i}", gpus=1, on="a", slots=(i,)) for i in range(4)))
    w.add(pod("whole", gpus=4, on="b", slots=(0, 1, 2, 3)))
    w.add(pod("vip", gpus=4, priority=10))
    r = w.cycle(0)
    assert _evicted(r) == {"whole"}
    r = w.cycle(1)
    assert [(b.pod_key, b.node) for b in r.binds] == [("default/vip", "b")]


def test_lower_priority_victims_are_preferred_over_fewer_ones() -> None:
    w = World([gpu_node("a", gpus=4), gpu_node("b", gpus=4)])
    w.add(*(pod(f"p0-{i}", gpus=1, on="a", slots=(i,)) for i in range(4)))
    w.add(pod("p5", gpus=4, priority=5, on="b", slots=(0, 1, 2, 3)))
    w.add(pod("vip", gpus=4, priority=10))
    assert _evicted(w.cycle(0)) == {f"p0-{i}" for i in range(4)}


def test_gang_preemptor_spanning_nodes_evicts_on_each() -> None:
    w = World([gpu_node("a", gpus=4), gpu_node("b", gpus=4), cpu_node("c")])
    w.add(*(pod(f"low{i}", gpus=1, on="a" if i < 4 else "b", slots=(i % 4,)) for i in range(8)))
    info, drv = gang("vip", 2, priority=10, executor=pod("x", cpu=1000, gpus=4).request)
    w.add_gang(info, drv)
    r = w.cycle(0)
    assert _evicted(r) == {f"low{i}" for i in range(8)}
    r = w.cycle(1)
    assert [b.pod_key for b in r.binds] == ["default/vip-driver"]
    assert sorted(s.node for s in r.reservations["vip"]) == ["a", "b"]


def test_guarantee_holds_across_several_preemptors_and_cycles() -> None:
    w = World([gpu_node("g0", gpus=4)])
    w.queues = {"prod": Queue("prod", guaranteed={"gpu": 3000})}
    w.add(*(pod(f"p{i}", gpus=1, queue="prod", on="g0", slots=(i,)) for i in range(4)))
    w.add(pod("vip1", gpus=1, priority=10, queue="other", created_at=1),
          pod("vip2", gpus=1, priority=10, queue="other", created_at=2))
    r = w.cycle(0, evict=False)
    assert len(r.evictions) == 1 and r.waiting["default/vip1"].state == "preempting"
    r = w.cycle(1, evict=False)  # the victim is still terminating: prod is not cut again
    assert r.evictions == []


def test_preemption_plan_survives_nodes_joining() -> None:
    w = World([gpu_node("g0", gpus=4), gpu_node("g1", gpus=4)])
    w.add(*(pod(f"a{i}", gpus=1, on="g0", slots=(i,)) for i in range(4)))
    w.add(*(pod(f"b{i}", gpus=1, priority=20, on="g1", slots=(i,)) for i in range(4)))
    w.add(pod("vip", gpus=4, priority=10))
    r = w.cycle(0, evict=False)
    assert _evicted(r) == {f"a{i}" for i in range(4)}
    w.nodes = [cpu_node("c-new")] + w.nodes  # node indices shift: the plan must still point at g0
    for i in range(2):
        del w.pods[f"default/a{i}"]
    w.add(pod("small", gpus=1, created_at=1))
    r = w.cycle(1, evict=False)
    assert r.binds == []  # the two freed GPUs stay held for vip
    for i in range(2, 4):
        del w.pods[f"default/a{i}"]
    r = w.cycle(2)
    assert [(b.pod_key, b.node) for b in r.binds] == [("default/vip", "g0")]


def test_two_preemptors_do_not_both_count_the_same_terminating_victims() -> None:
    """Room that victims evicted for one preemptor will free is promised to it: a second preemptor of the same
    shape must find victims of its own, not plan on the same node with none (and then the two block each other
    with half-held room until their plans expire)."""
    w = World([gpu_node("g0", gpus=8), gpu_node("g1", gpus=8)])
    w.add(pod("low-a", gpus=8, on="g0", slots=tuple(range(8))), pod("low-b", gpus=8, on="g1", slots=tuple(range(8))))
    w.add(pod("vip1", gpus=8, priority=10, created_at=1), pod("vip2", gpus=8, priority=10, created_at=2))
    r = w.cycle(1, evict=False)
    assert _evicted(r) == {"low-a", "low-b"}
    assert r.waiting["default/vip1"].state == r.waiting["default/vip2"].state == "preempting"
    r = w.cycle(2, evict=False)  # both still terminating: nothing new
    assert r.evictions == []
    del w.pods["default/low-a"]
    del w.pods["default/low-b"]
    r = w.cycle(3)
    assert sorted(b.pod_key for b in r.binds) == ["default/vip1", "default/vip2"]
    assert sorted(b.node for b in r.binds) == ["g0", "g1"]
