"""Start-time estimates corrected by the history of their own errors.

A forecast (`bigk.scheduler.forecast`) knows durations only as a spread of past
runs, and does not foresee work that arrives after it: on a busy cluster its
waits come out systematically short, and its range (the duration spread
propagated along the chain of blockers) too narrow. Whoever makes estimates
also sees what then happens: `record` keeps, for each run that started, the
wait the forecast predicted (its p50, from the moment of the estimate) and the
wait that followed. `adjust` then reads a new estimate through that history:
among the recorded estimates of a similar horizon (the `neighbours` nearest in
log(predicted wait + `scale_s`), all within a factor `band_factor`, and at least
`min_neighbours` of them), the ratio

    (actual wait + scale_s) / (predicted wait + scale_s)

at its p10 and p90 widens the range (never narrows it; the point stays the
forecast's), so the range widens with the horizon as far as the errors at that
horizon did, and no further.
Estimates whose runs are still waiting count as censored observations (their
ratio is at least what they have waited so far), read with Kaplan-Meier: a line
of long waits widens estimates while it forms. `scale_s` (a cycle or two) keeps
a "starts now" estimate from dividing by zero and lets a near-certain short wait keep a narrow range. The forecast's own
range is kept where it is wider (it carries what this estimate knows about
its blockers that a horizon-only history does not). Moving the point by the
ratio's median too was tried and made the replays' errors larger.

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
    median: float | None = None  # where the ratio's median would put the start (not applied: see `adjust`)


class Calibrator:
    """Keeps (predicted wait, actual wait) of the last `window` estimates and corrects new ones.

    An estimate whose run has not started yet counts too (`open`/`close`): its ratio is not known, but it is
    at least what the time waited so far makes it (a censored observation). The ratio's quantiles are then
    read from a Kaplan-Meier curve over the neighbours, known and open alike, so a line of long waits widens
    the estimates while it forms, not only once its first runs have started.
    """

    def __init__(self, *, window: int = 2000, neighbours: int = 60, min_records: int = 30,
                 min_neighbours: int = 15, band_factor: float = 2.0, scale_s: float = 2.0) -> None:
        self.window = window
        self.neighbours = neighbours
        self.min_records = min_records
        self.min_neighbours = min_neighbours
        self.band = math.log(band_factor)
        self.scale_s = scale_s
        self._records: deque[tuple[float, float]] = deque(maxlen=window)  # (log predicted, log ratio)
        self._open: dict[str, tuple[float, float]] = {}  # key -> (made at, predicted wait), not started yet
        self._version = 0  # bumped by every change of the two above: the table below is then built again
        self._table: tuple[tuple[int, float | None], np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self._records) + len(self._open)

    def open(self, key: str, at: float, predicted_wait_s: float) -> None:
        """An estimate made at `at` whose run has not started yet (the first estimate of `key` counts)."""
        if key not in self._open:
            self._version += 1
            self._open[key] = (at, max(0.0, predicted_wait_s))
            while len(self._open) > self.window:
                del self._open[next(iter(self._open))]

    def close(self, key: str, started_at: float | None) -> None:
        """The run of an open estimate started at `started_at` (None: it ended without starting)."""
        got = self._open.pop(key, None)
        if got is not None:
            self._version += 1
        if got is not None and started_at is not None:
            at, predicted = got
            self.record(predicted, started_at - at)

    def record(self, predicted_wait_s: float, actual_wait_s: float) -> None:
        """A run started `actual_wait_s` after an estimate that said `predicted_wait_s` (its p50)."""
        s = self.scale_s
        p, a = max(0.0, predicted_wait_s), max(0.0, actual_wait_s)
        self._version += 1
        self._records.append((math.log(p + s), math.log((a + s) / (p + s))))

    def _rows(self, now: float | None) -> np.ndarray:
        """(log predicted, log ratio, observed) of every record and open estimate as of `now`: built once per
        `now` and change (a board adjusts thousands of estimates at one `now`; each would build it again)."""
        key = (self._version, now)
        if self._table is None or self._table[0] != key:
            s = self.scale_s
            rows = [(k, r, 1.0) for k, r in self._records]
            if now is not None:
                rows += [(math.log(p + s), math.log((max(0.0, now - at) + s) / (p + s)), 0.0)
                         for at, p in self._open.values()]
            self._table = (key, np.array(rows, dtype=float).reshape(-1, 3))
        return self._table[1]

    def ratios(self, predicted_wait_s: float, now: float | None = None) -> tuple[float, float, float, int] | None:
        """p10, p50, p90 of the wait ratio among estimates of a similar horizon (None: too few); open estimates
        (as of `now`) count as lasting at least as long as they have."""
        s = self.scale_s
        arr = self._rows(now)
        if len(arr) < self.min_records:
            return None
        here = math.log(max(0.0, predicted_wait_s) + s)
        dist = np.abs(arr[:, 0] - here)
        close = np.flatnonzero(dist <= self.band)  # a horizon within a factor `band_factor`
        if len(close) < self.min_neighbours:
            return None
        k = min(self.neighbours, len(close))
        near = arr[close[np.argpartition(dist[close], k - 1)[:k]]]
        lo, mid, hi = _km_quantiles(near[:, 1], near[:, 2], [q / 100.0 for q in QUANTILES])
        return math.exp(lo), math.exp(mid), math.exp(hi), k

    def adjust(self, now: float, eta: float, low: float | None, high: float | None) -> Adjusted:
        """The estimate `eta` (range `low`..`high`) made at `now`, corrected by the recorded errors."""
        lo_in = eta if low is None else low
        hi_in = eta if high is None else high
        wait = max(0.0, eta - now)
        got = self.ratios(wait, now)
        if got is None:
            return Adjusted(eta, lo_in, hi_in, False)
        r_lo, r_mid, r_hi, k = got
        s = self.scale_s
        base = wait + s

        def at(ratio: float) -> float:
            return now + max(0.0, base * ratio - s)

        # Widen only: the point stays the forecast's (on the replays, moving it by the ratio's median made the
        # error larger, not smaller); the range reaches as far as the recorded errors at this horizon did.
        low_out = min(lo_in, at(r_lo), eta)
        high_out = max(hi_in, at(r_hi), eta)
        return Adjusted(eta, max(now, low_out), high_out, True, k, at(r_mid))


def _km_quantiles(values: np.ndarray, observed: np.ndarray, qs: list[float]) -> list[float]:
    """Quantiles of log-ratios from values that are observed (1) or lower bounds (0): Kaplan-Meier. A quantile
    the curve does not reach (too much is still open) is unknown: the forecast's own (0)."""
    order = np.lexsort((-observed, values))
    v, d = values[order], observed[order]
    at_risk = len(v) - np.arange(len(v))
    surv = np.cumprod(1.0 - d / at_risk)
    out = []
    for q in qs:
        hits = np.flatnonzero(surv <= 1.0 - q + 1e-12)
        out.append(float(v[hits[0]]) if len(hits) else 0.0)
    return out
