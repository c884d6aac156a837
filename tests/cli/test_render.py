"""How the CLI renders things people read: ages, the live progress table of `bigk run --wait`."""

from __future__ import annotations

from rich.console import Console

from bigk.cli.ops_cmds import _progress_table, span


def test_spans_read_like_kubectl() -> None:
    assert [span(3.14), span(45), span(150), span(7300), span(200000), span(None)] == \
        ["3.1s", "45s", "2m", "2h", "2d", "-"]


def test_progress_shows_driver_first_and_executors_waiting_for_a_node() -> None:
    run = {"id": "abc", "job": "etl", "state": "Submitted", "pods": [
        {"name": "etl-abc-exec-1", "role": "executor", "node": "", "phase": "Pending"},
        {"name": "etl-abc-driver", "role": "driver", "node": "cpu-0", "phase": "Running"}]}
    console = Console(record=True, width=120, force_terminal=True)
    console.print(_progress_table(run, "gang needs 1 driver + 2 executors; 1 fits", tty=True))
    text = console.export_text()
    lines = [line for line in text.splitlines() if "etl-abc" in line]
    assert "driver" in lines[0] and "cpu-0" in lines[0] and "Running" in lines[0]
    assert "(waiting for bigk)" in lines[1]
    assert "run abc of etl: Submitted" in text and "1 fits" in text  # why it waits, while it waits
