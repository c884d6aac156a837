"""The driver pod tells bigk how big each executor will be, so gang reservations are exact."""

from pathlib import Path

from bigk.cluster.executor_request import decode_executor_request
from bigk.spark.submit import build_submission
from bigk.spec.gang import pod_request
from bigk.spec.loader import load_specs


def test_driver_carries_the_executor_request_it_will_create(tmp_path: Path) -> None:
    job = load_specs(["jobspecs"]).jobs["gpu-scoring"].spec
    sub = build_submission(job, "run1", "k8s://http://127.0.0.1:1", tmp_path)
    value = sub.conf["spark.kubernetes.driver.annotation.bigk.io/executor-request"]
    decoded = decode_executor_request(value)
    assert decoded is not None
    request, _selector, tolerations = decoded
    assert request == pod_request(job, "executor")
    assert request.is_fractional
    assert any(t.key == "nvidia.com/gpu" for t in tolerations)
