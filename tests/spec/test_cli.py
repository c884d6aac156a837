"""The spec commands as users run them: exit codes, one line per problem, schema, render, import."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from bigk.cli.main import app

from .conftest import JOBSPECS, REPO

DATA = Path(__file__).parent / "data"
PROBLEM_LINE = re.compile(r"^\S.*:\d+:\d+: [^ ]+: .+$")
runner = CliRunner()


def test_validate_default_folder_is_clean_and_uses_the_cluster_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "checked against jobspecs/cluster.yaml" in result.stderr


def test_validate_prints_one_line_per_problem_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "apiVersion: bigk.io/v1\nkind: SparkJob\nmetadata: {name: a}\n"
        "spec: {type: Python, mainApplicationFile: a.py, executr: {}, schedule: {cron: '0 0 * * 8'}}\n"
    )
    (tmp_path / "b.yaml").write_bytes(b"\xff\xfe junk")
    result = runner.invoke(app, ["validate", str(tmp_path), "-q"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert all(PROBLEM_LINE.match(line) for line in lines), lines
    assert any("did you mean 'executor'?" in line for line in lines)


def test_validate_with_explicit_cluster_file(tmp_path: Path) -> None:
    cluster = tmp_path / "tiny.yaml"
    cluster.write_text("pools:\n  - {name: small, count: 1, cpu: '2', memory: 4Gi}\n")
    result = runner.invoke(app, ["validate", str(JOBSPECS / "nightly-etl.yaml"), "--cluster", str(cluster)])
    assert result.exit_code == 1
    assert "spec.executor: an executor pod needs cpu=4" in result.stdout


def test_schema_is_json_schema_that_accepts_examples_and_rejects_typos() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in JOBSPECS.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and "kind" in doc:
                assert not list(validator.iter_errors(doc)), path
    bad = yaml.safe_load((JOBSPECS / "adhoc-report.yaml").read_text())
    bad["spec"]["executor"]["instance"] = 2
    assert list(validator.iter_errors(bad))


def test_render_json_shows_argv_and_templates(tmp_path: Path) -> None:
    args = ["render", "gpu-scoring", "--specs", str(JOBSPECS), "-o", "json", "--run-id", "r9"]
    result = runner.invoke(app, [*args, "--master", "k8s://http://10.0.0.1:6443", "--workdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["argv"][1:3] == ["--master", "k8s://http://10.0.0.1:6443"]
    assert "spark.kubernetes.scheduler.name=bigk" in shown["argv"]
    assert shown["driverPodName"] == "gpu-scoring-r9-driver"
    assert shown["executorPodTemplate"]["spec"]["schedulerName"] == "bigk"
    assert (tmp_path / "gpu-scoring-r9-executor-template.yaml").exists()


def test_unknown_job_is_one_line_with_a_suggestion() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bigk.cli.main", "render", "nightly-etl2", "--specs", str(JOBSPECS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3  # not found, as for `bigk describe job NOPE`
    expected = f"error: no valid job named 'nightly-etl2' under {JOBSPECS}; did you mean 'nightly-etl'?"
    assert proc.stderr.strip() == expected


def test_import_prints_valid_bigk_yaml_and_names_unsupported_fields() -> None:
    result = runner.invoke(app, ["import", str(DATA / "operator-scheduled.yaml")])
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(result.stdout)
    assert doc["apiVersion"] == "bigk.io/v1" and doc["spec"]["schedule"]["cron"] == "15 1 * * 0"
    warnings = result.stderr.splitlines()
    assert any(":52:5: spec.template.timeToLiveSeconds: warning: not imported:" in w for w in warnings)
    assert any(":53:5: spec.template.monitoring: warning: imported as the operator's JMX exporter" in w
               for w in warnings)


def test_import_writes_files_that_validate(tmp_path: Path) -> None:
    result = runner.invoke(app, ["import", str(DATA / "operator-scheduled.yaml"), "-o", str(tmp_path)])
    assert result.exit_code == 0
    written = tmp_path / "sales-rollup.yaml"
    assert written.exists()
    refused = runner.invoke(app, ["validate", str(written)])  # its namespace is not in the default policy
    assert refused.exit_code == 1 and "namespace 'analytics'" in refused.output
    policy = tmp_path / "policy.yaml"
    policy.write_text("namespaces: {default: restricted, analytics: restricted}\n")
    assert runner.invoke(app, ["validate", "--policy", str(policy), str(written)]).exit_code == 0


def test_import_of_a_non_operator_file_fails(tmp_path: Path) -> None:
    result = runner.invoke(app, ["import", str(JOBSPECS / "adhoc-report.yaml")])
    assert result.exit_code == 1
    assert "bigk.io/v1/SparkJob is not supported" in result.stderr


def test_run_local_missing_app_fails_before_starting_spark(tmp_path: Path) -> None:
    (tmp_path / "j.yaml").write_text(
        "apiVersion: bigk.io/v1\nkind: SparkJob\nmetadata: {name: j}\n"
        "spec: {type: Python, mainApplicationFile: 'local:///opt/bigk/apps/missing.py'}\n"
    )
    result = runner.invoke(app, ["run-local", "j", "--specs", str(tmp_path)])
    assert result.exit_code != 0
    assert "missing.py" in str(result.exception)


def test_validate_outside_the_repository_says_where_to_run_it(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "bigk.cli.main", "validate"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip() == (f"error: no jobspecs/ folder in {tmp_path}: run bigk validate from the repository "
                                   "root, or name spec files or folders: bigk validate PATH...")
