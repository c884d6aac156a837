"""Start-time estimates corrected by the history of their own errors.

A forecast (`bigk.scheduler.forecast`) knows durations only as a spread of past
runs, and does not foresee work that arrives after it: on a busy cluster its
waits come out systematically short, and its range (the duration spread
propagated along the chain of blockers) too narrow. Whoever makes estimates
also sees what then happens: `record` keeps, for each run that started, the
wait the forecast predicted (its p50, from the moment of the estimate) and the
wait that followed. `adjust` then reads a new estimate through that history:
among the recorded estimates of a similar horizon (the `neighbours` nearest in
log(predicted wait + `scale_s`)), the ratio

    (actual wait + scale_s) / (predicted wait + scale_s)

at its p10, p50 and p90 gives the range and the point, so the range widens
with the horizon as far as the errors at that horizon did, and no further.
`scale_s` (a cycle or two) keeps a "starts now" estimate from dividing by zero
and lets a near-certain short wait keep a narrow range. The forecast's own
range is kept where it is wider (it carries what this estimate knows about
its blockers that a horizon-only history does not).

Until `min_records` runs have started (with estimates of any horizon), the
forecast is returned as it is. Pure: no clocks, no I/O; the caller passes
`now` and decides what to record.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

QUANTILES = (10.0, 50.0, 90.0)


@dataclass(frozen=True)
class Adjusted:
    """An estimate after calibration (absolute times); `calibrated` False: too little history, as forecast."""

    eta: float
    low: float
    high: float
    calibrated: bool
    neighbours: int = 0


class Calibrator:
    """Keeps (predicted wait, actual wait) of the last `window` started runs and corrects new estimates."""

    def __init__(self, *, window: int = 2000, neighbours: int = 60, min_records: int = 30,
                 scale_s: float = 2.0) -> None:
        self.window = window
        self.neighbours = neighbours
        self.min_records = min_records
        self.scale_s = scale_s
        self._records: deque[tuple[float, float]] = deque(maxlen=window)  # (log predicted, log ratio)
        self._cache: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self._records)

    def record(self, predicted_wait_s: float, actual_wait_s: float) -> None:
        """A run started `actual_wait_s` after an estimate that said `predicted_wait_s` (its p50)."""
        s = self.scale_s
        p, a = max(0.0, predicted_wait_s), max(0.0, actual_wait_s)
        self._records.append((math.log(p + s), math.log((a + s) / (p + s))))
        self._cache = None

    def ratios(self, predicted_wait_s: float) -> tuple[float, float, float, int] | None:
        """p10, p50, p90 of the wait ratio among recorded estimates of a similar horizon (None: too few)."""
        if len(self._records) < self.min_records:
            return None
        if self._cache is None:
            arr = np.array(self._records, dtype=float)
            self._cache = (arr[:, 0], arr[:, 1])
        keys, logr = self._cache
        k = min(self.neighbours, len(keys))
        here = math.log(max(0.0, predicted_wait_s) + self.scale_s)
        near = np.argpartition(np.abs(keys - here), k - 1)[:k]
        lo, mid, hi = np.percentile(logr[near], QUANTILES)
        return math.exp(lo), math.exp(mid), math.exp(hi), k

    def adjust(self, now: float, eta: float, low: float | None, high: float | None) -> Adjusted:
        """The estimate `eta` (range `low`..`high`) made at `now`, corrected by the recorded errors."""
        lo_in = eta if low is None else low
        hi_in = eta if high is None else high
        wait = max(0.0, eta - now)
        got = self.ratios(wait)
        if got is None:
            return Adjusted(eta, lo_in, hi_in, False)
        r_lo, r_mid, r_hi, k = got
        s = self.scale_s
        base = wait + s

        def at(ratio: float) -> float:
            return now + max(0.0, base * ratio - s)

        mid = at(r_mid)
        # The forecast's range, moved with the point, is kept where it reaches further.
        low_out = min(at(r_lo), mid - max(0.0, eta - lo_in))
        high_out = max(at(r_hi), mid + max(0.0, hi_in - eta))
        return Adjusted(mid, max(now, min(low_out, mid)), max(high_out, mid), True, k)
