"""Helpers for spec tests: write spec files and load them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bigk.cluster.config import load_cluster
from bigk.cluster.model import Node

REPO = Path(__file__).parents[2]
JOBSPECS = REPO / "jobspecs"

BASE = """apiVersion: bigk.io/v1
kind: SparkJob
metadata:
  name: {name}
spec:
  type: Python
  mainApplicationFile: local:///opt/bigk/apps/etl_daily.py
"""


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """write(name, extra_spec_yaml, file=...) -> path of a spec file with BASE plus indented extra lines."""

    def _write(name: str = "job", extra: str = "", file: str | None = None) -> Path:
        path = tmp_path / (file or f"{name}.yaml")
        body = BASE.format(name=name) + "".join(f"  {line}\n" for line in extra.strip("\n").splitlines())
        path.write_text(body)
        return path

    return _write


@pytest.fixture(scope="session")
def cluster() -> list[Node]:
    return load_cluster(JOBSPECS / "cluster.yaml")
