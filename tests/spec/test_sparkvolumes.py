"""Spark's volume settings are checked at validate time, at the line of the setting."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bigk.spec.loader import load_specs

Write = Callable[..., Path]
PVC = "spark.kubernetes.executor.volumes.persistentVolumeClaim.data"


def _only_problem(path: Path) -> str:
    result = load_specs([path])
    assert len(result.problems) == 1, [str(p) for p in result.problems]
    return str(result.problems[0])


def test_on_demand_executor_claims_with_a_size_are_accepted(write: Write) -> None:
    path = write("pvc", f"sparkConf:\n  {PVC}.options.claimName: OnDemand\n  {PVC}.options.sizeLimit: 50Gi\n"
                        f"  {PVC}.options.storageClass: standard\n  {PVC}.mount.path: /data\n")
    result = load_specs([path])
    assert result.problems == [] and "pvc" in result.jobs


@pytest.mark.parametrize(("conf", "line", "words"), [
    (f"  {PVC}.options.claimName: OnDemand\n  {PVC}.mount.path: /data\n", 9, "needs " + PVC + ".options.sizeLimit"),
    (f"  {PVC}.options.claimName: OnDemand\n  {PVC}.options.sizeLimit: 50Gi\n", 9, "needs " + PVC + ".mount.path"),
    (f"  {PVC}.options.claimName: data-SPARK_EXECUTOR_ID\n  {PVC}.options.sizeLimit: lots\n  {PVC}.mount.path: /d\n",
     10, "not a Kubernetes quantity"),
    ("  spark.kubernetes.driver.volumes.emptyDir.tmp.options.medium: Disk\n"
     "  spark.kubernetes.driver.volumes.emptyDir.tmp.mount.path: /tmp\n", 9, "must be '' (node disk) or Memory"),
    ("  spark.kubernetes.driver.volumes.secret.s.mount.path: /s\n", 9, "not one Spark mounts"),
])
def test_volume_settings_spark_would_refuse_are_errors_at_their_line(write: Write, conf: str, line: int,
                                                                      words: str) -> None:
    problem = _only_problem(write("vol", "sparkConf:\n" + conf))
    assert f":{line}:" in problem and "spec.sparkConf." in problem and words in problem, problem


def test_memory_backed_empty_dirs_count_as_the_pods_memory(write: Write, tmp_path: Path) -> None:
    """tmpfs pages count against the container's memory limit: the pod asks for them, the scheduler counts them."""
    from bigk.spark.submit import build_submission
    from bigk.spec.gang import pod_request

    path = write("tmpfs", """driver:
  memory: 1g
  template:
    spec:
      containers:
        - name: spark-kubernetes-driver
          volumeMounts: [{name: scratch, mountPath: /scratch}]
      volumes:
        - {name: scratch, emptyDir: {medium: Memory, sizeLimit: 2Gi}}
        - {name: idle, emptyDir: {medium: Memory, sizeLimit: 8Gi}}
executor:
  memory: 2g
sparkConf:
  spark.kubernetes.executor.volumes.emptyDir.spill.options.medium: Memory
  spark.kubernetes.executor.volumes.emptyDir.spill.options.sizeLimit: 1Gi
  spark.kubernetes.executor.volumes.emptyDir.spill.mount.path: /spill
""")
    job = load_specs([path]).jobs["tmpfs"].spec
    # Python job: overhead max(384, 0.4 x heap); plus the mounted tmpfs only (the idle volume holds nothing)
    assert pod_request(job, "driver").memory_mib == 1024 + 409 + 2048
    assert pod_request(job, "executor").memory_mib == 2048 + 819 + 1024
    sub = build_submission(job, "r1", "k8s://https://k", tmp_path)
    assert sub.conf["spark.driver.memoryOverhead"] == f"{409 + 2048}m"
    assert sub.conf["spark.executor.memoryOverhead"] == f"{819 + 1024}m"
