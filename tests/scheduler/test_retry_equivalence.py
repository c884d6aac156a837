"""The retry filter changes the cost of a cycle, not its decisions (hypothesis).

Two schedulers see the same random clusters, workloads and events (arrivals, pods
finishing, cordons, GPU readings, queue changes, time passing); one tries every
waiting unit every cycle, the other skips parked units. Binds, evictions and
reservations must be the same, cycle by cycle, and the same units must wait.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bigk.cluster.model import GPU_MODEL_LABEL, POOL_LABEL, Gpu, GpuReading, Node, PodRequest, Queue
from bigk.scheduler import CycleResult, Scheduler, Snapshot
from tests.scheduler.test_properties import Arrival, Driver, arrival_st, nodes_st

event_st = st.one_of(
    st.tuples(st.just("arrive"), st.lists(arrival_st, min_size=1, max_size=10)),
    st.tuples(st.just("finish"), st.lists(st.integers(0, 50), min_size=1, max_size=3)),
    st.tuples(st.just("cordon"), st.integers(0, 10)),
    st.tuples(st.just("reading"), st.tuples(st.integers(0, 10), st.integers(0, 7), st.booleans(),
                                            st.sampled_from([1_000, 30_000]))),
    st.tuples(st.just("queue"), st.sampled_from(["weight", "maximum", "none"])),
    st.tuples(st.just("wait"), st.sampled_from([1.0, 5.0])),
)


class Twin(Driver):
    def __init__(self, nodes: list[Node], policy: str, retry_filter: bool) -> None:
        super().__init__(list(nodes), policy)
        self.sched = Scheduler(policy, reservation_ttl_s=3, stale_after_s=60, seed=7, retry_filter=retry_filter,
                               max_parked_s=1e9)

    def cycle(self, t: float) -> CycleResult:
        before = {k for k, p in self.pods.items() if p.node}
        result = self.sched.cycle(Snapshot(list(self.nodes), list(self.pods.values()), dict(self.queues),
                                           self.gangs), t)
        del before
        for b in result.binds:
            p = self.pods[b.pod_key] = replace(self.pods[b.pod_key], node=b.node, gpus=b.gpus)
            if p.gang and p.key.endswith("-d"):
                for ex in self.unborn.pop(p.gang, []):
                    self.pods[ex.key] = ex
        for e in result.evictions:
            self.pods.pop(e.pod_key, None)
        return result

    def apply(self, event: tuple[str, object], t: float) -> None:
        kind, arg = event
        if kind == "arrive":
            for a in arg:  # type: ignore[attr-defined]
                assert isinstance(a, Arrival)
                self.arrive(a, t)
        elif kind == "finish":
            self.finish_some(list(arg))  # type: ignore[call-overload]
        elif kind == "cordon":
            i = int(arg) % len(self.nodes)  # type: ignore[call-overload]
            self.nodes[i] = replace(self.nodes[i], unschedulable=not self.nodes[i].unschedulable)
        elif kind == "reading":
            i, g, healthy, free = arg  # type: ignore[misc]
            node = self.nodes[i % len(self.nodes)]
            if node.gpus:
                gpus = list(node.gpus)
                gpu = gpus[g % len(gpus)]
                gpus[g % len(gpus)] = replace(gpu, reading=GpuReading(free, 10, 50, healthy=healthy, observed_at=t))
                self.nodes[i % len(self.nodes)] = replace(node, gpus=gpus)
        elif kind == "queue":
            if arg == "weight":
                self.queues["b"] = Queue("b", weight=self.queues["b"].weight % 3 + 1)
            elif arg == "maximum":
                self.queues["b"] = Queue("b", weight=2, maximum={"gpu": 3000})
            else:
                self.queues["b"] = Queue("b", weight=2)


def decisions(result: CycleResult) -> tuple[object, ...]:
    return (result.binds, result.evictions, {g: [(s.node, s.gpus) for s in slots]
                                             for g, slots in sorted(result.reservations.items())},
            sorted(result.waiting))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(nodes_st(), st.lists(event_st, min_size=3, max_size=16), st.sampled_from(["bigk", "binpack", "spread"]))
def test_same_decisions_with_and_without_the_retry_filter(nodes: list[Node], events: list[tuple[str, object]],
                                                          policy: str) -> None:
    every, parked = Twin(nodes, policy, False), Twin(nodes, policy, True)
    t = 0.0
    for event in events:
        if event[0] == "wait":
            t += float(event[1])  # type: ignore[arg-type]
        else:
            t += 1.0
        for twin in (every, parked):
            twin.apply(event, t)
        a, b = every.cycle(t), parked.cycle(t)
        assert decisions(a) == decisions(b), event
        c, d = every.cycle(t + 0.5), parked.cycle(t + 0.5)  # a second cycle with nothing changed
        assert decisions(c) == decisions(d)


def _a100_node(name: str, cordoned: bool) -> Node:
    return Node(name, 4000, 8192, pods=110, gpus=[Gpu(i, "A100", 40960, f"{name}g{i}") for i in range(2)],
                labels={POOL_LABEL: "gpu", GPU_MODEL_LABEL: "A100"}, unschedulable=cordoned)


def test_an_executor_bound_into_its_reservation_is_new_work_a_parked_reclaimer_may_take() -> None:
    """Found by the property test: queue a (under its guarantee) waits with a GPU gang x5 behind the head; queue
    b's gang x4 binds its executor into its reservation; the next cycle reclaims x4 for x5. The bind into a
    reservation must count as new work on that node, or the parked x5 is not tried and nothing is reclaimed."""
    nodes = [_a100_node("n0", True), _a100_node("n1", False)]
    cpu = PodRequest(500, 512)
    first = [Arrival("", cpu, 0, "a", -1, 0, cpu, False), Arrival("", cpu, 0, "a", -1, 0, cpu, False),
             Arrival("", cpu, 0, "a", 2, 0, PodRequest(500, 4096), False),
             Arrival("", cpu, 1, "b", 1, 0, cpu, False),
             Arrival("", PodRequest(500, 1024, 1, 1000), 0, "a", 0, 0, cpu, False)]
    every, parked = Twin(nodes, "bigk", False), Twin(nodes, "bigk", True)
    for twin in (every, parked):
        twin.apply(("arrive", first), 1.0)
    for t in (1.0, 1.5):
        assert decisions(every.cycle(t)) == decisions(parked.cycle(t))
    for twin in (every, parked):
        twin.apply(("arrive", [Arrival("", cpu, 0, "a", -1, 0, cpu, False)]), 2.0)
    a, b = every.cycle(2.0), parked.cycle(2.0)
    assert {e.pod_key for e in a.evictions} == {"default/x4-d", "default/x4-e0"}  # the reclaim this pins
    assert decisions(a) == decisions(b)
