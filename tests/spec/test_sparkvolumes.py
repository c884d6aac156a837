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
