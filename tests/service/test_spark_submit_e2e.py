"""One run through pyspark's real `spark-submit` (cluster mode) against the emulator, end to end."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.service.conftest import ON_BOTH_CLUSTERS, Running, job_yaml, wait_for

pytestmark = ON_BOTH_CLUSTERS


@pytest.mark.spark
@pytest.mark.slow
def test_a_run_submitted_with_spark_submit_is_admitted_and_succeeds(
        tmp_path: Path, serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "real.yaml").write_text(job_yaml("real", instances=2, duration=20))
    svc = serve(specs, submit_mode="spark")
    with svc.client() as c:
        run = c.post("/api/v1/jobs/real/run").json()
        done = wait_for(lambda: (lambda r: r if r["state"] in ("Succeeded", "Failed") else None)(
            c.get(f"/api/v1/runs/{run['id']}").json()), 120, "the spark-submit run to finish", interval=0.5)
    assert done["state"] == "Succeeded", done["reason"]
    assert done["driver_pod"] == f"real-{run['id']}-driver"
    assert done["spark_app_id"].startswith("spark-")  # Spark's own application id, not one bigk made up
    assert done["admitted_at"] is not None and done["running_at"] is not None
