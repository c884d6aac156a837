"""The kubectl-style output helpers: -o jsonpath/custom-columns/name, --sort-by, -l, kind names, List and RFC 3339."""

from __future__ import annotations

import json

import pytest

from bigk.cli import ops_cmds  # noqa: F401  (registers the kinds)
from bigk.cli import output as out
from bigk.errors import UsageError

RUNS = [
    {"id": "b2", "job": "etl", "queue": "etl", "state": "Running", "trigger": "manual", "namespace": "team-a",
     "created_at": 1_800_000_000.5, "finished_at": None, "pods": [{"name": "p1", "at": 1_800_000_001.0}]},
    {"id": "a1", "job": "score", "queue": "ml.scoring", "state": "Failed", "trigger": "schedule",
     "namespace": "default", "created_at": 1_799_999_000.0, "finished_at": 1_799_999_100.0, "pods": []},
]


def test_kind_names_singular_plural_short_and_kind_slash_name() -> None:
    runs = out.find_kind("runs")
    assert out.find_kind("run") is runs and out.find_kind("r") is runs and out.find_kind("Run") is runs
    assert out.find_kind("no").plural == "nodes" and out.find_kind("gpu").plural == "gpus"
    assert out.split_kind_name("run/abc", None) == (runs, "abc")
    assert out.split_kind_name("runs", "abc") == (runs, "abc")
    with pytest.raises(UsageError, match="unknown kind 'pods'; known: jobs"):
        out.find_kind("pods")
    with pytest.raises(UsageError, match="not both"):
        out.split_kind_name("run/abc", "def")


def test_json_is_a_list_with_rfc3339_times() -> None:
    data = out.as_list(out.find_kind("runs"), RUNS)
    assert data["kind"] == "List" and data["apiVersion"] == "bigk.io/v1"
    first = data["items"][0]
    assert first["kind"] == "Run" and first["created_at"] == "2027-01-15T08:00:00.500Z"
    assert first["finished_at"] is None and first["pods"][0]["at"] == "2027-01-15T08:00:01.000Z"
    assert data["items"][1]["finished_at"] == "2027-01-15T07:45:00.000Z"


def test_jsonpath_like_kubectl() -> None:
    data = out.as_list(out.find_kind("runs"), RUNS)
    assert out.jsonpath("{.items[*].id}", data) == "b2 a1"
    assert out.jsonpath('{range .items[*]}{.id}{"\\t"}{.state}{"\\n"}{end}', data) == "b2\tRunning\na1\tFailed\n"
    assert out.jsonpath("{.items[0].pods[0].name}", data) == "p1"
    assert out.jsonpath(".items[1].job", data) == "score"  # braces may be left out, as kubectl allows
    assert out.jsonpath("total: {.kind}", data) == "total: List"
    with pytest.raises(UsageError, match="without"):
        out.jsonpath("{range .items[*]}{.id}", data)


def test_custom_columns_sort_and_name(capsys: pytest.CaptureFixture[str]) -> None:
    runs = out.find_kind("runs")
    items = out.sort_items(list(RUNS), ".created_at")
    assert [r["id"] for r in items] == ["a1", "b2"]
    assert [r["id"] for r in out.sort_items(list(RUNS), "job")] == ["b2", "a1"]
    with pytest.raises(UsageError, match="no item has that field"):
        out.sort_items(list(RUNS), ".nope")
    out.emit(runs, items, out.parse_output("custom-columns=RUN:.id,STATE:.state,END:.finished_at"))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["RUN", "STATE", "END"]
    assert lines[1].split() == ["a1", "Failed", "2027-01-15T07:45:00.000Z"]
    assert lines[2].split() == ["b2", "Running", "<none>"]
    out.emit(runs, items, out.parse_output("custom-columns=RUN:.id"), headers=False)
    assert capsys.readouterr().out.split() == ["a1", "b2"]
    out.emit(runs, items, out.parse_output("name"))
    assert capsys.readouterr().out.split() == ["run/a1", "run/b2"]
    out.emit(runs, items[:1], out.parse_output("json"), single=True)
    assert json.loads(capsys.readouterr().out)["kind"] == "Run"


def test_output_choices_are_usage_errors() -> None:
    assert out.parse_output("jsonpath={.x}") == out.OutputFormat("jsonpath", "{.x}")
    for bad in ("wide2", "jsonpath=", "go-template={{.x}}"):
        with pytest.raises(UsageError):
            out.parse_output(bad)
    with pytest.raises(UsageError, match="HEADER:.field"):
        out.custom_columns("RUN")


def test_label_selectors() -> None:
    runs = out.find_kind("runs")

    def ids(selector: str) -> list[str]:
        return [r["id"] for r in out.select(RUNS, runs, out.parse_selector(selector))]

    assert ids("job=etl") == ["b2"] and ids("job==etl") == ["b2"]
    assert ids("state!=Failed") == ["b2"]
    assert ids("queue in (etl, ml.scoring)") == ["b2", "a1"]
    assert ids("queue notin (etl),trigger=schedule") == ["a1"]
    assert ids("namespace") == ["b2", "a1"] and ids("!nope") == ["b2", "a1"] and ids("nope") == []
    with pytest.raises(UsageError, match="is not a selector"):
        out.parse_selector("a b=c")
