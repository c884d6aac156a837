"""Scenarios that run unchanged against the emulated cluster and (marked `cluster`) a real one.

Sizes are relative to the free CPU of one node the scenario picks, and pods are
pinned to it with a hostname selector, so they mean the same on any cluster.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from kubernetes import client

from bigk.cluster import labels as L
from bigk.cluster.executor_request import encode_executor_request
from bigk.cluster.model import PodRequest
from bigk.kube.binder import Binder, BindOutcome, BindStatus
from tests.kube import semantics_scenarios
from tests.kube.harness import HOSTNAME, Harness, unique


def bind_with_events(h: Harness) -> None:
    """A pod that fits is bound with a Scheduled event; one that cannot is told why; a gated pod is left alone."""
    loop = h.loop()
    node = h.schedulable_node(loop)
    h.pod("fits", node_selector={HOSTNAME: node})
    h.pod("nowhere", node_selector={"bigk.io/pool": "no-such-pool"})
    h.pod("gated", gated=True, node_selector={HOSTNAME: node})
    h.wait(lambda: h.node_of("fits") == node, what="bind of 'fits'")
    h.wait(lambda: "Scheduled" in h.reasons_for("fits"), what="Scheduled event")
    h.wait(lambda: "FailedScheduling" in h.reasons_for("nowhere"), what="FailedScheduling event")
    cond = h.wait(lambda: _condition(h.read("nowhere"), "PodScheduled"), what="PodScheduled condition")
    assert (cond.status, cond.reason) == ("False", "Unschedulable")
    message = next(e.message for e in h.events_for("nowhere") if e.reason == "FailedScheduling")
    assert message and message == loop.explanations()[f"{h.namespace}/nowhere"]
    time.sleep(0.5)
    assert h.node_of("gated") == ""
    assert h.reasons_for("gated") == []


def _condition(pod: client.V1Pod | None, kind: str) -> Any:
    if pod is None or pod.status is None:
        return None
    return next((c for c in pod.status.conditions or [] if c.type == kind), None)


def gang_with_staggered_executors(h: Harness) -> None:
    """The driver binds with room reserved for its executors; executors created later in batches take that room,
    and a pod arriving in between cannot take it."""
    loop = h.loop()
    node = h.schedulable_node(loop)
    free = h.free_cpu(loop, node)
    driver_cpu, exec_cpu, filler_cpu = free // 10, free // 5, free // 5
    app = unique("spark")
    pin = {HOSTNAME: node}
    annotations = {
        L.MIN_EXECUTORS_ANNOTATION: "4", L.MAX_EXECUTORS_ANNOTATION: "4",
        L.EXECUTOR_REQUEST_ANNOTATION: encode_executor_request(PodRequest(exec_cpu, 16), pin),
    }
    h.pod(f"{app}-driver", app=app, role="driver", cpu=f"{driver_cpu}m", annotations=annotations,
          node_selector=pin)
    h.wait(lambda: h.node_of(f"{app}-driver") == node, what="driver bound")
    reserved = loop.scheduler.reservations().get(app, [])
    assert len(reserved) == 4 and all(slot.node == node for slot in reserved)
    h.pod("filler", cpu=f"{filler_cpu}m", node_selector=pin)
    h.wait(lambda: f"{h.namespace}/filler" in loop.explanations(), what="filler explained")
    assert h.node_of("filler") == ""  # without the reservations it would fit
    for batch in ((1, 2), (3, 4)):
        for n in batch:
            h.pod(f"{app}-exec-{n}", app=app, role="executor", cpu=f"{exec_cpu}m", node_selector=pin,
                  labels={L.SPARK_EXEC_ID: str(n)})
        for n in batch:
            h.wait(lambda n=n: h.node_of(f"{app}-exec-{n}") == node, what=f"executor {n} bound")  # type: ignore[misc]
        time.sleep(0.3)
    assert h.node_of("filler") == ""
    assert not loop.scheduler.reservations().get(app)


def binders_race(h: Harness) -> None:
    """Two binders bind the same pod at once: exactly one succeeds, the other sees 409 and sends no second bind."""
    loop = h.loop(start=False)
    loop.node_informer.start()
    loop.node_informer.wait_for_sync(10)
    node = h.schedulable_node(loop)
    loop.node_informer.stop()
    h.pod("contested", node_selector={HOSTNAME: node})
    calls: list[str] = []
    barrier = threading.Barrier(2)

    class Counting:
        def __init__(self, who: str) -> None:
            self.who = who
            self.real = client.CoreV1Api(h.api)

        def create_namespaced_pod_binding(self, *args: Any, **kwargs: Any) -> Any:
            calls.append(self.who)
            return self.real.create_namespaced_pod_binding(*args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

    outcomes: dict[str, BindOutcome] = {}

    def run(who: str) -> None:
        binder = Binder(h.api, core=Counting(who))
        barrier.wait()
        outcomes[who] = binder.bind(h.namespace, "contested", node)

    threads = [threading.Thread(target=run, args=(who,)) for who in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    statuses = sorted(o.status.value for o in outcomes.values())
    assert statuses == sorted([BindStatus.BOUND.value, BindStatus.TAKEN.value]), outcomes
    assert sorted(calls) == ["a", "b"]  # one bind request each: the loser did not retry
    assert h.node_of("contested") == node


def failed_bind_waits_again(h: Harness) -> None:
    """The loop binds in the background (the next cycle already counts the pod as placed); a bind that fails
    drops that assumption, so the pod waits again and the next cycle binds it, once."""
    loop = h.loop(start=False)
    real_bind = loop.binder.bind
    failures: list[str] = []

    def failing_once(namespace: str, name: str, *args: Any, **kwargs: Any) -> BindOutcome:
        if name == "flaky" and not failures:
            failures.append(name)
            return BindOutcome(BindStatus.FAILED, message="injected: the API server answered 500")
        return real_bind(namespace, name, *args, **kwargs)

    loop.binder.bind = failing_once  # type: ignore[method-assign]
    loop.start()
    h.pod("flaky")
    h.wait(lambda: h.node_of("flaky"), timeout=30, what="the pod bound on the second try")
    h.wait(lambda: loop.stats.binds == 1, what="the good bind counted")
    assert failures == ["flaky"] and loop.stats.bind_failed == 1 and loop.stats.binds == 1


def replicas_without_leader_never_double_bind(h: Harness, pods: int = 30) -> None:
    """Two replicas that both act (split brain) still bind every pod exactly once."""
    a, b = h.loop(), h.loop()
    for i in range(pods):
        h.pod(f"p{i}")
    h.wait(lambda: all(h.node_of(f"p{i}") for i in range(pods)), timeout=30, what="all pods bound")
    time.sleep(0.3)
    assert a.stats.binds + b.stats.binds == pods
    assert a.stats.bind_failed == b.stats.bind_failed == 0


def only_the_leader_binds(h: Harness, pods: int = 10) -> None:
    lease = unique("bigk-test-lease")
    ea = h.elector(lease).start()
    h.wait(lambda: ea.is_leader, what="first elector leads")
    eb = h.elector(lease).start()
    a, b = h.loop(elector=ea), h.loop(elector=eb)
    for i in range(pods):
        h.pod(f"p{i}")
    h.wait(lambda: all(h.node_of(f"p{i}") for i in range(pods)), what="all pods bound")
    assert (a.stats.binds, b.stats.binds) == (pods, 0)
    assert not eb.is_leader and eb.leader == ea.identity


def leader_failover(h: Harness) -> None:
    """A leader that dies is replaced within the lease duration; one that stops gracefully is replaced at once."""
    lease = unique("bigk-test-lease")
    ea = h.elector(lease).start()
    h.wait(lambda: ea.is_leader, what="first elector leads")
    eb = h.elector(lease).start()
    a, b = h.loop(elector=ea), h.loop(elector=eb)
    h.pod("before")
    h.wait(lambda: h.node_of("before"), what="bind by first leader")
    assert (a.stats.binds, b.stats.binds) == (1, 0)

    ea.stop(release=False)  # dies: stops renewing, never releases
    a.stop()
    died = time.monotonic()
    h.wait(lambda: eb.is_leader, timeout=10, what="follower takes over")
    takeover = time.monotonic() - died
    assert takeover <= eb.lease_duration_s + 2 * eb.retry_period_s + 1.0, takeover  # 1 s for a loaded machine
    h.pod("after")
    h.wait(lambda: h.node_of("after"), what="bind by new leader")
    assert b.stats.binds == 1

    ec = h.elector(lease).start()
    time.sleep(0.3)
    assert not ec.is_leader
    eb.stop(release=True)
    b.stop()
    released = time.monotonic()
    h.wait(lambda: ec.is_leader, timeout=10, what="takeover after release")
    assert time.monotonic() - released < ec.lease_duration_s  # no waiting out the lease


def preemption_by_eviction(h: Harness) -> None:
    """A high-priority pod that does not fit evicts a lower-priority one and takes its place."""
    loop = h.loop()
    node = h.schedulable_node(loop)
    free = h.free_cpu(loop, node)
    pin = {HOSTNAME: node}
    for name in ("low-a", "low-b"):
        h.pod(name, cpu=f"{free * 45 // 100}m", priority=0, node_selector=pin)
    h.wait(lambda: h.node_of("low-a") and h.node_of("low-b"), what="low-priority pods bound")
    h.pod("high", cpu=f"{free * 50 // 100}m", priority=100, node_selector=pin)  # one victim frees 55%
    h.wait(lambda: h.node_of("high") == node, timeout=30, what="high-priority pod bound")
    victims = [name for name in ("low-a", "low-b") if h.gone_or_terminating(name)]
    assert len(victims) == 1, victims
    assert loop.stats.evictions == 1
    assert "Preempted" in h.reasons_for(victims[0])


# Every scenario, in the order both suites run them: the emulated suite and the real-cluster contract
# suite parametrize over this one list, so a scenario added here runs in both.
ALL = [
    bind_with_events,
    gang_with_staggered_executors,
    binders_race,
    failed_bind_waits_again,
    replicas_without_leader_never_double_bind,
    only_the_leader_binds,
    leader_failover,
    preemption_by_eviction,
    *semantics_scenarios.ALL,
]
