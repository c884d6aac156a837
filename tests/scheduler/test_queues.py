"""Queue order (priority, guarantee, fair share, age), maxima, and backfill behind a held head."""

from bigk.cluster.model import Queue
from bigk.scheduler import CycleResult

from .helpers import World, cpu_node, gang, gpu_node, pod


def _names(result: CycleResult) -> list[str]:
    return [b.pod_key.split("/")[1] for b in result.binds]


def test_higher_priority_goes_first_even_when_younger() -> None:
    w = World([gpu_node("g0", gpus=2)])
    w.add(pod("old", gpus=2, created_at=0), pod("urgent", gpus=2, priority=5, created_at=10))
    r = w.cycle(20)
    assert _names(r) == ["urgent"]
    assert r.waiting["default/old"].state in {"held", "behind-head"}


def test_older_goes_first_at_equal_priority() -> None:
    w = World([gpu_node("g0", gpus=2)])
    w.add(pod("b", gpus=2, created_at=5), pod("a", gpus=2, created_at=1))
    assert _names(w.cycle(10)) == ["a"]


def test_fair_share_favours_the_queue_using_less_per_weight() -> None:
    w = World([gpu_node("g0", gpus=8)])
    w.queues = {"heavy": Queue("heavy", weight=1), "light": Queue("light", weight=1)}
    running = [pod(f"run{i}", gpus=1, queue="heavy") for i in range(4)]
    w.add(*running)
    w.cycle(0)  # heavy now holds 4 of 8 GPUs
    w.add(pod("heavy-new", gpus=2, queue="heavy", created_at=1), pod("light-new", gpus=2, queue="light", created_at=2),
          pod("heavy-2", gpus=2, queue="heavy", created_at=3))
    r = w.cycle(5)
    assert _names(r) == ["light-new", "heavy-new"]


def test_weights_scale_the_share() -> None:
    w = World([gpu_node("g0", gpus=8)])
    w.queues = {"big": Queue("big", weight=4), "small": Queue("small", weight=1)}
    w.add(*(pod(f"b{i}", gpus=1, queue="big") for i in range(3)), pod("s0", gpus=1, queue="small"))
    w.cycle(0)  # big uses 3/8 (3/8/4 = 0.09), small 1/8 (0.125)
    w.add(pod("s1", gpus=4, queue="small", created_at=1), pod("b9", gpus=4, queue="big", created_at=2))
    assert _names(w.cycle(1)) == ["b9"]


def test_queue_below_its_guarantee_goes_first() -> None:
    w = World([gpu_node("g0", gpus=8)])
    w.queues = {"prod": Queue("prod", weight=1, guaranteed={"gpu": 6000}), "dev": Queue("dev", weight=1)}
    w.add(*(pod(f"p{i}", gpus=1, queue="prod") for i in range(4)))
    w.cycle(0)  # prod 4/8 > dev 0/8 by share, but prod is below its 6-GPU guarantee
    w.add(pod("dev1", gpus=2, queue="dev", created_at=1), pod("prod5", gpus=4, queue="prod", created_at=2))
    assert _names(w.cycle(1)) == ["prod5"]


def test_queue_maximum_is_never_exceeded_and_is_explained() -> None:
    w = World([gpu_node("g0", gpus=8)])
    w.queues = {"capped": Queue("capped", maximum={"gpu": 3000})}
    w.add(pod("a", gpus=2, queue="capped", created_at=0), pod("b", gpus=2, queue="capped", created_at=1),
          pod("c", gpus=1, queue="capped", created_at=2))
    r = w.cycle(0)
    assert _names(r) == ["a", "c"]
    exp = r.waiting["default/b"]
    assert exp.state == "queue-maximum"
    assert "queue capped would exceed its gpu maximum (3 GPUs)" in exp.message


def test_queue_maximum_counts_reserved_executors() -> None:
    w = World([gpu_node("g0", gpus=8), cpu_node("c0")])
    w.queues = {"q": Queue("q", maximum={"gpu": 4000})}
    info, drv = gang("app", 4, queue="q")
    w.add_gang(info, drv)
    w.cycle(0)
    w.add(pod("more", gpus=1, queue="q"))
    assert w.cycle(1).waiting["default/more"].state == "queue-maximum"


def test_backfill_runs_small_work_but_never_on_the_room_held_for_the_head() -> None:
    w = World([gpu_node("a", gpus=8), gpu_node("b", gpus=8)])
    w.add(*(pod(f"runA{i}", gpus=1, on="a", slots=(i,)) for i in range(6)))  # a: 2 GPUs free
    w.add(*(pod(f"runB{i}", gpus=1, on="b", slots=(i,)) for i in range(4)))  # b: 4 GPUs free
    w.add(pod("big", gpus=8, created_at=1), pod("small", gpus=2, created_at=2), pod("small2", gpus=1, created_at=3))
    r = w.cycle(10)
    big = r.waiting["default/big"]
    assert big.state == "held" and "head of the queue" in big.message
    # big is closest to fitting on b, so b's free GPUs are held; small backfills onto a.
    assert [(b.pod_key, b.node) for b in r.binds] == [("default/small", "a")]
    assert r.waiting["default/small2"].state == "behind-head"
    for i in range(4):
        del w.pods[f"default/runB{i}"]  # b's work finishes
    r = w.cycle(20)
    assert [(b.pod_key, b.node) for b in r.binds] == [("default/big", "b")]
    assert r.waiting["default/small2"].state == "held"


def test_backfill_may_not_use_held_room_even_when_it_fits_there() -> None:
    w = World([gpu_node("a", gpus=8)])
    w.add(*(pod(f"run{i}", gpus=1, on="a", slots=(i,)) for i in range(4)))
    w.add(pod("big", gpus=8, created_at=1), pod("small", gpus=1, created_at=2))
    r = w.cycle(10)
    assert r.binds == [] and r.waiting["default/small"].state == "behind-head"
    assert "behind default/big" in r.waiting["default/small"].message
