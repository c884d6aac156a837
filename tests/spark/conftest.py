"""Shared helpers: build jobs from dicts and load the example specs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bigk.spec.loader import load_specs
from bigk.spec.model import JobSpec

JOBSPECS = Path(__file__).parents[2] / "jobspecs"


def make_job(spec: dict[str, Any], name: str = "job", **metadata: Any) -> JobSpec:
    body = {"type": "Python", "mainApplicationFile": "local:///opt/bigk/apps/etl_daily.py", **spec}
    return JobSpec.model_validate(
        {"apiVersion": "bigk.io/v1", "kind": "SparkJob", "metadata": {"name": name, **metadata}, "spec": body}
    )


@pytest.fixture(scope="session")
def examples() -> dict[str, JobSpec]:
    result = load_specs([JOBSPECS])
    assert result.problems == []
    return {name: loaded.spec for name, loaded in result.jobs.items()}
