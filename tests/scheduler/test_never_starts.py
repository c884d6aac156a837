"""A gang that could not start even on an empty cluster never holds room at the head of a queue."""

from bigk.cluster.model import PodRequest

from .helpers import World, gang, gpu_node, pod


def test_a_gang_bigger_than_the_cluster_is_never_fits_and_holds_nothing() -> None:
    w = World([gpu_node("a", gpus=8), gpu_node("b", gpus=8)])
    w.add(*(pod(f"run{i}", gpus=1, on="a", slots=(i,)) for i in range(4)))  # a: 4 GPUs busy
    info, drv = gang("huge", 40, created_at=0, executor=PodRequest(1000, 1024, 1, 1000))  # 40 GPUs of 16
    w.add_gang(info, drv)
    w.add(pod("healthy", gpus=8, created_at=5))  # fits on empty node b
    r = w.cycle(10)
    exp = r.waiting["huge"]
    assert exp.state == "never-fits"
    assert "more than the cluster's 16 GPUs" in exp.message and "holds no room" in exp.message
    assert [(b.pod_key, b.node) for b in r.binds] == [("default/healthy", "b")]


def test_a_gang_that_fits_an_empty_cluster_still_holds_room_at_the_head() -> None:
    w = World([gpu_node("a", gpus=8)])
    w.add(*(pod(f"run{i}", gpus=1, on="a", slots=(i,)) for i in range(4)))
    info, drv = gang("fits-later", 6, created_at=0, executor=PodRequest(1000, 1024, 1, 1000))
    w.add_gang(info, drv)
    w.add(pod("small", gpus=1, created_at=5))
    r = w.cycle(10)
    assert r.waiting["fits-later"].state == "held"
    assert r.binds == []  # the held room is not given to backfill


def test_a_gang_bigger_than_its_queue_maximum_is_never_fits() -> None:
    from bigk.cluster.model import Queue

    w = World([gpu_node("a", gpus=8), gpu_node("b", gpus=8)])
    w.queues = {"small": Queue("small", maximum={"gpu": 4000})}
    info, drv = gang("wide", 6, queue="small", executor=PodRequest(1000, 1024, 1, 1000))
    w.add_gang(info, drv)
    w.add(pod("fits", gpus=2, queue="small", created_at=5))
    r = w.cycle(10)
    exp = r.waiting["wide"]
    assert exp.state == "never-fits" and "more than queue small's gpu maximum (4 GPUs)" in exp.message
    assert [b.pod_key for b in r.binds] == ["default/fits"]
