"""Gang admission: all-or-nothing, executor reservations, expiry and extras."""

from bigk.cluster.model import GpuReading, PodRequest
from bigk.scheduler import Scheduler, Snapshot

from .helpers import World, cpu_node, executor_pods, gang, gpu_node, pod


def _bound_names(w: World) -> set[str]:
    return {p.name for p in w.bound()}


def test_gang_waits_until_driver_and_minimum_fit_at_once() -> None:
    w = World([gpu_node("g0"), cpu_node("c0")])
    info, drv = gang("big", 10)  # 10 one-GPU executors, only 8 GPUs exist
    w.add_gang(info, drv)
    r = w.cycle(0)
    assert r.binds == [] and r.reservations == {}
    exp = r.waiting["big"]
    assert exp.drivers == 1 and exp.executors == 10 and exp.executors_fit == 8
    assert exp.message.startswith("gang needs 1 driver + 10 executors (10 GPUs); 8 executors fit; 0/2 nodes have 1")


def test_admission_binds_driver_and_reserves_executors_created_later() -> None:
    w = World([gpu_node("g0", gpus=4), cpu_node("c0")])
    info, drv = gang("app", 4)
    w.add_gang(info, drv)
    r = w.cycle(0)
    assert [b.pod_key for b in r.binds] == ["default/app-driver"]
    assert len(r.reservations["app"]) == 4 and {s.node for s in r.reservations["app"]} == {"g0"}
    # Before the driver creates its executors, a lone GPU pod arrives: the reserved GPUs are not for it.
    w.add(pod("intruder", gpus=1, tolerations=[]))
    r = w.cycle(1)
    assert r.binds == []
    assert r.waiting["default/intruder"].reasons == {"insufficient nvidia.com/gpu": 2}
    w.add(*executor_pods(info, 4))
    r = w.cycle(2)
    assert sorted(b.pod_key for b in r.binds) == [f"default/app-exec-{i}" for i in range(1, 5)]
    assert {b.gpus for b in r.binds} == {(0,), (1,), (2,), (3,)}
    assert r.reservations == {}
    assert "default/intruder" in r.waiting


def test_executors_arriving_in_batches_consume_reservations_one_by_one() -> None:
    w = World([gpu_node("g0"), cpu_node("c0")])
    info, drv = gang("app", 6)
    w.add_gang(info, drv)
    w.cycle(0)
    execs = executor_pods(info, 6)
    w.add(*execs[:2])
    assert len(w.cycle(1).reservations["app"]) == 4
    w.add(*execs[2:])
    r = w.cycle(2)
    assert len(r.binds) == 4 and r.reservations == {}


def test_reservations_expire_when_executors_never_come() -> None:
    w = World([gpu_node("g0", gpus=2), cpu_node("c0")], reservation_ttl_s=60)
    info, drv = gang("app", 2)
    w.add_gang(info, drv)
    w.cycle(0)
    w.add(pod("later", gpus=2))
    assert w.cycle(30).binds == []  # still reserved
    r = w.cycle(61)
    assert r.reservations == {}
    assert [b.pod_key for b in r.binds] == ["default/later"]


def test_reservations_are_dropped_when_the_gang_goes_away() -> None:
    w = World([gpu_node("g0", gpus=2), cpu_node("c0")])
    info, drv = gang("app", 2)
    w.add_gang(info, drv)
    w.cycle(0)
    del w.pods[drv.key]  # the driver failed and was deleted
    w.add(pod("later", gpus=2))
    r = w.cycle(1)
    assert r.reservations == {} and [b.pod_key for b in r.binds] == ["default/later"]


def test_extra_executors_run_only_where_room_is_left() -> None:
    w = World([gpu_node("g0", gpus=4), cpu_node("c0")])
    info, drv = gang("app", 2)
    w.add_gang(info, drv)
    w.cycle(0)
    w.add(*executor_pods(info, 6))  # dynamic allocation asks for 4 extras; 2 GPUs are left
    r = w.cycle(1)
    assert len(r.binds) == 4
    assert sum(1 for p in w.bound() if p.name.startswith("app-exec")) == 4
    assert r.waiting == {}  # the gang runs; extras simply wait for room


def test_extras_do_not_take_room_from_a_waiting_gang() -> None:
    w = World([gpu_node("g0", gpus=4), cpu_node("c0")])
    a, da = gang("a", 1, created_at=0)
    w.add_gang(a, da)
    w.cycle(0)
    w.add(*executor_pods(a, 4))  # 1 in the minimum, 3 extras
    b, db = gang("b", 3, created_at=1)
    w.add_gang(b, db)
    r = w.cycle(1)
    assert "b" not in r.waiting and len(r.reservations["b"]) == 3
    assert sum(1 for p in w.bound() if p.gang == "a" and p.role.value == "executor") == 1


def test_pods_of_unknown_gangs_are_placed_one_by_one() -> None:
    w = World([gpu_node("g0", gpus=2), cpu_node("c0")])
    info, drv = gang("app", 4)
    w.add(drv, *executor_pods(info, 4))  # no GangInfo given: no minimum known
    r = w.cycle(0)
    assert len(r.binds) == 3  # driver + the 2 executors that fit
    assert len(r.waiting) == 2 and all(k.startswith("default/app-exec") for k in r.waiting)


def test_admission_uses_already_created_executor_pods() -> None:
    w = World([gpu_node("g0", gpus=4), cpu_node("c0")])
    info, drv = gang("app", 3)
    w.add_gang(info, drv)
    w.add(*executor_pods(info, 2))
    r = w.cycle(0)
    assert len(r.binds) == 3 and len(r.reservations["app"]) == 1


def test_bind_that_did_not_happen_is_retried_without_double_counting() -> None:
    nodes = [gpu_node("g0", gpus=1), cpu_node("c0")]
    sched = Scheduler("binpack")
    p = pod("p", gpus=1)
    r1 = sched.cycle(Snapshot(nodes, [p]), 0)
    assert [b.pod_key for b in r1.binds] == ["default/p"]
    r2 = sched.cycle(Snapshot(nodes, [p]), 1)  # the bind was lost: the pod is still pending
    assert [b.pod_key for b in r2.binds] == ["default/p"]
    assert sched.state is not None and int(sched.state.gpu_milli_used.sum()) == 1000


def test_executor_request_differing_from_reservation_still_binds_on_its_node() -> None:
    w = World([gpu_node("g0", gpus=2), cpu_node("c0")])
    info, drv = gang("app", 1, executor=PodRequest(4000, 8192, 1, 1000))
    w.add_gang(info, drv)
    w.cycle(0)
    e = executor_pods(info, 1)[0]
    e.request = PodRequest(2000, 4096, 1, 1000)
    w.add(e)
    r = w.cycle(1)
    assert [(b.pod_key, b.node) for b in r.binds] == [("default/app-exec-1", "g0")]


def test_executor_avoids_a_reserved_gpu_that_turned_sick() -> None:
    nodes = [gpu_node("g0", gpus=4), cpu_node("c0")]
    w = World(nodes)
    info, drv = gang("app", 1)
    w.add_gang(info, drv)
    slot = w.cycle(0).reservations["app"][0]
    nodes[0].gpus[slot.gpus[0]].reading = GpuReading(80_000, 0, 95, healthy=False, observed_at=5)
    w.add(*executor_pods(info, 1))
    r = w.cycle(6)
    assert r.binds[0].node == "g0" and r.binds[0].gpus != slot.gpus


def test_executor_leaves_a_reservation_on_a_node_cordoned_since() -> None:
    nodes = [gpu_node("g0", gpus=1), gpu_node("g1", gpus=1), cpu_node("c0")]
    w = World(nodes)
    info, drv = gang("app", 1)
    w.add_gang(info, drv)
    reserved = w.cycle(0).reservations["app"][0].node
    next(n for n in nodes if n.name == reserved).unschedulable = True
    w.add(*executor_pods(info, 1))
    r = w.cycle(1)
    assert [b.node for b in r.binds] == ["g1" if reserved == "g0" else "g0"]


def test_identical_waiting_gangs_are_each_explained() -> None:
    w = World([gpu_node("g0", gpus=4), cpu_node("c0")])
    w.add(pod("run", gpus=2, on="g0", slots=(0, 1)))  # the gangs could start once it ends
    for i in range(3):
        info, drv = gang(f"app{i}", 3, created_at=i)
        w.add_gang(info, drv)
    r = w.cycle(10)
    assert r.binds == [] and set(r.waiting) == {"app0", "app1", "app2"}
    assert r.waiting["app0"].state == "held" and r.waiting["app2"].state == "behind-head"
    assert r.waiting["app1"].message == r.waiting["app2"].message
    assert r.waiting["app2"].gang == "app2"


def test_a_restarted_scheduler_reserves_again_for_running_drivers() -> None:
    w = World([gpu_node("g0", gpus=4), cpu_node("c0")])
    info, drv = gang("app", 4)
    w.add_gang(info, drv)
    w.cycle(0)
    w.sched = Scheduler("binpack")  # a restart (or a new leader): reservations are gone
    w.add(pod("intruder", gpus=2, created_at=5))
    r = w.cycle(10)
    assert r.binds == [] and len(r.reservations["app"]) == 4
    assert r.waiting["default/intruder"].state == "held"
    w.add(*executor_pods(info, 4))
    r = w.cycle(11)
    assert len(r.binds) == 4 and all(b.pod_key.startswith("default/app-exec") for b in r.binds)


def test_driver_that_fits_nowhere_is_named() -> None:
    w = World([gpu_node("g0", gpus=4, cpu=8_000)])
    info, drv = gang("app", 1, driver=PodRequest(16_000, 1024))
    w.add_gang(info, drv)
    exp = w.cycle(0).waiting["app"]
    assert exp.state == "never-fits" and "driver does not fit" in exp.message
    assert exp.reasons == {"insufficient cpu": 1}


def test_executors_missing_after_expiry_are_placed_as_far_as_they_fit() -> None:
    w = World([gpu_node("g0", gpus=3), cpu_node("c0")], reservation_ttl_s=10)
    info, drv = gang("app", 3)
    w.add_gang(info, drv)
    w.cycle(0)
    w.add(pod("other", gpus=1, created_at=1))
    r = w.cycle(20)  # reservations expired: the lone pod takes a GPU
    assert [b.pod_key for b in r.binds] == ["default/other"] and r.reservations == {}
    w.add(*executor_pods(info, 3))
    r = w.cycle(21)
    assert len(r.binds) == 2  # a top-up: what fits runs, the rest is explained
    exp = r.waiting["app"]
    assert exp.drivers == 0 and exp.executors == 3 and exp.executors_fit == 2
