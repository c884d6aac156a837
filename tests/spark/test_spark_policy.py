"""Real spark-submit keeps what the spec policy put into bigk's pod templates (Spark merges, it does not replace).

The driver pod Spark POSTs for a spec whose template asks for 1m CPU / 1Mi and another scheduler carries bigk's
requests, bigk's scheduler, and the restricted profile's security settings on the pod and on Spark's own
container. Slow (a JVM start); uses the recording fake API of test_spark_contract.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bigk.spec.loader import load_specs
from bigk.spec.policy import check_template

from .test_spark_contract import _driver_pod, api  # noqa: F401  (fixture)

HOSTILE = Path(__file__).parents[1] / "spec" / "data" / "hostile"


@pytest.mark.spark
@pytest.mark.slow
def test_spark_keeps_bigks_requests_and_the_restricted_profile(
        api: tuple[str, list[tuple[str, str, bytes]]], tmp_path: Path) -> None:  # noqa: F811
    master, seen = api
    spec_file = tmp_path / "sneaky.yaml"  # Spark insists on an image
    spec_file.write_text((HOSTILE / "resource-override.yaml").read_text().replace(
        "  type: Python\n", "  type: Python\n  image: apache/spark:4.0.0\n"))
    job = load_specs([spec_file]).jobs["sneaky-resources"].spec
    pod = _driver_pod(job, master, seen, tmp_path)
    assert pod["spec"]["schedulerName"] == "bigk"
    main = pod["spec"]["containers"][0]
    assert main["resources"]["requests"]["cpu"] == "2"  # spark.driver.cores, not the template's 1m
    assert main["resources"]["requests"]["memory"] != "1Mi"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert main["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert [f for f in check_template(pod, "restricted") if f.severity == "error"] == []
