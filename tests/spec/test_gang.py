"""Pod requests follow Spark's memory overhead rules; the gang carries the spec's scheduling fields."""

from __future__ import annotations

from typing import Any

import pytest

from bigk.cluster.model import Toleration
from bigk.spec.gang import gang_for, pod_requests
from bigk.spec.model import JobSpec


def _job(spec: dict[str, Any], name: str = "job") -> JobSpec:
    body = {"type": "Python", "mainApplicationFile": "a.py", **spec}
    return JobSpec.model_validate(
        {"apiVersion": "bigk.io/v1", "kind": "SparkJob", "metadata": {"name": name}, "spec": body}
    )


@pytest.mark.parametrize(
    ("kind", "memory", "extra", "expected"),
    [
        ("Scala", "1g", {}, 1024 + 384),  # JVM: 10% of 1 GiB is below the 384 MiB floor
        ("Scala", "8g", {}, 8192 + 819),  # JVM: 10%
        ("Python", "8g", {}, 8192 + 3276),  # non-JVM: 40%
        ("R", "512m", {}, 512 + 384),
        ("Python", "8g", {"memoryOverhead": "1g"}, 8192 + 1024),
        ("Python", "4Gi", {}, 4096 + 1638),
    ],
)
def test_executor_memory_includes_spark_overhead(kind: str, memory: str, extra: dict[str, Any], expected: int) -> None:
    job = _job({"type": kind, "mainClass": "x.Main", "executor": {"memory": memory, **extra}})
    assert pod_requests(job)[1].memory_mib == expected


def test_spark_conf_overrides_factor_and_adds_pyspark_memory() -> None:
    job = _job(
        {
            "sparkConf": {"spark.executor.memoryOverheadFactor": "0.2", "spark.executor.pyspark.memory": "1g"},
            "executor": {"memory": "8g"},
        }
    )
    driver, executor = pod_requests(job)
    assert executor.memory_mib == 8192 + 1638 + 1024
    assert driver.memory_mib == 1024 + 409  # driver keeps the Python default 40%


def test_cpu_request_and_gpu_shapes() -> None:
    job = _job({"driver": {"coreRequest": "500m"}, "executor": {"cores": 4, "gpu": {"count": 2, "model": "A100|H100"}}})
    driver, executor = pod_requests(job)
    assert driver.cpu_milli == 500 and not driver.is_gpu
    assert (executor.cpu_milli, executor.gpu_count, executor.gpu_milli) == (4000, 2, 1000)
    assert executor.gpu_models == frozenset({"A100", "H100"}) and not executor.is_fractional
    shared = pod_requests(_job({"executor": {"gpu": {"fraction": 0.25, "memory": "4Gi"}}}))[1]
    assert (shared.gpu_count, shared.gpu_milli, shared.gpu_memory_mib, shared.is_fractional) == (1, 250, 4096, True)


def test_gang_carries_queue_priority_bounds_pools_and_gpu_toleration() -> None:
    job = _job(
        {
            "queue": "ml",
            "priority": 7,
            "pools": ["gpu-t4", "gpu-a100"],
            "nodeSelector": {"zone": "a"},
            "executor": {"instances": 4, "minInstances": 2, "maxInstances": 6, "gpu": {"count": 1}},
        },
        name="scoring",
    )
    gang = gang_for(job, "r1")
    assert gang.name == "scoring-r1"
    assert (gang.queue, gang.priority, gang.min_executors) == ("ml", 7, 2)
    assert gang.preferred_pools == ("gpu-t4", "gpu-a100")
    assert gang.node_selector == {"zone": "a"}
    assert Toleration("nvidia.com/gpu", "Exists", "", "NoSchedule") in gang.tolerations
    assert gang.executor.gpu_count == 1


def test_cpu_gangs_get_no_gpu_toleration_and_default_minimum() -> None:
    gang = gang_for(_job({"executor": {"instances": 3}}), "r2")
    assert gang.tolerations == [] and gang.min_executors == 3
