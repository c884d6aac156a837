"""Each kind of event wakes a parked unit, and its explanation and decision follow; nothing else wakes it.

The cluster: node `a` (8 A100) and node `t` (8 T4), both full. `head` wants 8 T4
GPUs, so it is the held head and holds on `t`; `w` wants 1 GPU of any model and
waits behind it, parked.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from bigk.cluster.model import GpuReading, PodRequest, Queue
from bigk.scheduler import CycleResult
from tests.scheduler.helpers import World, gpu_node, pod


def world(w_request: PodRequest | None = None, queue: str = "default", **w_kw: object) -> World:
    wd = World([gpu_node("a", model="A100"), gpu_node("t", model="T4")], policy="binpack")
    for node in ("a", "t"):
        for g in range(8):
            wd.add(pod(f"run-{node}{g}", cpu=1000, gpus=1, on=node, slots=(g,), queue=queue))
    wd.add(pod("head", cpu=1000, gpus=8, models=frozenset({"T4"}), created_at=1.0, queue=queue))
    req = w_request or PodRequest(1000, 1024, 1, 1000)
    wd.add(replace(pod("w", created_at=2.0, queue=queue, **w_kw), request=req))  # type: ignore[arg-type]
    return wd


def parked(wd: World) -> CycleResult:
    """Two cycles: the first tries `w` (behind the head), the second skips it."""
    first = wd.cycle(0.0)
    assert first.waiting["default/head"].state == "held"
    assert first.waiting["default/w"].state == "behind-head"
    second = wd.cycle(1.0)
    assert wd.sched.retry is not None and wd.sched.retry.stats.skipped == 1
    assert second.waiting["default/w"] == first.waiting["default/w"]
    return second


def bound(result: CycleResult, key: str = "default/w") -> str:
    return next((b.node for b in result.binds if b.pod_key == key), "")


def test_nothing_changes_the_unit_stays_parked_with_its_explanation() -> None:
    wd = world()
    before = parked(wd)
    for t in range(2, 6):
        again = wd.cycle(float(t))
        assert wd.sched.retry is not None and wd.sched.retry.stats.skipped == 1
        assert wd.sched.retry.stats.woken == 0
        assert again.waiting["default/w"].message == before.waiting["default/w"].message
        assert "behind default/head" in again.waiting["default/w"].message
        assert "0/2 nodes have 1 free GPU" in again.waiting["default/w"].message


def test_capacity_freed_on_a_node_it_can_use_wakes_it_and_it_binds() -> None:
    wd = world()
    parked(wd)
    del wd.pods["default/run-a3"]
    result = wd.cycle(2.0)
    assert bound(result) == "a"
    assert "default/w" not in result.waiting


def test_capacity_freed_where_it_cannot_go_does_not_wake_it() -> None:
    wd = world(w_request=PodRequest(1000, 1024, 1, 1000, 0, frozenset({"A100"})))
    parked(wd)
    del wd.pods["default/run-t3"]  # a T4 GPU frees: the head holds it, and w may not use T4 anyway
    result = wd.cycle(2.0)
    assert wd.sched.retry is not None and wd.sched.retry.stats.woken == 0
    assert result.waiting["default/w"].state == "behind-head"


def test_uncordoned_node_wakes_it() -> None:
    wd = world()
    wd.nodes[0] = replace(wd.nodes[0], unschedulable=True)
    del wd.pods["default/run-a3"]
    first = wd.cycle(0.0)
    assert first.waiting["default/w"].state == "behind-head"
    assert "node cordoned" in first.waiting["default/w"].message
    wd.cycle(1.0)
    assert wd.sched.retry is not None and wd.sched.retry.stats.skipped == 1
    wd.nodes[0] = replace(wd.nodes[0], unschedulable=False)
    assert bound(wd.cycle(2.0)) == "a"


def test_a_gpu_turning_healthy_wakes_it() -> None:
    wd = world()
    del wd.pods["default/run-a3"]
    sick = GpuReading(80_000, 0, 40, healthy=False, observed_at=0.0)
    a = wd.nodes[0]
    wd.nodes[0] = replace(a, gpus=[replace(g, reading=sick) if g.index == 3 else g for g in a.gpus])
    first = wd.cycle(0.0)
    assert first.waiting["default/w"].state == "behind-head"
    assert "unhealthy GPU" in first.waiting["default/w"].message
    wd.cycle(1.0)
    assert wd.sched.retry is not None and wd.sched.retry.stats.skipped == 1
    well = replace(sick, healthy=True, observed_at=2.0)
    wd.nodes[0] = replace(a, gpus=[replace(g, reading=well) if g.index == 3 else g for g in a.gpus])
    assert bound(wd.cycle(2.0)) == "a"


def test_a_reading_showing_gpu_memory_freed_wakes_a_gpu_share() -> None:
    share = PodRequest(1000, 1024, 1, 500, 20_000, frozenset({"A100"}))
    wd = world(w_request=share)
    del wd.pods["default/run-a3"]
    wd.add(pod("half", cpu=1000, gpus=1, milli=500, gpu_mem=1000, on="a", slots=(3,)))
    busy = GpuReading(5_000, 90, 60, healthy=True, observed_at=0.0)  # someone else's process fills it
    a = wd.nodes[0]
    wd.nodes[0] = replace(a, gpus=[replace(g, reading=busy) if g.index == 3 else g for g in a.gpus])
    first = wd.cycle(0.0)
    assert first.waiting["default/w"].state == "behind-head"
    assert "insufficient live GPU memory" in first.waiting["default/w"].message
    wd.cycle(1.0)
    assert wd.sched.retry is not None and wd.sched.retry.stats.skipped == 1
    free = replace(busy, free_memory_mib=60_000, observed_at=2.0)
    wd.nodes[0] = replace(a, gpus=[replace(g, reading=free) if g.index == 3 else g for g in a.gpus])
    assert bound(wd.cycle(2.0)) == "a"


def test_a_node_added_wakes_it() -> None:
    wd = world()
    parked(wd)
    wd.nodes.append(gpu_node("b", model="A100"))
    assert bound(wd.cycle(2.0)) == "b"


def test_a_node_relabelled_wakes_it() -> None:
    wd = world()
    w = wd.pods["default/w"]
    wd.pods["default/w"] = replace(w, node_selector={"zone": "x"})
    wd.nodes.append(gpu_node("b", model="A100"))
    first = wd.cycle(0.0)
    assert first.waiting["default/w"].state == "never-fits"
    assert "3 node selector mismatch" in first.waiting["default/w"].message
    wd.cycle(1.0)
    assert wd.sched.retry is not None and wd.sched.retry.stats.skipped == 1
    b = wd.nodes[2]
    wd.nodes[2] = replace(b, labels={**b.labels, "zone": "x"})
    assert bound(wd.cycle(2.0)) == "b"


def test_queue_maximum_follows_while_parked_and_a_raised_maximum_wakes_it() -> None:
    wd = world(queue="q")
    wd.queues = {"q": Queue("q")}
    parked(wd)
    wd.queues = {"q": Queue("q", maximum={"gpu": 15_000})}  # 16 GPUs run in q
    result = wd.cycle(2.0)
    assert result.waiting["default/w"].state == "queue-maximum"
    del wd.pods["default/run-a3"]
    result = wd.cycle(3.0)
    assert result.waiting["default/w"].state == "queue-maximum"
    assert not result.binds
    wd.queues = {"q": Queue("q", maximum={"gpu": 16_000})}
    assert bound(wd.cycle(4.0)) == "a"


def test_a_changed_unit_is_tried_again() -> None:
    wd = world()
    parked(wd)
    wd.pods["default/w"] = replace(wd.pods["default/w"], priority=10)  # now it may preempt
    result = wd.cycle(2.0)
    assert wd.sched.retry is not None and wd.sched.retry.stats.skipped == 0
    assert result.evictions and result.waiting["default/w"].state in ("preempting", "held")


def test_the_backoff_timer_tries_it_again() -> None:
    wd = world()
    wd.sched.retry.max_parked_s = 10.0  # type: ignore[union-attr]
    parked(wd)
    wd.cycle(5.0)
    assert wd.sched.retry is not None and wd.sched.retry.stats.woken == 0
    wd.cycle(10.0)
    assert wd.sched.retry.stats.woken == 1 and wd.sched.retry.stats.skipped == 0


def test_the_explanation_names_the_new_head_when_the_head_changes() -> None:
    wd = world()
    parked(wd)
    wd.add(pod("boss", cpu=1000, gpus=8, models=frozenset({"T4"}), created_at=0.5))  # older: ahead of head
    result = wd.cycle(2.0)
    assert result.waiting["default/boss"].state == "held"
    assert wd.sched.retry is not None and wd.sched.retry.stats.skipped == 1
    assert "behind default/boss" in result.waiting["default/w"].message


@pytest.mark.parametrize("retry_filter", [True, False])
def test_room_released_by_the_head_going_away_is_backfilled(retry_filter: bool) -> None:
    wd = world()
    wd.sched.retry = None if not retry_filter else wd.sched.retry
    wd.cycle(0.0)
    wd.cycle(1.0)
    del wd.pods["default/head"]
    del wd.pods["default/run-t3"]
    assert bound(wd.cycle(2.0)) == "t"

