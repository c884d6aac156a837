"""Every error class `bigk validate` promises: precise file, line, column, field and message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bigk.cluster.model import Node
from bigk.spec.loader import load_specs

from .conftest import JOBSPECS

Write = Callable[..., Path]


def _only_problem(path: Path, cluster: list[Node] | None = None) -> str:
    result = load_specs([path], cluster=cluster)
    assert result.jobs == {}
    assert len(result.problems) == 1, [str(p) for p in result.problems]
    return str(result.problems[0])


def test_examples_are_valid_against_the_cluster_file(cluster: list[Node]) -> None:
    result = load_specs([JOBSPECS], cluster=cluster)
    assert result.problems == [], [str(p) for p in result.problems]
    shapes = sorted(p for p in (JOBSPECS / "clusters").glob("*.yaml") if p.name != "clusters.yaml")
    assert result.cluster_files == [JOBSPECS / "cluster.yaml", *shapes]  # validate's default is the first
    jobs = result.jobs
    assert {"nightly-etl", "gpu-features", "gpu-scoring", "adhoc-report"} <= set(jobs)
    assert not jobs["nightly-etl"].spec.is_gpu and jobs["nightly-etl"].spec.has_schedule
    assert jobs["nightly-etl"].spec.runs_on_schedule
    features = jobs["gpu-features"].spec.spec
    assert features.rapids is not None and features.executor.gpu is not None and features.executor.gpu.count == 1
    scoring = jobs["gpu-scoring"].spec.spec
    assert scoring.executor.gpu is not None and scoring.executor.gpu.milli == 250
    assert scoring.executor.gpu.memory_mib == 4096
    assert not jobs["adhoc-report"].spec.has_schedule
    for job in jobs.values():
        assert job.spec.spec.expectedDurationSeconds is not None and job.spec.spec.expectedDurationSeconds <= 60


def test_unknown_field_names_its_line_and_suggests(write: Write) -> None:
    path = write("typo", "executor:\n  instances: 2\n  minInstance: 1")
    assert _only_problem(path) == (
        f"{path}:10:5: spec.executor.minInstance: unknown field 'minInstance'; did you mean 'minInstances'?"
    )


def test_unknown_field_without_close_match_lists_known_fields(write: Write) -> None:
    text = _only_problem(write("far", "schedule:\n  cron: '* * * * *'\n  zzz: 1"))
    assert "unknown field 'zzz' (known fields: cron, timeZone, suspend" in text
    assert ":10:5: spec.schedule.zzz:" in text


def test_duplicate_names_are_refused_in_both_files_each_naming_the_other(write: Write) -> None:
    first = write("same", file="a.yaml")
    second = write("same", file="b.yaml")
    result = load_specs([first.parent])
    assert "same" not in result.jobs  # a name has one owner: which file sorts first decides nothing
    assert sorted(str(p) for p in result.problems) == [
        f"{first}:4:9: metadata.name: job name 'same' is also defined in {second}:4: a name has one owner, so "
        "neither definition is used until one is renamed or removed",
        f"{second}:4:9: metadata.name: job name 'same' is also defined in {first}:4: a name has one owner, so "
        "neither definition is used until one is renamed or removed",
    ]
    assert result.failed_files == {first, second}


def test_bad_cron_is_positioned_on_the_cron_value(write: Write) -> None:
    text = _only_problem(write("cron", "schedule:\n  cron: '0 25 * * *'"))
    assert text.endswith(":9:11: spec.schedule.cron: hour: 25 is out of range 0-23")


def test_suspended_schedule_still_has_a_schedule(write: Write) -> None:
    job = load_specs([write("sus", "schedule:\n  cron: '@daily'\n  suspend: true")]).jobs["sus"].spec
    assert job.has_schedule and not job.runs_on_schedule


def test_impossible_time_zone(write: Write) -> None:
    text = _only_problem(write("tz", "schedule:\n  cron: '0 1 * * *'\n  timeZone: Europe/Atlantis"))
    assert "spec.schedule.timeZone: unknown time zone 'Europe/Atlantis'" in text


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ("executor:\n  memory: -4g", "spec.executor.memory", "invalid memory size '-4g'"),
        ("executor:\n  cores: -1", "spec.executor.cores", "greater than or equal to 1"),
        ("executor:\n  instances: 0", "spec.executor.instances", "greater than or equal to 1"),
        ("driver:\n  memory: 64Ti", "spec.driver.memory", "more than 16 TiB"),
        ("executor:\n  cores: 100000", "spec.executor.cores", "less than or equal to 1024"),
        ("executor:\n  instances: 1000000", "spec.executor.instances", "less than or equal to 10000"),
        ("driver:\n  coreRequest: 5000", "spec.driver.coreRequest", "more than 1024 cores"),
        ("driver:\n  coreRequest: '0'", "spec.driver.coreRequest", "CPU '0' must be more than zero"),
        ("driver:\n  memory: 0g", "spec.driver.memory", "memory '0g' must be more than zero"),
        ("executor:\n  gpu: {count: 99}", "spec.executor.gpu.count", "less than or equal to 16"),
        ("priority: 99999999999", "spec.priority", "less than or equal to 1000000"),
    ],
)
def test_negative_and_absurd_resources(write: Write, extra: str, field: str, words: str) -> None:
    text = _only_problem(write("res", extra))
    assert f" {field}: " in text and words in text


@pytest.mark.parametrize("fraction", ["0", "-0.5", "1.5", "0.0001"])
def test_gpu_fraction_outside_zero_one(write: Write, fraction: str) -> None:
    text = _only_problem(write("frac", f"executor:\n  gpu: {{fraction: {fraction}, memory: 4Gi}}"))
    assert "spec.executor.gpu.fraction: GPU fraction" in text


def test_fractional_gpu_needs_memory_and_one_gpu(write: Write) -> None:
    assert "needs the GPU memory" in _only_problem(write("nomem", "executor:\n  gpu: {fraction: 0.5}"))
    text = _only_problem(write("two", "executor:\n  gpu: {fraction: 0.5, count: 2, memory: 1Gi}"))
    assert "spec.executor.gpu.count: a fractional GPU share is a share of ONE GPU" in text


def test_min_instances_above_instances(write: Write) -> None:
    text = _only_problem(write("gang", "executor:\n  instances: 2\n  minInstances: 3"))
    assert text.endswith("spec.executor.minInstances: minInstances (3) is larger than instances (2)")
    assert "maxInstances (1) is smaller" in _only_problem(
        write("gang2", "executor:\n  instances: 2\n  maxInstances: 1")
    )


def test_request_larger_than_any_node(write: Write, cluster: list[Node]) -> None:
    text = _only_problem(write("huge", "executor:\n  cores: 200\n  memory: 8g"), cluster)
    assert "spec.executor: an executor pod needs cpu=200 memory=" in text
    assert "no node of the cluster can hold it (4 insufficient cpu, 4 untolerated taint)" in text
    text = _only_problem(write("gpumem", "executor:\n  gpu: {fraction: 0.5, memory: 100Gi}"), cluster)
    assert "insufficient GPU memory" in text
    text = _only_problem(write("model", "executor:\n  gpu: {count: 1, model: H100}"), cluster)
    assert "(8 GPU model mismatch)" in text  # CPU nodes have no model either


def test_gang_minimum_larger_than_the_cluster(write: Write, cluster: list[Node]) -> None:
    text = _only_problem(write("wide", "executor:\n  instances: 40\n  gpu: {count: 1}"), cluster)
    assert "spec.executor.instances: the gang minimum needs 40 executor pods" in text
    assert "hold at most 16" in text  # 2 x 8 A100 (the T4 pool is a bigk sharing pool: shares only)


def test_selector_that_matches_nothing(write: Write, cluster: list[Node]) -> None:
    result = load_specs([write("sel", "nodeSelector: {bigk.io/pool: gpu-h100}")], cluster=cluster)
    assert [p.field for p in result.problems] == ["spec.driver", "spec.executor"]
    assert all("(8 node selector mismatch)" in p.message for p in result.problems)


def test_gpu_pods_tolerate_gpu_taints_automatically(write: Write, cluster: list[Node]) -> None:
    path = write("gpu", "executor:\n  gpu: {count: 8}")
    assert load_specs([path], cluster=cluster).problems == []


def test_missing_required_field_points_at_parent(write: Write, tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    path.write_text("apiVersion: bigk.io/v1\nkind: SparkJob\nmetadata: {name: m}\nspec:\n  type: Python\n")
    assert (
        _only_problem(path) == f"{path}:4:1: spec.mainApplicationFile: required field 'mainApplicationFile' is missing"
    )


def test_reserved_spark_settings_are_refused(write: Write) -> None:
    text = _only_problem(write("res", "sparkConf:\n  spark.kubernetes.scheduler.name: default-scheduler"))
    assert "spec.sparkConf.spark.kubernetes.scheduler.name: bigk sets" in text


def test_scala_needs_main_class_and_rapids_needs_gpus(write: Write) -> None:
    path = write("scala", "")
    path.write_text(path.read_text().replace("type: Python", "type: Scala"))
    assert "spec.mainClass: a Scala application needs mainClass" in _only_problem(path)
    assert "RAPIDS runs on GPU executors" in _only_problem(write("rapids", "rapids: {}"))


def test_names_and_labels_must_be_kubernetes_names(write: Write) -> None:
    path = write("x", "")
    path.write_text(path.read_text().replace("name: x", "name: Bad_Name"))
    assert "metadata.name: 'Bad_Name' is not a valid name" in _only_problem(path)
    text = _only_problem(write("lbl", "executor:\n  labels: {'bad key!': x}"))
    assert "spec.executor.labels.bad key!:" in text


def test_wrong_api_version_or_kind(tmp_path: Path) -> None:
    path = tmp_path / "v2.yaml"
    path.write_text("apiVersion: bigk.io/v2\nkind: SparkJob\nmetadata: {name: a}\nspec: {}\n")
    assert ":1:13: apiVersion: unsupported document bigk.io/v2/SparkJob" in _only_problem(path)


def test_one_broken_file_keeps_the_others(write: Write) -> None:
    good = write("good")
    bad = write("bad", "executor:\n  instances: many")
    result = load_specs([good.parent])
    assert list(result.jobs) == ["good"]
    assert result.failed_files == {bad}
    assert result.problems[0].field == "spec.executor.instances"


def test_a_file_with_one_bad_document_contributes_no_jobs(tmp_path: Path, write: Write) -> None:
    one = write("one").read_text()
    path = tmp_path / "multi.yaml"
    path.write_text(one + "---\n" + one.replace("name: one", "name: two").replace("type: Python", "type: Go"))
    result = load_specs([path])
    assert result.jobs == {} and result.failed_files == {path}
    assert result.problems[0].line == 14  # the second document's `type:` line


def test_folders_recurse_and_skip_hidden_and_non_yaml(tmp_path: Path, write: Write) -> None:
    write("top")
    (tmp_path / "team" / ".git").mkdir(parents=True)
    write("nested", file="team/nested.yml")
    (tmp_path / "team" / ".git" / "x.yaml").write_text("garbage: [")
    (tmp_path / "README.md").write_text("not yaml: [")
    assert sorted(load_specs([tmp_path]).jobs) == ["nested", "top"]


def test_missing_path_is_a_problem(tmp_path: Path) -> None:
    result = load_specs([tmp_path / "nope"])
    assert str(result.problems[0]).endswith("nope:0:0: (file): no such file or folder")


def test_yaml_scalars_become_spark_strings(write: Write) -> None:
    path = write("conf", "sparkConf:\n  spark.sql.adaptive.enabled: true\n  spark.sql.shuffle.partitions: 8")
    conf = load_specs([path]).jobs["conf"].spec.spec.sparkConf
    assert conf == {"spark.sql.adaptive.enabled": "true", "spark.sql.shuffle.partitions": "8"}


def test_misspelt_top_level_keys_are_suggested(tmp_path: Path) -> None:
    path = tmp_path / "top.yaml"
    path.write_text("kind: SparkJob\nmetadata: {name: a}\napiversion: bigk.io/v1\nspec: {}\n")
    assert _only_problem(path).endswith(
        "top.yaml:3:1: apiVersion: required field 'apiVersion' is missing; "
        "did you mean 'apiVersion' instead of 'apiversion'?"
    )
    path.write_text(
        "apiVersion: bigk.io/v1\nkind: SparkJob\nmetdata: {name: a}\nspec: {type: R, mainApplicationFile: a.R}\n"
    )
    result = load_specs([path])
    assert "3:1: metdata: unknown field 'metdata'; did you mean 'metadata'?" in str(result.problems[-1])


def test_cordoned_and_not_ready_nodes_still_count_for_never_fits(write: Write, cluster: list[Node]) -> None:
    """The node lifecycle controller taints a cordoned or not-ready node; that says nothing about what it can
    ever hold, so a job that fits the cluster is no 'never fits' while every node is cordoned."""
    from dataclasses import replace

    from bigk.cluster.model import Taint

    now_down = [replace(n, taints=[*n.taints, Taint("node.kubernetes.io/unschedulable"),
                                   Taint("node.kubernetes.io/not-ready", effect="NoExecute")]) for n in cluster]
    path = write("small", "executor:\n  instances: 1")
    assert load_specs([path], cluster=now_down).problems == []
    fenced = [replace(n, taints=[*n.taints, Taint("dedicated", "infra")]) for n in cluster]
    fenced_off = load_specs([path], cluster=fenced).problems
    assert [p.field for p in fenced_off] == ["spec.driver", "spec.executor"]
    assert all("(8 untolerated taint)" in p.message for p in fenced_off)
