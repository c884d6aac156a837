"""History statistics of a job: success rate, duration and queue-wait percentiles (pandas).

Computed from the history table, which keeps every finished run even after the
runs table was pruned by the job's history limits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd


def _pct(series: pd.Series, q: float) -> float | None:
    clean = series.dropna()
    if clean.empty:
        return None
    value = float(clean.quantile(q))
    return None if math.isnan(value) else round(value, 3)


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Success rate and p50/p95 of duration (driver start to end) and queue wait (submit to start)."""
    if not rows:
        return {"runs": 0, "succeeded": 0, "failed": 0, "success_rate": None, "duration_p50_s": None,
                "duration_p95_s": None, "queue_wait_p50_s": None, "queue_wait_p95_s": None, "by_state": {}}
    df = pd.DataFrame(list(rows))
    started = df["running_at"].astype("float64")
    submitted = df["submitted_at"].astype("float64")
    duration = df["finished_at"].astype("float64") - started
    wait = started - submitted
    ok = int((df["state"] == "Succeeded").sum())
    return {
        "runs": len(df),
        "succeeded": ok,
        "failed": len(df) - ok,
        "success_rate": round(ok / len(df), 4),
        "duration_p50_s": _pct(duration, 0.5),
        "duration_p95_s": _pct(duration, 0.95),
        "queue_wait_p50_s": _pct(wait, 0.5),
        "queue_wait_p95_s": _pct(wait, 0.95),
        "by_state": {str(k): int(v) for k, v in df["state"].value_counts().sort_index().items()},
    }
