"""A job spec as the scheduler sees it: pod requests with Spark's memory overhead, and the gang.

Spark adds off-heap overhead to every pod's memory request: `memoryOverhead` if
set, else max(384 MiB, factor x heap) with factor 0.10 for JVM applications and
0.40 for Python and R (non-JVM) ones, unless sparkConf overrides the factor. The
executor also adds `spark.executor.pyspark.memory`. Getting this wrong makes the
scheduler place pods that the kubelet then cannot fit.

`spark_overhead_mib` is that rule in Spark's own terms (a heap and a conf), the one
copy: the direct-mode driver pod (`bigk.spark.driver_pod`) and the emulator's
simulated Spark driver size their pods with it too. It lives here, not in
`bigk.spark`, because validation sizes pods (`bigk.spec.fit`) and `bigk.spark`
renders specs, so `spark` sits above `spec` (docs/architecture.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from bigk.cluster.model import GPU_RESOURCE, Gang, PodRequest
from bigk.cluster.quantity import cpu_to_milli
from bigk.spec.model import JobSpec, PodSpec, Toleration
from bigk.spec.naming import gang_name
from bigk.spec.sparkvolumes import memory_volumes_mib
from bigk.spec.units import memory_mib

MIN_OVERHEAD_MIB = 384
JVM_OVERHEAD_FACTOR = 0.10
NON_JVM_OVERHEAD_FACTOR = 0.40
GPU_TOLERATION = Toleration(key=GPU_RESOURCE, operator="Exists", effect="NoSchedule")


def _factor(conf: Mapping[str, str], role: str, non_jvm: bool) -> float:
    for key in (f"spark.{role}.memoryOverheadFactor", "spark.kubernetes.memoryOverheadFactor"):
        if key in conf:
            try:
                return float(conf[key])
            except ValueError:
                break
    return NON_JVM_OVERHEAD_FACTOR if non_jvm else JVM_OVERHEAD_FACTOR


def spark_overhead_mib(heap_mib: int, role: str, conf: Mapping[str, str], non_jvm: bool = False) -> int:
    """The overhead Spark adds to a `role` pod with `heap_mib` of heap when no memoryOverhead is set.

    max(spark.{role}.minMemoryOverhead or 384 MiB, factor x heap); the factor from sparkConf, else 0.10
    (0.40 for Python and R applications, `non_jvm`).
    """
    minimum = MIN_OVERHEAD_MIB
    min_key = f"spark.{role}.minMemoryOverhead"
    if min_key in conf:
        with contextlib.suppress(ValueError):  # a bad value keeps Spark's default, as Spark would fail anyway
            minimum = memory_mib(conf[min_key])
    return max(minimum, int(_factor(conf, role, non_jvm) * heap_mib))


def overhead_mib(job: JobSpec, role: str) -> int:
    """Off-heap memory Spark adds to the pod of `role` ('driver' or 'executor'), memory-backed emptyDirs included."""
    pod: PodSpec = job.spec.driver if role == "driver" else job.spec.executor
    return _spark_overhead_mib(job, role, pod) + tmpfs_mib(job, role)


def tmpfs_mib(job: JobSpec, role: str) -> int:
    """The sizeLimit of the pod's memory-backed emptyDirs: tmpfs pages count against the container's memory."""
    pod: PodSpec = job.spec.driver if role == "driver" else job.spec.executor
    return memory_volumes_mib(pod.template, job.spec.sparkConf, role)


def _spark_overhead_mib(job: JobSpec, role: str, pod: PodSpec) -> int:
    if pod.memoryOverhead is not None:
        return memory_mib(pod.memoryOverhead)
    return spark_overhead_mib(pod.memory_mib, role, job.spec.sparkConf, job.spec.type in ("Python", "R"))


def pod_request(job: JobSpec, role: str) -> PodRequest:
    """What one driver or executor pod of the job asks the scheduler for."""
    pod: PodSpec = job.spec.driver if role == "driver" else job.spec.executor
    cpu = cpu_to_milli(pod.coreRequest) if pod.coreRequest is not None else pod.cores * 1000
    memory = pod.memory_mib + overhead_mib(job, role)
    pyspark_memory = job.spec.sparkConf.get("spark.executor.pyspark.memory")
    if role == "executor" and pyspark_memory:
        memory += memory_mib(pyspark_memory)
    gpu = pod.gpu
    if gpu is None:
        return PodRequest(cpu_milli=cpu, memory_mib=memory)
    return PodRequest(
        cpu_milli=cpu,
        memory_mib=memory,
        gpu_count=1 if gpu.is_fractional else gpu.count,
        gpu_milli=gpu.milli,
        gpu_memory_mib=gpu.memory_mib if gpu.is_fractional else 0,
        gpu_models=gpu.models,
    )


def pod_requests(job: JobSpec) -> tuple[PodRequest, PodRequest]:
    """(driver, executor) requests, overhead included."""
    return pod_request(job, "driver"), pod_request(job, "executor")


def tolerations_for(job: JobSpec, role: str) -> list[Toleration]:
    """Spec-wide plus per-role tolerations; GPU pods also tolerate the usual `nvidia.com/gpu` taint.

    GPU node pools are tainted so CPU pods stay off them; every GPU pod would need
    the same toleration, so bigk adds it (like Kubernetes' ExtendedResourceToleration).
    """
    pod: PodSpec = job.spec.driver if role == "driver" else job.spec.executor
    tolerations = [*job.spec.tolerations, *pod.tolerations]
    if pod.gpu is not None and not any(t.to_cluster() == GPU_TOLERATION.to_cluster() for t in tolerations):
        tolerations.append(GPU_TOLERATION)
    return tolerations


def node_selector_for(job: JobSpec, role: str) -> dict[str, str]:
    pod: PodSpec = job.spec.driver if role == "driver" else job.spec.executor
    return {**job.spec.nodeSelector, **pod.nodeSelector}


def gang_for(job: JobSpec, run_id: str) -> Gang:
    """The run as one scheduling unit. Gang-wide selector and tolerations are the executors' (the bulk)."""
    driver, executor = pod_requests(job)
    return Gang(
        name=gang_name(job.metadata.name, run_id),
        queue=job.spec.queue,
        priority=job.spec.priority,
        driver=driver,
        executor=executor,
        min_executors=job.spec.executor.gang_min,
        namespace=job.metadata.namespace,
        node_selector=node_selector_for(job, "executor"),
        tolerations=[t.to_cluster() for t in tolerations_for(job, "executor")],
        preferred_pools=tuple(job.spec.pools),
    )
