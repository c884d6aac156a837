"""Gangs from pods: what the core is told about a Spark application before its executors exist."""

from __future__ import annotations

from kubernetes import client

from bigk.cluster import labels as L
from bigk.cluster.executor_request import decode_executor_request, encode_executor_request
from bigk.cluster.model import Gang, PodRequest, Toleration
from bigk.kube.cache import ClusterCache
from bigk.kube.gangs import GangMemo, gangs_from_entries
from tests.kube.objects import pod

EXEC = PodRequest(2000, 4505, 1, 1000, 0, frozenset({"A100"}))
TOL = [Toleration("nvidia.com/gpu", "Exists", "", "NoSchedule")]


def _gangs(*pods: client.V1Pod) -> dict[str, Gang]:
    cache = ClusterCache()
    cache.replace_pods(pods)
    return gangs_from_entries(cache.pod_entries())


def test_executor_request_round_trips_through_the_driver_annotation() -> None:
    text = encode_executor_request(EXEC, {"bigk.io/pool": "gpu"}, TOL)
    assert decode_executor_request(text) == (EXEC, {"bigk.io/pool": "gpu"}, TOL)
    for junk in ("", "[]", "{\"cpu_milli\": -1}", "{\"cpu_milli\": true}", "nope"):
        assert decode_executor_request(junk) is None


def test_gang_before_any_executor_exists_uses_the_driver_annotations() -> None:
    annotations = {L.MIN_EXECUTORS_ANNOTATION: "3", L.MAX_EXECUTORS_ANNOTATION: "5", L.PRIORITY_ANNOTATION: "7",
                   L.EXECUTOR_REQUEST_ANNOTATION: encode_executor_request(EXEC, {"bigk.io/pool": "gpu"}, TOL)}
    gang = _gangs(pod("drv", app="spark-1", role="driver", cpu="1", memory="2Gi", annotations=annotations,
                      labels={L.QUEUE_LABEL: "ml"}))["spark-1"]
    assert (gang.min_executors, gang.priority, gang.queue) == (3, 7, "ml")
    assert gang.executor == EXEC and gang.driver == PodRequest(1000, 2048)
    assert gang.node_selector == {"bigk.io/pool": "gpu"} and gang.tolerations == TOL


def test_a_real_executor_pod_is_the_exact_request() -> None:
    annotations = {L.MIN_EXECUTORS_ANNOTATION: "2",
                   L.EXECUTOR_REQUEST_ANNOTATION: encode_executor_request(EXEC)}
    gangs = _gangs(pod("drv", app="spark-1", role="driver", annotations=annotations),
                   pod("exec-1", app="spark-1", role="executor", cpu="3", memory="6Gi"))
    assert gangs["spark-1"].executor == PodRequest(3000, 6144)


def test_without_annotations_the_driver_request_is_the_estimate_and_orphans_have_no_gang() -> None:
    gangs = _gangs(pod("drv", app="spark-1", role="driver", cpu="2", annotations={L.MIN_EXECUTORS_ANNOTATION: "2"}),
                   pod("exec-9", app="spark-orphan", role="executor"))
    assert gangs["spark-1"].executor == PodRequest(2000, 1024)
    assert "spark-orphan" not in gangs


def test_with_a_memo_an_unchanged_gang_is_the_same_object_and_a_changed_one_is_new() -> None:
    """The scheduler's tracker tells changed gangs by identity: a gang rebuilt with equal values each cycle made
    every waiting gang "changed" whenever one was."""
    cache = ClusterCache()
    annotations = {L.MIN_EXECUTORS_ANNOTATION: "1", L.EXECUTOR_REQUEST_ANNOTATION: encode_executor_request(EXEC)}
    cache.replace_pods([pod("a-drv", app="spark-a", role="driver", annotations=annotations),
                        pod("b-drv", app="spark-b", role="driver", annotations=annotations)])
    memo = GangMemo()
    first = gangs_from_entries(cache.pod_entries(), memo)
    again = gangs_from_entries(cache.pod_entries(), memo)
    assert all(again[name] is first[name] for name in first)
    cache.upsert_pod(pod("b-exec-1", app="spark-b", role="executor", cpu="3", memory="6Gi"))
    changed = gangs_from_entries(cache.pod_entries(), memo)
    assert changed["spark-a"] is first["spark-a"]
    assert changed["spark-b"] is not first["spark-b"] and changed["spark-b"].executor == PodRequest(3000, 6144)
    cache.replace_pods([pod("a-drv", app="spark-a", role="driver", annotations=annotations)])  # new entries
    relisted = gangs_from_entries(cache.pod_entries(), memo)
    assert relisted["spark-a"] is first["spark-a"] and set(relisted) == {"spark-a"}  # equal: kept; b forgotten
