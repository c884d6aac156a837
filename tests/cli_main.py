"""Run the `bigk` console entry point in this process, as a user's shell would, for CLI tests."""

from __future__ import annotations

import sys

import pytest

from bigk.cli.main import main


def run_main(args: tuple[str, ...], monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`bigk ARGS`: its exit code, stdout and stderr (the environment is the caller's to set)."""
    monkeypatch.setattr(sys, "argv", ["bigk", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err
