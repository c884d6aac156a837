"""`bigk get problems` says which stored version of a broken file is being served."""

from __future__ import annotations

import pytest

from bigk.cli.ops_cmds import _show_problems


def test_kept_versions_are_printed(capsys: pytest.CaptureFixture[str]) -> None:
    _show_problems({"problems": ["/s/a.yaml:9:3: spec.executorz: unknown field"], "kept_jobs": ["a"],
                    "kept_versions": [{"file": "/s/a.yaml", "sha256": "0123456789abcdef" * 4, "stored_at": 0.0,
                                       "restored": True}]})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "/s/a.yaml:9:3: spec.executorz: unknown field"
    assert out[1] == "kept at their last good version: a"
    assert out[2] == ("  /s/a.yaml: serving sha256 0123456789ab stored 1970-01-01T00:00:00Z "
                      "(restored from the state database after a restart)")
