"""Hierarchical queues: dominant-resource share over the tree, limits at every level, borrow, lend, reclaim."""

from bigk.cluster.model import PodRequest, Queue
from bigk.scheduler import CycleResult

from .helpers import World, cpu_node, gang, gpu_node, pod


def _names(result: CycleResult) -> list[str]:
    return [b.pod_key.split("/")[1] for b in result.binds]


def _evicted(result: CycleResult) -> set[str]:
    return {e.pod_key.split("/")[1] for e in result.evictions}


def test_dominant_share_orders_a_cpu_heavy_queue_by_its_cpu_share() -> None:
    # 64 CPUs and 8 GPUs. cpuheavy holds 48 CPUs (75 %) but only 1 GPU (12.5 %); gpuq holds 4 GPUs (50 %).
    # By GPUs alone cpuheavy would go first; by dominant share (75 % > 50 %) gpuq goes first.
    w = World([gpu_node("g0", gpus=8, cpu=64_000)])
    w.queues = {"cpuheavy": Queue("cpuheavy"), "gpuq": Queue("gpuq")}
    w.add(pod("cpu-run", cpu=47_000, queue="cpuheavy"), pod("cpu-gpu", cpu=1000, gpus=1, queue="cpuheavy"))
    w.add(*(pod(f"gpu-run{i}", cpu=1000, gpus=1, queue="gpuq") for i in range(4)))
    w.cycle(0)
    w.add(pod("cpu-new", cpu=1000, gpus=1, queue="cpuheavy", created_at=1),
          pod("gpu-new", cpu=1000, gpus=1, queue="gpuq", created_at=2))
    assert _names(w.cycle(5)) == ["gpu-new", "cpu-new"]


def test_fair_share_is_compared_level_by_level_down_the_tree() -> None:
    # ml.training holds 4 GPUs, etl 3, ml.scoring none. Flat, ml.scoring would go first; over the
    # tree, ml (4/16) is above etl (3/16), so etl goes first.
    w = World([gpu_node("g0", gpus=8), gpu_node("g1", gpus=8)])
    w.queues = {"ml": Queue("ml"), "ml.training": Queue("ml.training", parent="ml"),
                "ml.scoring": Queue("ml.scoring", parent="ml"), "etl": Queue("etl")}
    w.add(*(pod(f"t{i}", gpus=1, queue="ml.training") for i in range(4)))
    w.add(*(pod(f"e{i}", gpus=1, queue="etl") for i in range(3)))
    w.cycle(0)
    w.add(pod("scoring-new", gpus=1, queue="ml.scoring", created_at=1), pod("etl-new", gpus=1, queue="etl",
                                                                          created_at=2))
    r = w.cycle(5)
    assert _names(r) == ["etl-new", "scoring-new"]
    assert r.queues["ml"].usage.gpu == 5000 and r.queues["ml.scoring"].usage.gpu == 1000


def test_a_parent_maximum_caps_its_children_together() -> None:
    w = World([gpu_node("g0", gpus=8)])
    w.queues = {"ml": Queue("ml", maximum={"gpu": 4000}), "ml.training": Queue("ml.training", parent="ml"),
                "ml.scoring": Queue("ml.scoring", parent="ml")}
    w.add(*(pod(f"t{i}", gpus=1, queue="ml.training") for i in range(3)))
    w.cycle(0)
    w.add(pod("s", gpus=2, queue="ml.scoring", created_at=1))
    r = w.cycle(1)
    exp = r.waiting["default/s"]
    assert exp.state == "queue-maximum" and r.binds == []
    assert "queue ml.scoring's parent ml would exceed its gpu maximum (4 GPUs)" in exp.message


def test_a_queue_that_may_not_borrow_stops_at_its_guarantee() -> None:
    w = World([gpu_node("g0", gpus=8)])
    w.queues = {"fixed": Queue("fixed", guaranteed={"gpu": 2000}, borrow=False)}
    w.add(pod("a", gpus=2, queue="fixed", created_at=0), pod("b", gpus=1, queue="fixed", created_at=1))
    r = w.cycle(0)
    assert _names(r) == ["a"]
    assert "would exceed its gpu guarantee (2 GPUs) and may not borrow" in r.waiting["default/b"].message


def test_room_for_a_queue_that_does_not_lend_is_kept_free() -> None:
    w = World([gpu_node("g0", gpus=8)])
    w.queues = {"keeper": Queue("keeper", guaranteed={"gpu": 4000}, lend=False), "other": Queue("other")}
    w.add(pod("big", gpus=6, queue="other", created_at=0), pod("fits", gpus=4, queue="other", created_at=1))
    r = w.cycle(0)
    assert _names(r) == ["fits"]
    assert "kept for queue keeper's unused guarantee" in r.waiting["default/big"].message
    w.add(pod("k", gpus=4, queue="keeper", created_at=2))  # the keeper itself may use its room
    assert _names(w.cycle(1)) == ["k"]


def test_a_queue_under_its_guarantee_reclaims_borrowed_gpus_from_another() -> None:
    # adhoc borrowed the whole node (no guarantee of its own), at a higher priority than ml's work;
    # ml is guaranteed 4 GPUs and takes them back: whole gang first, lowest priority first.
    w = World([gpu_node("g0", gpus=8), cpu_node("c0")])
    w.queues = {"ml": Queue("ml", guaranteed={"gpu": 4000}), "adhoc": Queue("adhoc")}
    info, drv = gang("borrower", 4, queue="adhoc", priority=3, executor=PodRequest(1000, 1024, 1, 1000))
    w.add_gang(info, drv)
    w.cycle(0)
    w.add(*(p for p in _executors(info)))
    w.cycle(1)
    w.add(pod("keep", gpus=4, queue="adhoc", priority=5, created_at=2))
    r = w.cycle(2)
    assert "default/keep" in [b.pod_key for b in r.binds]  # adhoc now holds all 8 GPUs
    ml, mdrv = gang("train", 2, queue="ml", priority=0, created_at=10,
                    executor=PodRequest(1000, 1024, 2, 1000))
    w.add_gang(ml, mdrv)
    r = w.cycle(11)
    assert _evicted(r) == {"borrower-driver", "borrower-exec-1", "borrower-exec-2", "borrower-exec-3",
                           "borrower-exec-4"}  # the whole gang, the lower of adhoc's two priorities
    assert all(e.reason.startswith("reclaimed by train") for e in r.evictions)
    assert r.waiting["train"].state == "preempting"
    r = w.cycle(12)
    assert "default/train-driver" in [b.pod_key for b in r.binds] and len(r.reservations["train"]) == 2


def test_reclaim_never_cuts_into_the_other_queue_s_guarantee() -> None:
    w = World([gpu_node("g0", gpus=8)])
    w.queues = {"ml": Queue("ml", guaranteed={"gpu": 4000}), "adhoc": Queue("adhoc", guaranteed={"gpu": 5000})}
    w.add(*(pod(f"a{i}", gpus=1, queue="adhoc", priority=5, on="g0", slots=(i,)) for i in range(8)))
    w.add(pod("m", gpus=4, queue="ml", created_at=1))
    r = w.cycle(0)  # adhoc borrowed 3 GPUs beyond its 5: taking 4 would cut into its guarantee
    assert r.evictions == [] and r.waiting["default/m"].state == "held"
    del w.pods["default/m"]
    w.add(pod("m3", gpus=3, queue="ml", created_at=2))
    r = w.cycle(1)
    assert len(r.evictions) == 3 and r.waiting["default/m3"].state == "preempting"


def test_no_reclaim_beyond_the_reclaimer_s_own_guarantee() -> None:
    w = World([gpu_node("g0", gpus=8)])
    w.queues = {"ml": Queue("ml", guaranteed={"gpu": 2000}), "adhoc": Queue("adhoc")}
    w.add(*(pod(f"a{i}", gpus=1, queue="adhoc", priority=5, on="g0", slots=(i,)) for i in range(8)))
    w.add(pod("m", gpus=4, queue="ml", created_at=1))  # 4 GPUs > ml's guarantee of 2: no reclaim
    r = w.cycle(0)
    assert r.evictions == [] and r.waiting["default/m"].state == "held"


def _executors(info: object) -> list:
    from .helpers import executor_pods

    return executor_pods(info, 4)  # type: ignore[arg-type]
