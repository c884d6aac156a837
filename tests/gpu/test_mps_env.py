"""A fractional executor carries its share as CUDA MPS client limits (enforced where the pool runs MPS)."""

from __future__ import annotations

from pathlib import Path

from bigk.spark.submit import build_submission
from bigk.spec.loader import load_specs

ROOT = Path(__file__).resolve().parents[2]


def test_a_quarter_gpu_with_4gi_gets_25_percent_of_the_threads_and_4096_mib(tmp_path: Path) -> None:
    job = load_specs([ROOT / "jobspecs" / "gpu-scoring.yaml"]).jobs["gpu-scoring"].spec
    sub = build_submission(job, "r1", "k8s://http://127.0.0.1:6443", tmp_path)
    env = {e["name"]: e.get("value") for e in sub.executor_template["spec"]["containers"][0]["env"]}
    assert env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] == "25"
    assert env["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] == "0=4096M"
    driver = sub.driver_template["spec"].get("containers") or [{}]
    assert not any(e["name"].startswith("CUDA_MPS") for c in driver for e in c.get("env", []))
