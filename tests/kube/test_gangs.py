"""Gangs from pods: what the core is told about a Spark application before its executors exist."""

from __future__ import annotations

from kubernetes import client

from bigk.cluster import labels as L
from bigk.cluster.executor_request import decode_executor_request, encode_executor_request
from bigk.cluster.model import Gang, PodRequest, Toleration
from bigk.kube.cache import ClusterCache
from bigk.kube.gangs import gangs_from_entries
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
