"""Binder decisions under races and faults (against an in-memory API; HTTP is covered in test_emulated)."""

from __future__ import annotations

import random

from kubernetes import client

from bigk.cluster import labels as L
from bigk.kube.binder import Binder, BindStatus, EvictStatus
from bigk.kube.events import EventRecorder, UnschedulableReporter
from bigk.kube.retry import Backoff
from tests.kube.fakes import FakeCoreApi, Fault

API = client.ApiClient()


def _binder(fake: FakeCoreApi, annotate_first: bool = False) -> Binder:
    backoff = Backoff(sleep=lambda _: None, rng=random.Random(1))
    return Binder(API, events=EventRecorder(API, core=fake, backoff=backoff), backoff=backoff, core=fake,
                  annotate_first=annotate_first)


def _rv(fake: FakeCoreApi, name: str) -> str:
    return str(fake.pods[f"default/{name}"]["metadata"]["resourceVersion"])


def test_gpus_travel_on_the_binding_in_one_write_with_a_scheduled_event() -> None:
    fake = FakeCoreApi()
    fake.add_pod("p", gpus=2)
    out = _binder(fake).bind("default", "p", "gpu-0", (1, 3), resource_version=_rv(fake, "p"))
    assert out.status is BindStatus.BOUND
    pod = fake.pods["default/p"]
    assert pod["spec"]["nodeName"] == "gpu-0"
    assert pod["metadata"]["annotations"][L.ASSIGNED_GPUS_ANNOTATION] == "1,3"
    assert [m for m, _ in fake.calls if m in ("patch", "bind")] == ["bind"]
    assert fake.event_reasons("p") == ["Scheduled"]


def test_annotate_first_mode_writes_the_annotation_before_binding() -> None:
    fake = FakeCoreApi()
    fake.add_pod("p", gpus=2)
    out = _binder(fake, annotate_first=True).bind("default", "p", "gpu-0", (0, 1), resource_version=_rv(fake, "p"))
    assert out.ok and fake.pods["default/p"]["metadata"]["annotations"][L.ASSIGNED_GPUS_ANNOTATION] == "0,1"
    assert [m for m, _ in fake.calls if m in ("patch", "bind")] == ["patch", "bind"]


def test_after_a_dropped_connection_a_rival_bind_to_the_same_node_is_not_taken_for_ours() -> None:
    fake = FakeCoreApi(faults=[Fault("bind", 0)])  # our first attempt never reaches the server
    fake.add_pod("p", gpus=1)

    def rival_binds_meanwhile(_: float) -> None:
        pod = fake.pods["default/p"]
        pod["spec"]["nodeName"] = "gpu-0"
        pod["metadata"]["annotations"][L.ASSIGNED_GPUS_ANNOTATION] = "3"

    binder = Binder(API, backoff=Backoff(sleep=rival_binds_meanwhile), core=fake)
    out = binder.bind("default", "p", "gpu-0", (0,))
    assert out.status is BindStatus.TAKEN and out.node == "gpu-0"
    assert fake.pods["default/p"]["metadata"]["annotations"][L.ASSIGNED_GPUS_ANNOTATION] == "3"


def test_gpu_bind_that_landed_before_the_connection_dropped_is_ours() -> None:
    fake = FakeCoreApi(faults=[Fault("bind", 0, after=True)])
    fake.add_pod("p", gpus=1)
    assert _binder(fake).bind("default", "p", "gpu-0", (2,)).status is BindStatus.BOUND


def test_server_errors_and_throttling_are_retried_until_bound() -> None:
    fake = FakeCoreApi(faults=[Fault("bind", 500), Fault("bind", 429), Fault("patch", 503)])
    fake.add_pod("p", gpus=1)
    binder = _binder(fake)
    out = binder.bind("default", "p", "gpu-0", (0,), resource_version=_rv(fake, "p"))
    assert out.ok and fake.pods["default/p"]["spec"]["nodeName"] == "gpu-0"
    assert binder.binds == 1 and binder.bind_failures == 0


def test_bind_that_landed_before_the_connection_dropped_is_recognised_as_ours() -> None:
    fake = FakeCoreApi(faults=[Fault("bind", 0, after=True)])
    fake.add_pod("p")
    out = _binder(fake).bind("default", "p", "cpu-1")
    assert out.status is BindStatus.BOUND and out.node == "cpu-1"
    assert [m for m, _ in fake.calls].count("bind") == 2  # the retry saw 409, the re-read showed our node


def test_pod_bound_by_someone_else_is_never_bound_again() -> None:
    fake = FakeCoreApi()
    fake.add_pod("p", node="other-node")  # our cache still thought it pending
    out = _binder(fake).bind("default", "p", "cpu-1")
    assert out.status is BindStatus.TAKEN and out.node == "other-node"
    assert [m for m, _ in fake.calls].count("bind") == 1  # one attempt, a 409, no retry
    assert fake.pods["default/p"]["spec"]["nodeName"] == "other-node"
    assert fake.event_reasons("p") == []


def test_stale_cache_and_a_rival_annotation_stop_the_bind_before_it_starts() -> None:
    fake = FakeCoreApi()
    fake.add_pod("p", gpus=1)
    stale = _rv(fake, "p")
    rival = _binder(fake, annotate_first=True)
    assert rival.bind("default", "p", "gpu-1", (2,), resource_version=stale).ok
    out = _binder(fake, annotate_first=True).bind("default", "p", "gpu-0", (0,), resource_version=stale)
    assert out.status is BindStatus.TAKEN and out.node == "gpu-1"
    assert fake.pods["default/p"]["metadata"]["annotations"][L.ASSIGNED_GPUS_ANNOTATION] == "2"


def test_rival_mid_bind_annotation_is_not_overwritten() -> None:
    fake = FakeCoreApi()
    fake.add_pod("p", gpus=1)
    stale = _rv(fake, "p")
    fake.patch_namespaced_pod("p", "default", {"metadata": {"annotations": {L.ASSIGNED_GPUS_ANNOTATION: "5"}}})
    out = _binder(fake, annotate_first=True).bind("default", "p", "gpu-0", (0,), resource_version=stale)
    assert out.status is BindStatus.CONFLICT
    assert fake.pods["default/p"]["metadata"]["annotations"][L.ASSIGNED_GPUS_ANNOTATION] == "5"
    assert "nodeName" not in fake.pods["default/p"]["spec"]


def test_unrelated_change_with_stale_version_still_binds() -> None:
    fake = FakeCoreApi()
    fake.add_pod("p", gpus=1)
    stale = _rv(fake, "p")
    fake.patch_namespaced_pod_status("p", "default", {"status": {"conditions": []}})
    out = _binder(fake, annotate_first=True).bind("default", "p", "gpu-0", (0,), resource_version=stale)
    assert out.ok


def test_deleted_pod_and_refusals_are_reported_not_raised() -> None:
    fake = FakeCoreApi()
    assert _binder(fake).bind("default", "missing", "n").status is BindStatus.GONE
    fake.faults.append(Fault("bind", 403))
    fake.add_pod("p")
    out = _binder(fake).bind("default", "p", "n")
    assert out.status is BindStatus.FAILED and "403" in out.message


def test_persistent_server_errors_give_up_and_leave_pod_pending() -> None:
    fake = FakeCoreApi(faults=[Fault("bind", 500, count=100)])
    fake.add_pod("p")
    out = _binder(fake).bind("default", "p", "n")
    assert out.status is BindStatus.FAILED
    assert "nodeName" not in fake.pods["default/p"]["spec"]


def test_eviction_posts_preempted_event_and_budget_refusal_is_not_hammered() -> None:
    fake = FakeCoreApi(faults=[Fault("evict", 429)])
    fake.add_pod("victim", node="n")
    binder = _binder(fake)
    assert binder.evict("default", "victim", reason="for gang x") is EvictStatus.BLOCKED
    assert [m for m, _ in fake.calls].count("evict") == 1
    assert binder.evict("default", "victim", reason="for gang x") is EvictStatus.EVICTED
    assert "default/victim" not in fake.pods
    assert fake.event_reasons("victim") == ["Preempted"]
    assert binder.evict("default", "victim") is EvictStatus.GONE


def test_unschedulable_report_is_rate_limited_per_pod_and_message() -> None:
    fake = FakeCoreApi()
    fake.add_pod("p")
    now = [1000.0]
    backoff = Backoff(sleep=lambda _: None)
    reporter = UnschedulableReporter(API, EventRecorder(API, core=fake, backoff=backoff, clock=lambda: now[0]),
                                     core=fake, clock=lambda: now[0], repeat_after_s=300, min_interval_s=30,
                                     backoff=backoff)
    assert reporter.report("default", "p", "uid-p", "0/3 nodes: 3 insufficient GPU")
    cond = fake.pods["default/p"]["status"]["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == ("PodScheduled", "False", "Unschedulable")
    now[0] += 10
    assert not reporter.report("default", "p", "uid-p", "0/3 nodes: 3 insufficient GPU")  # same message
    assert not reporter.report("default", "p", "uid-p", "0/3 nodes: 2 insufficient GPU")  # news, but too soon
    now[0] += 30
    assert reporter.report("default", "p", "uid-p", "0/3 nodes: 2 insufficient GPU")
    now[0] += 300
    assert reporter.report("default", "p", "uid-p", "0/3 nodes: 2 insufficient GPU")  # reminder
    assert fake.event_reasons("p") == ["FailedScheduling"] * 3
