"""run-local: path mapping, what is left out locally, and one real Spark run."""

from __future__ import annotations

from pathlib import Path

import pytest

from bigk.errors import BigkError
from bigk.spark.local import local_argv, map_path, run_local
from bigk.spec.model import JobSpec

from .conftest import JOBSPECS, make_job

APPS = JOBSPECS / "apps"


def test_image_paths_map_to_the_repo_apps_folder(tmp_path: Path) -> None:
    assert map_path("local:///opt/bigk/apps/etl_daily.py", APPS, tmp_path) == str((APPS / "etl_daily.py").resolve())
    assert map_path("file:///data/x.py", APPS, tmp_path) == "/data/x.py"
    assert map_path("app.py", APPS, tmp_path) == str(tmp_path / "app.py")
    assert map_path("/abs/app.py", APPS, tmp_path) == "/abs/app.py"
    assert map_path("s3a://bucket/app.py", APPS, tmp_path) == "s3a://bucket/app.py"


def test_every_example_app_exists_locally(examples: dict[str, JobSpec]) -> None:
    for job in examples.values():
        argv = local_argv(job, 2, APPS, JOBSPECS)
        main = next(arg for arg in argv if arg.endswith(".py"))
        assert Path(main).is_file() and Path(main).parent == APPS.resolve()


def test_cluster_only_settings_are_left_out_locally(examples: dict[str, JobSpec]) -> None:
    argv = local_argv(examples["gpu-features"], 3, APPS, JOBSPECS)
    assert argv[1:3] == ["--master", "local[3]"]
    joined = " ".join(argv)
    for absent in ("spark.kubernetes.", "resource.gpu", "SQLPlugin", "spark.rapids", "dynamicAllocation", "cluster"):
        assert absent not in joined
    assert "spark.ui.enabled=false" in argv


def test_missing_application_file_is_a_clear_error(tmp_path: Path) -> None:
    job = make_job({"mainApplicationFile": "local:///opt/bigk/apps/nope.py"})
    with pytest.raises(BigkError, match="nope.py.*does not exist"):
        local_argv(job, 2, APPS, tmp_path)


@pytest.mark.spark
def test_run_local_really_runs_an_example(examples: dict[str, JobSpec]) -> None:
    result = run_local(examples["adhoc-report"], 2, APPS, JOBSPECS, timeout_s=180)
    assert result.succeeded, result.output[-3000:]
    assert "adhoc_report: ok top=" in result.output


@pytest.mark.spark
@pytest.mark.slow
def test_run_local_reports_a_failing_application(tmp_path: Path) -> None:
    app = tmp_path / "fail.py"
    app.write_text(
        "import sys\nfrom pyspark.sql import SparkSession\nSparkSession.builder.getOrCreate()\nsys.exit(3)\n"
    )
    result = run_local(make_job({"mainApplicationFile": str(app)}), 1, APPS, tmp_path, timeout_s=180)
    assert result.returncode != 0 and not result.succeeded
