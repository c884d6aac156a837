"""The scheduler's state follows the snapshots: departures free room, others' binds are respected."""

from dataclasses import replace

from bigk.scheduler import Scheduler, Snapshot

from .helpers import World, cpu_node, gang, gpu_node, pod


def test_finished_pods_free_their_room() -> None:
    nodes = [gpu_node("g0", gpus=2)]
    sched = Scheduler("binpack")
    a = pod("a", gpus=2, on="g0", slots=(0, 1))
    b = pod("b", gpus=2)
    assert sched.cycle(Snapshot(nodes, [a, b]), 0).binds == []
    assert [x.pod_key for x in sched.cycle(Snapshot(nodes, [b]), 1).binds] == ["default/b"]


def test_pod_bound_by_someone_else_into_a_reservation_moves_the_reservation() -> None:
    w = World([gpu_node("g0", gpus=2), gpu_node("g1", gpus=2), cpu_node("c0")])
    info, drv = gang("app", 2)
    w.add_gang(info, drv)
    r = w.cycle(0)
    node = r.reservations["app"][0].node
    other = "g1" if node == "g0" else "g0"
    # Another scheduler bound a pod onto the reserved GPUs.
    w.add(pod("foreign", gpus=2, on=node, slots=(0, 1)))
    r = w.cycle(1)
    assert [s.node for s in r.reservations["app"]] == [other, other]


def test_node_changes_rebuild_the_state_and_keep_reservations() -> None:
    nodes = [gpu_node("g0", gpus=4), cpu_node("c0")]
    w = World(nodes)
    info, drv = gang("app", 2)
    w.add_gang(info, drv)
    w.cycle(0)
    w.nodes = nodes + [gpu_node("g1", gpus=4)]  # a node joins
    r = w.cycle(1)
    assert [s.node for s in r.reservations["app"]] == ["g0", "g0"]
    w.add(pod("big", gpus=4, created_at=2))
    r = w.cycle(2)
    assert [(b.pod_key, b.node) for b in r.binds] == [("default/big", "g1")]


def test_cordon_takes_effect_without_a_rebuild() -> None:
    nodes = [gpu_node("g0", gpus=2)]
    sched = Scheduler("binpack")
    sched.cycle(Snapshot(nodes, []), 0)
    nodes[0].unschedulable = True
    r = sched.cycle(Snapshot(nodes, [pod("p", gpus=1)]), 1)
    assert r.binds == [] and r.waiting["default/p"].reasons == {"node cordoned": 1}


def test_bound_pod_without_gpu_indices_is_still_accounted() -> None:
    nodes = [gpu_node("g0", gpus=2)]
    sched = Scheduler("binpack")
    r = sched.cycle(Snapshot(nodes, [pod("old", gpus=1, on="g0"), pod("new", gpus=2)]), 0)
    assert r.binds == []
    r = sched.cycle(Snapshot(nodes, [pod("old", gpus=1, on="g0"), pod("new", gpus=1)]), 1)
    assert r.binds and r.binds[0].gpus == (1,)


def test_a_relabelled_node_is_seen() -> None:
    node = cpu_node("c0")
    sched = Scheduler("binpack")
    p = pod("p", node_selector={"disk": "ssd"})
    assert sched.cycle(Snapshot([node], [p]), 0).binds == []
    relabelled = replace(node, labels={**node.labels, "disk": "ssd"})
    assert [b.node for b in sched.cycle(Snapshot([relabelled], [p]), 1).binds] == ["c0"]
