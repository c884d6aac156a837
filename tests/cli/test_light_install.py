"""A light install (no extras: no pyspark, aiohttp, matplotlib or psycopg) still operates bigk.

`pip install bigk` is for people who only operate it: validate, render, get, logs, ui. The heavy pieces
live in extras (`bigk[spark]`, `[emulator]`, `[plots]`, `[postgres]`, all of them: `[all]`); commands
that need one say which in one line. The extras are hidden here by an import hook in a fresh interpreter.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HIDE = """
import importlib.abc, sys
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("aiohttp", "pyspark", "matplotlib", "psycopg"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Hide())
from bigk.cli.main import main
sys.argv = ["bigk", *sys.argv[1:]]
main()
"""


def bigk_light(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp), "BIGK_STATE_DIR": str(tmp / "state")}
    return subprocess.run([sys.executable, "-c", HIDE, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("args", [["validate", "-q"], ["import", "tests/spec/data/operator-corpus/spark-pi.yaml"]])
def test_operating_commands_work_without_the_extras(args: list[str], tmp_path: Path) -> None:
    done = bigk_light(*args, tmp=tmp_path)
    assert done.returncode == 0, done.stderr


def test_render_without_pyspark_names_spark_submit_from_path(tmp_path: Path) -> None:
    done = bigk_light("render", "gpu-scoring", tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "- spark-submit\n" in done.stdout


@pytest.mark.parametrize(("args", "extra"), [(["run-local", "adhoc-report"], "bigk[spark]"),
                                             (["serve", "--state-dir", "STATE"], "bigk[emulator]")])
def test_commands_needing_an_extra_say_which_in_one_line(args: list[str], extra: str, tmp_path: Path) -> None:
    done = bigk_light(*[a.replace("STATE", str(tmp_path / "s")) for a in args], tmp=tmp_path)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert extra in done.stderr and "Traceback" not in done.stderr, done.stderr
