"""`kind: Queue` documents: names, the tree's checks, jobs against the tree, FILE:LINE:COL problems, schema."""

from __future__ import annotations

import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

from bigk.spec.loader import load_specs
from bigk.spec.queues import QueueNameError, queue_json_schema, queue_name

ROOT = Path(__file__).resolve().parents[2]


def _queue(name: str, body: str = "") -> str:
    spec = "spec:\n" + textwrap.indent(textwrap.dedent(body), "  ") if body else ""
    return f"apiVersion: bigk.io/v1\nkind: Queue\nmetadata:\n  name: {name}\n{spec}"


def _job(name: str, queue: str, extra: str = "") -> str:
    return (f"apiVersion: bigk.io/v1\nkind: SparkJob\nmetadata:\n  name: {name}\nspec:\n  type: Python\n"
            f"  image: bigk/spark-apps:0.1\n  mainApplicationFile: local:///opt/app.py\n  queue: {queue}\n{extra}"
            "  executor:\n    cores: 1\n    memory: 1g\n    instances: 1\n")


def _write(tmp_path: Path, **files: str) -> Path:
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    return tmp_path


TREE = "---\n".join([_queue("etl", "weight: 2\nguarantee: {cpu: 8}\n"),
                     _queue("ml", "guarantee: {gpu: 8, cpu: 16}\nmax: {gpu: 12}\n"),
                     _queue("ml.training", "guarantee: {gpu: 6}\npriority: {default: 20, min: 0, max: 100}\n"),
                     _queue("scoring", "parent: root.ml\nguarantee: {gpu: 2}\n")])


@pytest.mark.parametrize(("written", "name"), [("ml.training", "ml.training"), ("root.ml.training", "ml.training"),
                                               (" ML.Training ", "ml.training"), ("root.default", "default"),
                                               ("a_b-c", "a_b-c")])
def test_queue_names_as_people_write_them(written: str, name: str) -> None:
    assert queue_name(written) == name


@pytest.mark.parametrize("bad", ["root", "", "ml..training", "ml/training", ".ml", "-ml", 7, "a." * 9 + "a"])
def test_bad_queue_names_say_why(bad: object) -> None:
    with pytest.raises(QueueNameError):
        queue_name(bad)


def test_a_tree_loads_and_jobs_get_their_queue_s_default_priority(tmp_path: Path) -> None:
    specs = _write(tmp_path, queues=TREE, train=_job("train", "root.ml.training"),
                   fixed=_job("fixed", "ml.training", "  priority: 7\n"), load=_job("load", "etl"))
    r = load_specs([specs])
    assert [str(p) for p in r.problems] == []
    assert sorted(r.queues.queues) == ["etl", "ml", "ml.scoring", "ml.training"]
    core = r.queues.to_core()
    assert core["ml.scoring"].parent == "ml" and core["ml"].maximum == {"gpu": 12000}
    assert core["ml"].guaranteed == {"gpu": 8000, "cpu": 16000} and core["etl"].weight == 2
    assert r.jobs["train"].spec.spec.queue == "ml.training" and r.jobs["train"].spec.spec.priority == 20
    assert r.jobs["fixed"].spec.spec.priority == 7  # set in the job: kept
    assert r.jobs["load"].spec.spec.priority == 0


def test_a_job_naming_an_unknown_queue_lists_the_known_ones(tmp_path: Path) -> None:
    specs = _write(tmp_path, queues=TREE, bad=_job("bad", "ml.trainig"))
    r = load_specs([specs])
    [p] = r.problems
    assert str(p) == (f"{specs / 'bad.yaml'}:9:10: spec.queue: unknown queue 'ml.trainig'; known queues: etl, "
                      "ml.scoring, ml.training")
    assert "bad" not in r.jobs


def test_jobs_go_into_leaf_queues_within_the_queue_s_priority_range(tmp_path: Path) -> None:
    specs = _write(tmp_path, queues=TREE, parent=_job("parent", "ml"),
                   loud=_job("loud", "ml.training", "  priority: 500\n"))
    msgs = sorted(f"{p.field}: {p.message}" for p in load_specs([specs]).problems)
    assert msgs == ["spec.priority: priority 500 is outside queue ml.training's range 0..100",
                    "spec.queue: queue 'ml' has child queues; put the job in one of them: ml.scoring, ml.training"]


@pytest.mark.parametrize(("extra", "expected"), [
    (_queue("ml.extra", "guarantee: {gpu: 1}\n"),
     "spec.guarantee.gpu: the guarantees of ml's children (ml.extra, ml.scoring, ml.training) add up to more gpu "
     "than ml itself is guaranteed (9 GPUs > 8 GPUs)"),
    (_queue("lab.a"), "metadata.name: parent queue 'lab' is not declared (declared: etl, lab.a, ml, ml.scoring, "
                      "ml.training)"),
    (_queue("etl"), "metadata.name: duplicate queue 'etl': already declared at"),
])
def test_the_tree_is_checked_as_a_whole_and_kept_from_jobs_when_broken(tmp_path: Path, extra: str,
                                                                      expected: str) -> None:
    specs = _write(tmp_path, queues=TREE, more=extra, job=_job("job", "nowhere"))
    r = load_specs([specs])
    assert r.queues_failed and not r.queues
    assert any(f"{p.field}: {p.message}".startswith(expected) for p in r.problems), [str(p) for p in r.problems]
    assert all(p.file.name in {"more.yaml", "queues.yaml"} and p.line > 0 for p in r.problems)
    assert "job" in r.jobs  # the tree is unknown: jobs are not judged against it


@pytest.mark.parametrize(("body", "field", "message"), [
    ("wieght: 2\n", "spec.wieght", "unknown field 'wieght'; did you mean 'weight'?"),
    ("guarantee: {gpu: 4}\nmax: {gpu: 2}\n", "spec", "guarantee.gpu is above max.gpu"),
    ("guarantee: {memory: lots}\n", "spec.guarantee.memory", "invalid memory size 'lots'"),
    ("priority: {default: 5, max: 3}\n", "spec.priority", "default (5) is outside min..max"),
    ("weight: 0\n", "spec.weight", "greater than 0"),
])
def test_bad_queue_fields_name_file_line_column_and_field(tmp_path: Path, body: str, field: str,
                                                          message: str) -> None:
    specs = _write(tmp_path, q=_queue("q", body))
    r = load_specs([specs])
    [p] = r.problems
    assert p.field == field and message in p.message and p.line >= 5 and p.col >= 1, str(p)
    assert str(p).startswith(f"{specs / 'q.yaml'}:{p.line}:{p.col}: {field}: ")
    assert r.queues_failed


def test_queues_from_one_file_win_over_queues_in_the_specs(tmp_path: Path) -> None:
    specs = _write(tmp_path / "specs" if (tmp_path / "specs").mkdir() is None else tmp_path, queues=TREE,
                   job=_job("job", "team"))
    helm = tmp_path / "helm-queues.yaml"
    helm.write_text(_queue("team"))
    r = load_specs([specs], queues_from=[helm])
    assert [str(p) for p in r.problems] == [] and sorted(r.queues.queues) == ["team"]
    assert any("queue etl ignored: this install takes its queues from --queues" in str(w) for w in r.warnings)


def test_example_queues_validate_against_the_json_schema() -> None:
    schema = queue_json_schema()
    docs = list(yaml.safe_load_all((ROOT / "jobspecs" / "queues.yaml").read_text()))
    assert len(docs) == 5
    for doc in docs:
        jsonschema.validate(doc, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**docs[0], "spec": {"weigth": 1}}, schema)
    r = load_specs([ROOT / "jobspecs"])
    assert sorted(r.queues.queues) == ["adhoc", "etl", "ml", "ml.scoring", "ml.training"] and not r.problems
