"""A woken group of alike units is tried one at a time: as many as the freed room holds, then one that fails.

Node `a` (8 A100) and node `t` (8 T4) are full. `head` wants 8 T4 GPUs (the held
head); twenty lone pods asking for 1 GPU of any model wait behind it, parked.
"""

from __future__ import annotations

from bigk.scheduler import Scheduler
from tests.scheduler.helpers import World, gpu_node, pod

WAITING = 20


def world(retry_filter: bool = True) -> World:
    wd = World([gpu_node("a", model="A100"), gpu_node("t", model="T4")], policy="binpack")
    wd.sched = Scheduler("binpack", retry_filter=retry_filter)
    for node in ("a", "t"):
        for g in range(8):
            wd.add(pod(f"run-{node}{g}", cpu=1000, gpus=1, on=node, slots=(g,)))
    wd.add(pod("head", cpu=1000, gpus=8, models=frozenset({"T4"}), created_at=1.0))
    for i in range(WAITING):
        wd.add(pod(f"w{i:02d}", cpu=1000, gpus=1, created_at=2.0 + i))
    return wd


def test_only_as_many_alike_units_as_the_room_holds_are_woken_and_decisions_match_trying_all() -> None:
    lazy, every = world(), world(retry_filter=False)
    for wd in (lazy, every):
        wd.cycle(0.0)
        wd.cycle(1.0)
    assert lazy.sched.retry is not None and lazy.sched.retry.stats.skipped == WAITING
    told = {k: e.message for k, e in lazy.cycle(1.5).waiting.items()}
    for wd in (lazy, every):
        for g in (2, 5, 6):  # three A100 GPUs free
            del wd.pods[f"default/run-a{g}"]
    got, want = lazy.cycle(2.0), every.cycle(2.0)
    assert sorted((b.pod_key, b.node, b.gpus) for b in got.binds) == \
        sorted((b.pod_key, b.node, b.gpus) for b in want.binds)
    assert sorted(b.pod_key for b in got.binds) == ["default/w00", "default/w01", "default/w02"]
    # the three that fit, and the fourth, which fails: the sixteen after it stay parked, untried
    assert lazy.sched.retry.stats.woken == 4
    assert lazy.sched.retry.stats.skipped == WAITING - 4
    assert {k: e.message for k, e in got.waiting.items()} == {k: e.message for k, e in want.waiting.items()}
    for i in range(4, WAITING):
        assert got.waiting[f"default/w{i:02d}"].message == told[f"default/w{i:02d}"]
    # nothing more frees: the next cycle wakes none of them
    lazy.cycle(3.0)
    assert lazy.sched.retry.stats.woken == 0


def test_the_next_alike_unit_is_tried_again_once_room_is_released_later_in_the_cycle() -> None:
    """Decisions still match trying every unit over several cycles of departures."""
    lazy, every = world(), world(retry_filter=False)
    for t in range(6):
        for wd in (lazy, every):
            if t >= 2:
                gone = sorted(k for k, p in wd.pods.items() if p.node == "a")[:2]
                for k in gone:
                    del wd.pods[k]
        got, want = lazy.cycle(float(t)), every.cycle(float(t))
        assert sorted((b.pod_key, b.node, b.gpus) for b in got.binds) == \
            sorted((b.pod_key, b.node, b.gpus) for b in want.binds), t
        assert {k: e.state for k, e in got.waiting.items()} == {k: e.state for k, e in want.waiting.items()}, t
