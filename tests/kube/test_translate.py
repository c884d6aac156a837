"""Translation of API objects into bigk's model: what the scheduler believes about pods and nodes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bigk.cluster import labels as L
from bigk.cluster.model import Role, Taint, Toleration
from bigk.kube.translate import TranslateError, is_candidate, node_from_v1, parse_gpu_readings, pod_from_v1
from tests.kube.objects import node, node_dict, pod, pod_dict, to_model


def test_pod_requests_sum_containers_and_take_max_with_init_containers() -> None:
    data = pod_dict("p")
    data["spec"]["containers"].append({"name": "side", "image": "x",
                                       "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}}})
    data["spec"]["initContainers"] = [{"name": "init", "image": "x",
                                       "resources": {"requests": {"cpu": "4", "memory": "1Gi"}}}]
    data["spec"]["overhead"] = {"cpu": "100m"}
    p = pod_from_v1(to_model(data, "V1Pod"))
    assert p.request.cpu_milli == 4000 + 100  # init container dominates CPU, overhead on top
    assert p.request.memory_mib == 1024 + 512  # containers dominate memory


def test_limit_stands_in_for_missing_request_and_whole_gpus_are_counted() -> None:
    data = pod_dict("p", gpus=2)
    data["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "2"}}
    p = pod_from_v1(to_model(data, "V1Pod"))
    r = p.request
    assert (r.cpu_milli, r.memory_mib, r.gpu_count, r.gpu_milli) == (2000, 4096, 2, 1000)


def test_fractional_gpu_from_annotations() -> None:
    p = pod_from_v1(pod("p", annotations={L.GPU_MILLI_ANNOTATION: "250", L.GPU_MEMORY_ANNOTATION: "4096",
                                          L.GPU_MODELS_ANNOTATION: "A100|H100"}))
    assert p.request.is_fractional
    assert (p.request.gpu_milli, p.request.gpu_memory_mib) == (250, 4096)
    assert p.request.gpu_models == frozenset({"A100", "H100"})


def test_priority_annotation_wins_over_spec_priority_and_junk_falls_back() -> None:
    data = pod_dict("p", annotations={L.PRIORITY_ANNOTATION: "7"})
    data["spec"]["priority"] = 100
    assert pod_from_v1(to_model(data, "V1Pod")).priority == 7
    data["metadata"]["annotations"][L.PRIORITY_ANNOTATION] = "high"
    assert pod_from_v1(to_model(data, "V1Pod")).priority == 100


def test_spark_labels_give_gang_role_and_bound_gpus() -> None:
    data = pod_dict("exec-1", app="spark-abc", role="executor", node="gpu-0",
                    annotations={L.ASSIGNED_GPUS_ANNOTATION: "2,3"}, labels={L.QUEUE_LABEL: "etl"})
    data["spec"]["nodeSelector"] = {"bigk.io/pool": "gpu"}
    data["spec"]["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    p = pod_from_v1(to_model(data, "V1Pod"))
    assert (p.gang, p.role, p.queue, p.node, p.gpus) == ("spark-abc", Role.EXECUTOR, "etl", "gpu-0", (2, 3))
    assert p.node_selector == {"bigk.io/pool": "gpu"}
    assert p.tolerations == [Toleration("nvidia.com/gpu", "Exists", "", "NoSchedule")]
    assert p.created_at > 1.7e9


def test_junk_assigned_gpus_annotation_reads_as_none() -> None:
    p = pod_from_v1(pod("p", node="n", annotations={L.ASSIGNED_GPUS_ANNOTATION: "zero,one"}))
    assert p.gpus == ()


def test_bad_quantity_raises_translate_error_naming_the_pod() -> None:
    with pytest.raises(TranslateError, match="default/bad"):
        pod_from_v1(pod("bad", cpu="lots"))


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({}, True),
    ({"scheduler": "default-scheduler"}, False),
    ({"node": "n1"}, False),
    ({"gated": True}, False),
    ({"phase": "Running"}, False),
])
def test_candidates_are_pending_unbound_ungated_bigk_pods(kwargs: dict[str, Any], expected: bool) -> None:
    assert is_candidate(pod("p", **kwargs)) is expected


def test_terminating_pod_is_not_a_candidate() -> None:
    data = pod_dict("p")
    data["metadata"]["deletionTimestamp"] = "2026-11-25T16:01:00Z"
    assert not is_candidate(to_model(data, "V1Pod"))


def test_node_allocatable_gpus_model_taints_and_readings() -> None:
    readings = [
        {"index": 0, "uuid": "GPU-a", "model": "A100", "memory_total_mib": 81920, "memory_free_mib": 1000,
         "utilization_pct": 97.0, "temperature_c": 80.0, "healthy": False, "observed_at": 1764086400.0},
        {"index": 1, "memory_free_mib": "lots", "healthy": True, "observed_at": 1.0},  # junk: no reading
        {"index": 1, "healthy": "yes"},
        {"index": -3}, "garbage", {"no": "index"},
    ]
    n = node_from_v1(node("gpu-0", cpu="64", memory="512Gi", gpus=2, model="A100", readings=readings,
                          taints=[{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]))
    assert (n.cpu_milli, n.memory_mib, n.pods) == (64000, 512 * 1024, 110)
    assert [g.model for g in n.gpus] == ["A100", "A100"]
    assert n.gpus[0].memory_mib == 81920 and n.gpus[0].uuid == "GPU-a"
    assert n.gpus[0].reading is not None and n.gpus[0].reading.healthy is False
    assert n.gpus[0].reading.free_memory_mib == 1000
    assert n.gpus[1].reading is None
    assert n.taints == [Taint("nvidia.com/gpu", "present", "NoSchedule")]


def test_gpu_memory_label_and_not_ready_node() -> None:
    n = node_from_v1(node("gpu-1", gpus=1, model="T4", gpu_memory_mib=15360, ready="False"))
    assert n.gpus[0].memory_mib == 15360
    assert n.unschedulable  # a NotReady node takes no new pods


@pytest.mark.parametrize("text", ["{", "null", "{\"index\": 0}", "[1, 2, 3]", json.dumps([{"index": True}]),
                                  json.dumps([{"index": 0, "healthy": True}])])
def test_junk_readings_never_raise(text: str) -> None:
    assert parse_gpu_readings(text) == {}
    n = node_from_v1(node("gpu-2", gpus=1, model="T4", readings=text))
    assert n.gpus[0].reading is None


def test_node_with_bad_allocatable_raises_translate_error() -> None:
    data = node_dict("broken")
    data["status"]["allocatable"]["cpu"] = "many"
    with pytest.raises(TranslateError, match="node broken"):
        node_from_v1(to_model(data, "V1Node"))
