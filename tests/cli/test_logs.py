"""`--log-format json`: serve, agent and emulator write one JSON object per line with the logfmt line's fields."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bigk.cli.logs import JsonFormatter, parse_pairs
from bigk.cli.main import app, main

ROOT = Path(__file__).resolve().parents[2]


def test_json_lines_carry_the_fields_of_the_logfmt_message() -> None:
    record = logging.LogRecord("bigk.service.lifecycle", logging.INFO, __file__, 1,
                               "event=run_state run=%s job=%s why=%r", ("ab12", "etl", "node lost: gpu-0"), None)
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "INFO" and line["logger"] == "bigk.service.lifecycle"
    assert (line["event"], line["run"], line["job"], line["why"]) == ("run_state", "ab12", "etl", "node lost: gpu-0")
    assert line["ts"].endswith("Z") and "T" in line["ts"] and "msg" not in line
    assert parse_pairs('plain words event=x detail="a \\"b\\""') == ({"event": "x", "detail": 'a "b"'}, "plain words")


def test_every_long_running_command_offers_the_same_log_formats(monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from typer.testing import CliRunner

    for command in ("serve", "agent", "emulator", "sim-nodes"):
        result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert "--log-format" in result.output, command
    monkeypatch.setattr(sys, "argv", ["bigk", "emulator", "--log-format", "xml"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2 and "--log-format 'xml': use logfmt or json" in capsys.readouterr().err


def test_serve_logs_json(tmp_path: Path) -> None:
    env = {**os.environ, "BIGK_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.Popen([sys.executable, "-m", "bigk.cli.main", "serve", "--listen", "127.0.0.1:0",
                             "--log-format", "json", "--no-kickoff", "--cluster", str(ROOT / "jobspecs/cluster.yaml"),
                             "--specs", str(ROOT / "jobspecs")],
                            cwd=tmp_path, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        assert proc.stderr is not None
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "serve_listening" in line:
                break
        proc.send_signal(signal.SIGTERM)
        # Read the rest through the same buffered file: communicate(timeout=...) reads the raw pipe and loses what
        # readline() had already buffered (the human line written right after serve_listening, when it came fast).
        killer = threading.Timer(30, proc.kill)  # a hung shutdown fails the return-code check below
        killer.start()
        try:
            lines += proc.stderr.read().splitlines()
            proc.wait(timeout=5)
        finally:
            killer.cancel()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, (proc.returncode, lines[-3:])
    records = [json.loads(line) for line in lines if line.startswith("{")]
    events = {r.get("event") for r in records}
    assert {"emulator_started", "serve_started", "serve_listening", "serve_stopped"} <= events, lines[-5:]
    others = [line for line in lines if line.strip() and not line.startswith("{")]
    assert others == [next(x for x in lines if x.startswith("bigk serving on"))]  # the one human line
