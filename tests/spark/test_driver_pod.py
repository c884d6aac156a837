"""The direct-mode driver pod and the simulated Spark driver size pods by Spark's one memory-overhead rule."""

from __future__ import annotations

from pathlib import Path

from bigk.cluster.quantity import memory_to_mib
from bigk.emulator.sparkconf import executor_memory_mib
from bigk.spark.driver_pod import build_driver_pod
from bigk.spark.submit import build_submission
from bigk.spec.gang import pod_request, spark_overhead_mib
from bigk.spec.loader import load_specs


def test_the_rule() -> None:
    assert spark_overhead_mib(1024, "driver", {}) == 384  # the floor
    assert spark_overhead_mib(8192, "executor", {}) == 819  # 10 % of a JVM heap
    assert spark_overhead_mib(8192, "executor", {}, non_jvm=True) == 3276  # 40 % for Python and R
    assert spark_overhead_mib(8192, "executor", {"spark.executor.memoryOverheadFactor": "0.2"}) == 1638
    assert spark_overhead_mib(1024, "driver", {"spark.driver.minMemoryOverhead": "1g"}) == 1024


def test_direct_driver_pod_asks_what_the_scheduler_reserves(tmp_path: Path) -> None:
    job = load_specs(["jobspecs"]).jobs["gpu-scoring"].spec
    sub = build_submission(job, "run1", "k8s://http://127.0.0.1:1", tmp_path)
    pod = build_driver_pod(sub, job.metadata.name, "run1", job.metadata.namespace)
    memory = pod["spec"]["containers"][0]["resources"]["requests"]["memory"]
    assert memory_to_mib(memory) == pod_request(job, "driver").memory_mib


def test_without_an_explicit_overhead_every_copy_applies_the_rule(tmp_path: Path) -> None:
    job = load_specs(["jobspecs"]).jobs["gpu-scoring"].spec
    sub = build_submission(job, "run1", "k8s://http://127.0.0.1:1", tmp_path)
    conf = {k: v for k, v in sub.conf.items() if not k.endswith(".memoryOverhead")}
    conf.update({"spark.driver.memory": "4g", "spark.driver.minMemoryOverhead": "1g",
                 "spark.driver.memoryOverheadFactor": "0.1",
                 "spark.executor.memory": "8g", "spark.executor.memoryOverheadFactor": "0.25"})
    sub.conf = conf
    pod = build_driver_pod(sub, job.metadata.name, "run1", job.metadata.namespace)
    assert memory_to_mib(pod["spec"]["containers"][0]["resources"]["requests"]["memory"]) == 4096 + 1024
    assert executor_memory_mib({k: str(v) for k, v in conf.items()}) == 8192 + 2048 + (
        memory_to_mib(conf["spark.executor.pyspark.memory"]) if conf.get("spark.executor.pyspark.memory") else 0)


def test_the_simulated_driver_sizes_python_executors_as_spark_does() -> None:
    """spark-submit tells the driver the application's kind; Spark gives Python and R executors 40 %."""
    conf = {"spark.executor.memory": "8g"}
    assert executor_memory_mib(conf) == 8192 + 819
    assert executor_memory_mib({**conf, "spark.kubernetes.resource.type": "python"}) == 8192 + 3276
