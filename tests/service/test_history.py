"""History statistics an operator reads with `bigk history`."""

from __future__ import annotations

from bigk.service.history import summarize


def _row(state: str, submitted: float, running: float | None, finished: float) -> dict[str, object]:
    return {"state": state, "submitted_at": submitted, "running_at": running, "finished_at": finished}


def test_success_rate_and_percentiles() -> None:
    rows = [_row("Succeeded", 0, 10 * i, 10 * i + 100 * i) for i in range(1, 11)]
    rows.append(_row("Failed", 0, None, 5))  # never started: no duration, no wait
    stats = summarize(rows)
    assert stats["runs"] == 11 and stats["succeeded"] == 10 and stats["failed"] == 1
    assert stats["success_rate"] == round(10 / 11, 4)
    assert stats["duration_p50_s"] == 550.0  # durations 100..1000
    assert stats["duration_p95_s"] == 955.0
    assert stats["queue_wait_p50_s"] == 55.0
    assert stats["by_state"] == {"Failed": 1, "Succeeded": 10}


def test_empty_history_has_no_rates() -> None:
    assert summarize([])["success_rate"] is None
