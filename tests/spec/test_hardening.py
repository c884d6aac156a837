"""Any bytes at all give problems with positions, never a traceback or a hang."""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bigk.spec.loader import load_file, load_specs
from bigk.spec.yamlsafe import MAX_BYTES, YamlProblem, load_bytes

NASTY = Path(__file__).parents[1] / "fixtures" / "nasty"
NASTY_FILES = sorted(NASTY.glob("*.yaml"))
GOOD = """apiVersion: bigk.io/v1
kind: SparkJob
metadata: {name: good-job}
spec: {type: Python, mainApplicationFile: app.py}
"""


def test_corpus_is_there() -> None:
    assert len(NASTY_FILES) >= 20


@pytest.mark.parametrize("path", NASTY_FILES, ids=lambda p: p.name)
def test_each_nasty_file_gives_one_line_problems_quickly(path: Path) -> None:
    started = time.monotonic()
    result = load_specs([path])
    assert time.monotonic() - started < 5
    assert result.jobs == {}
    assert result.problems, f"{path.name} was accepted"
    assert result.failed_files == {path}
    for problem in result.problems:
        text = str(problem)
        assert text.startswith(f"{path}:")
        assert "\n" not in text
        assert "Traceback" not in text


def test_nasty_files_do_not_stop_good_files(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    result = load_specs([NASTY, good])
    assert list(result.jobs) == ["good-job"]
    assert len(result.failed_files) == len(NASTY_FILES)


def test_huge_file_is_refused_without_parsing(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    huge.write_text("a: " + "x" * (MAX_BYTES + 10) + "\n")
    result = load_specs([huge])
    assert "limited to" in result.problems[0].message


def test_fifo_is_refused_not_read(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    result = load_specs([fifo])  # would block forever if opened for reading
    assert "not a regular file" in result.problems[0].message


def test_bom_and_crlf_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode())
    assert list(load_specs([path]).jobs) == ["good-job"]


def test_merge_keys_and_small_aliases_work(tmp_path: Path) -> None:
    path = tmp_path / "anchors.yaml"
    path.write_text(
        "apiVersion: bigk.io/v1\nkind: SparkJob\nmetadata: {name: anchored}\n"
        "spec:\n  type: Python\n  mainApplicationFile: a.py\n"
        "  driver: &pod {cores: 2, memory: 4g}\n  executor: {<<: *pod, cores: 3, instances: 3}\n"
    )
    job = load_specs([path]).jobs["anchored"].spec
    assert (job.spec.driver.cores, job.spec.executor.memory, job.spec.executor.cores) == (2, "4g", 3)


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    try:
        load_bytes(data)
    except YamlProblem as exc:
        assert exc.message
        assert exc.line >= 0 and exc.col >= 0


TOKENS = [*"abc:-[]{}&*!|>'\"#%@`?,.09 \n\t\\", "<<", "---", "...", "\u00e9", "&a ", "*a", "!!str ", "? ", "- "]
YAMLISH = st.lists(st.sampled_from(TOKENS), max_size=200).map("".join)


@settings(max_examples=300, deadline=2000)
@given(YAMLISH)
def test_yaml_like_text_never_crashes(text: str) -> None:
    with contextlib.suppress(YamlProblem):
        load_bytes(text.encode())


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=3000)
@given(spec=st.dictionaries(st.sampled_from(["type", "executor", "driver", "schedule", "sparkConf", "x"]), JSONISH))
def test_arbitrary_spec_bodies_give_problems_not_exceptions(
    spec: dict, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import yaml

    path = tmp_path_factory.mktemp("fuzz") / "job.yaml"
    doc = {"apiVersion": "bigk.io/v1", "kind": "SparkJob", "metadata": {"name": "fuzz"}, "spec": spec}
    path.write_text(yaml.safe_dump(doc))
    result = load_file(path)
    assert result.problems or [j.name for j in result.jobs] == ["fuzz"]
    for problem in result.problems:
        assert problem.line >= 1


@pytest.mark.parametrize(("text", "problem"), [
    ("---\n{}\n" * 201, "more than 200 documents in one file"),
    ("a: &x 1\nb: [" + ", ".join(["*x"] * 201) + "]\n", "more than 200 aliases (*name) in one file"),
])
def test_counted_limits_refuse_one_over_and_pass_the_limit_itself(text: str, problem: str) -> None:
    with pytest.raises(YamlProblem, match=re.escape(problem)):
        load_bytes(text.encode())
    at_limit = text.replace("---\n{}\n", "", 1) if "documents" in problem else text.replace(", *x]", "]", 1)
    load_bytes(at_limit.encode())  # 200 of them are allowed
