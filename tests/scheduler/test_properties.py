"""Invariants under random clusters and workloads (hypothesis).

Whatever the cluster and the workload: no node or GPU is overcommitted, binds
respect the filters, gangs are admitted whole, preemption only hits strictly
lower priority, every waiting unit is explained, and the same input gives the
same decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bigk.cluster.model import (
    GPU_MODEL_LABEL,
    POOL_LABEL,
    Gang,
    Gpu,
    GpuReading,
    Node,
    Pod,
    PodRequest,
    Queue,
    Role,
    Taint,
    Toleration,
)
from bigk.scheduler import CycleResult, Scheduler, Snapshot

TOL = [Toleration("nvidia.com/gpu", operator="Exists")]


@st.composite
def nodes_st(draw: st.DrawFn) -> list[Node]:
    out = []
    for i in range(draw(st.integers(1, 5))):
        ngpu = draw(st.sampled_from([0, 2, 4, 8]))
        model = draw(st.sampled_from(["A100", "T4"]))
        gpus = []
        for g in range(ngpu):
            reading = None
            if draw(st.integers(0, 5)) == 0:
                reading = GpuReading(draw(st.sampled_from([1_000, 8_000, 40_000])), 50, 60,
                                     healthy=draw(st.booleans()), observed_at=draw(st.sampled_from([0.0, -500.0])))
            gpus.append(Gpu(g, model, 40_960, f"n{i}g{g}", reading))
        labels = {POOL_LABEL: "gpu" if ngpu else "cpu"}
        if ngpu:
            labels[GPU_MODEL_LABEL] = model
        taints = [Taint("nvidia.com/gpu", "present")] if ngpu and draw(st.booleans()) else []
        out.append(Node(f"n{i}", draw(st.sampled_from([4_000, 16_000, 64_000])),
                        draw(st.sampled_from([8_192, 65_536])), draw(st.sampled_from([3, 110])), gpus, labels,
                        taints, unschedulable=draw(st.integers(0, 6)) == 0))
    return out


req_st = st.one_of(
    st.builds(PodRequest, st.sampled_from([500, 2_000, 8_000]), st.sampled_from([512, 4_096])),
    st.builds(lambda c, g, m: PodRequest(c, 1_024, g, 1000, 0, m), st.sampled_from([500, 4_000]),
              st.sampled_from([1, 2, 4]), st.sampled_from([frozenset(), frozenset({"T4"})])),
    st.builds(lambda c, milli, gm: PodRequest(c, 1_024, 1, milli, gm), st.sampled_from([500, 1_000]),
              st.sampled_from([250, 500, 700]), st.sampled_from([0, 4_000, 20_000])),
)


@dataclass
class Arrival:
    name: str
    request: PodRequest
    priority: int
    queue: str
    gang_min: int = -1  # -1: a lone pod; else a gang with this minimum
    extras: int = 0
    executor: PodRequest | None = None
    tolerate: bool = True


arrival_st = st.builds(
    Arrival, st.just(""), req_st, st.sampled_from([0, 1, 5]), st.sampled_from(["a", "b"]),
    st.sampled_from([-1, -1, 0, 1, 2, 3]), st.integers(0, 2), req_st, st.booleans())

plan_st = st.lists(st.tuples(st.lists(arrival_st, max_size=4), st.lists(st.integers(0, 50), max_size=2)),
                   min_size=1, max_size=5)


class Driver:
    """Runs a plan against a scheduler, acting like the cluster: binds, evicts, creates executors, ends pods."""

    def __init__(self, nodes: list[Node], policy: str) -> None:
        self.nodes = nodes
        self.sched = Scheduler(policy, reservation_ttl_s=3, stale_after_s=60, seed=7)
        self.pods: dict[str, Pod] = {}
        self.gangs: dict[str, Gang] = {}
        self.queues = {"a": Queue("a", guaranteed={"gpu": 2000}), "b": Queue("b", weight=2)}
        self.unborn: dict[str, list[Pod]] = {}
        self.seq = 0

    def arrive(self, a: Arrival, t: float) -> None:
        self.seq += 1
        name = f"x{self.seq}"
        tol = TOL if a.tolerate else []
        if a.gang_min < 0:
            self.pods[f"default/{name}"] = Pod(name, a.request, priority=a.priority, queue=a.queue,
                                               tolerations=tol, created_at=t)
            return
        assert a.executor is not None
        self.gangs[name] = Gang(name, a.queue, a.priority, a.request, a.executor, a.gang_min, created_at=t,
                                tolerations=tol)
        self.pods[f"default/{name}-d"] = Pod(f"{name}-d", a.request, priority=a.priority, queue=a.queue,
                                             gang=name, role=Role.DRIVER, tolerations=tol, created_at=t)
        self.unborn[name] = [Pod(f"{name}-e{j}", a.executor, priority=a.priority, queue=a.queue, gang=name,
                                 role=Role.EXECUTOR, tolerations=tol, created_at=t)
                             for j in range(a.gang_min + a.extras)]

    def cycle(self, t: float) -> CycleResult:
        before = {k for k, p in self.pods.items() if p.node}
        result = self.sched.cycle(Snapshot(self.nodes, list(self.pods.values()), self.queues, self.gangs), t)
        check_result(self, result, t, before)
        for b in result.binds:
            p = self.pods[b.pod_key] = replace(self.pods[b.pod_key], node=b.node, gpus=b.gpus)
            if p.role is Role.DRIVER:
                for ex in self.unborn.pop(p.gang, []):
                    self.pods[ex.key] = ex  # the driver asks for its executors: they exist next cycle
        for e in result.evictions:
            self.pods.pop(e.pod_key, None)
        return result

    def finish_some(self, picks: list[int]) -> None:
        bound = sorted(k for k, p in self.pods.items() if p.node)
        for pick in picks:
            if bound:
                self.pods.pop(bound.pop(pick % len(bound)), None)


def _node_ok(node: Node, pod: Pod) -> bool:
    if node.unschedulable:
        return False
    for taint in node.taints:
        if not any(t.tolerates(taint) for t in pod.tolerations):
            return False
    return not pod.request.gpu_models or node.gpu_model in pod.request.gpu_models


def check_result(d: Driver, result: CycleResult, t: float, before: set[str]) -> None:
    by_name = {n.name: n for n in d.nodes}
    prio = {k: (d.gangs[p.gang].priority if p.gang in d.gangs else p.priority) for k, p in d.pods.items()}
    # Preemption never hits equal or higher priority, except when a queue under its guarantee reclaims
    # from another queue; and only hits running pods.
    for e in result.evictions:
        assert e.pod_key in before
        preemptor = d.gangs[e.for_gang].priority if e.for_gang in d.gangs else prio[e.for_gang]
        if prio[e.pod_key] >= preemptor:
            mine = d.gangs[e.for_gang].queue if e.for_gang in d.gangs else d.pods[e.for_gang].queue
            assert e.reason.startswith("reclaimed by"), e.reason
            assert d.queues[mine].guaranteed and d.pods[e.pod_key].queue != mine
    # Preemption never takes a queue below its guarantee in a resource the victims use.
    def queue_of(pod: Pod) -> str:
        return d.gangs[pod.gang].queue if pod.gang in d.gangs else pod.queue

    usage: dict[str, list[int]] = {}
    lost: dict[str, list[int]] = {}

    def add(book: dict[str, list[int]], queue: str, r: PodRequest) -> None:
        u = book.setdefault(queue, [0, 0, 0])
        for i, v in enumerate((r.cpu_milli, r.memory_mib, r.total_gpu_milli)):
            u[i] += v

    for k in before:
        add(usage, queue_of(d.pods[k]), d.pods[k].request)
    for b in result.binds:
        add(usage, queue_of(d.pods[b.pod_key]), d.pods[b.pod_key].request)
    for gang_name, slots in result.reservations.items():
        for slot in slots:
            add(usage, d.gangs[gang_name].queue, slot.request)
    for e in result.evictions:
        add(lost, queue_of(d.pods[e.pod_key]), d.pods[e.pod_key].request)
    for q, victims in lost.items():
        for i, res in enumerate(("cpu", "memory", "gpu")):
            guaranteed = d.queues[q].guaranteed.get(res, 0)
            if victims[i] and guaranteed:
                assert usage[q][i] - victims[i] >= guaranteed
    # Binds respect the filters and the health of the GPUs they take.
    for b in result.binds:
        node, pod = by_name[b.node], d.pods[b.pod_key]
        assert not pod.node and _node_ok(node, pod)
        assert len(b.gpus) == pod.request.gpu_count
        for g in b.gpus:
            r = node.gpus[g].reading
            if r is not None and t - r.observed_at <= 60:
                assert r.healthy
                if pod.request.is_fractional and pod.request.gpu_memory_mib:
                    assert r.free_memory_mib >= pod.request.gpu_memory_mib
    # No overcommit: bound pods (old and new) plus reservations, recounted from scratch.
    placed: list[tuple[str, tuple[int, ...], PodRequest]] = [(p.node, p.gpus, p.request) for k, p in d.pods.items()
                                                              if p.node and k not in {e.pod_key for e in
                                                                                      result.evictions}]
    placed += [(b.node, b.gpus, d.pods[b.pod_key].request) for b in result.binds]
    placed += [(s.node, s.gpus, s.request) for slots in result.reservations.values() for s in slots]
    for node in d.nodes:
        mine = [(g, r) for n, g, r in placed if n == node.name]
        assert sum(r.cpu_milli for _, r in mine) <= node.cpu_milli
        assert sum(r.memory_mib for _, r in mine) <= node.memory_mib
        assert len(mine) <= node.pods
        for gpu in node.gpus:
            on = [r for g, r in mine if gpu.index in g]
            assert sum(r.gpu_milli for r in on) <= 1000
            assert sum(r.gpu_memory_mib for r in on if r.is_fractional) <= gpu.memory_mib
        assert all(max(g) < len(node.gpus) for g, _ in mine if g)
    # Gangs are all-or-nothing: a driver bound now brings its whole minimum (bound or reserved).
    bound_now = {b.pod_key for b in result.binds}
    for name, info in d.gangs.items():
        drv = d.pods.get(f"default/{name}-d")
        if drv is None or drv.key not in bound_now:
            continue
        execs = sum(1 for p in d.pods.values() if p.gang == name and p.role is Role.EXECUTOR
                    and (p.node or p.key in bound_now))
        assert execs + len(result.reservations.get(name, [])) >= info.min_executors
    # A gang that is not admitted binds nothing.
    for name in d.gangs:
        drv = d.pods.get(f"default/{name}-d")
        if drv is not None and not drv.node and drv.key not in bound_now:
            assert not any(b.pod_key.startswith(f"default/{name}-e") for b in result.binds)
    # Every lone pod and gang driver still waiting is explained.
    for key, p in d.pods.items():
        if p.node or key in bound_now:
            continue
        if not p.gang:
            assert key in result.waiting and result.waiting[key].message
        elif p.role is Role.DRIVER:
            assert p.gang in result.waiting and result.waiting[p.gang].message


def run(nodes: list[Node], plan: list[tuple[list[Arrival], list[int]]], policy: str,
        escalate: bool = False) -> list[CycleResult]:
    """Play the plan; with `escalate`, later arrivals get higher priorities (more preemption)."""
    d = Driver(nodes, policy)
    out = []
    for step, (arrivals, finished) in enumerate(plan):
        for a in arrivals:
            d.arrive(replace(a, priority=a.priority + 3 * step) if escalate else a, float(step))
        out.append(d.cycle(float(step)))
        d.finish_some(finished)
    for extra in range(2):  # let executors arrive and bind
        out.append(d.cycle(float(len(plan) + extra)))
    return out


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes_st(), plan_st, st.sampled_from(["binpack", "spread", "bestfit", "fgd"]), st.booleans())
def test_invariants_hold_for_any_cluster_and_workload(nodes: list[Node], plan: list, policy: str,
                                                      escalate: bool) -> None:
    run(nodes, plan, policy, escalate)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes_st(), plan_st, st.sampled_from(["binpack", "random"]), st.booleans())
def test_same_input_same_decisions(nodes: list[Node], plan: list, policy: str, escalate: bool) -> None:
    def digest(results: list[CycleResult]) -> list[object]:
        return [(r.binds, r.evictions, r.reservations, {k: v.message for k, v in r.waiting.items()})
                for r in results]

    assert digest(run(nodes, plan, policy, escalate)) == digest(run(nodes, plan, policy, escalate))
