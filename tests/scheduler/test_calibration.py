"""Estimates corrected by the history of their own errors (bigk.scheduler.calibration)."""

from __future__ import annotations

import numpy as np

from bigk.scheduler.calibration import Calibrator


def test_too_little_history_leaves_the_forecast_as_it_is() -> None:
    cal = Calibrator(min_records=10)
    for _ in range(9):
        cal.record(10.0, 30.0)
    got = cal.adjust(1000.0, 1010.0, 1005.0, 1020.0)
    assert not got.calibrated and (got.eta, got.low, got.high) == (1010.0, 1005.0, 1020.0)


def test_waits_that_ran_three_times_longer_move_the_estimate_and_widen_its_range() -> None:
    cal = Calibrator(min_records=10, scale_s=0.0 + 1.0)
    rng = np.random.default_rng(1)
    for _ in range(200):
        predicted = float(rng.uniform(20, 60))
        cal.record(predicted, (predicted + 1.0) * float(rng.uniform(2.0, 4.0)) - 1.0)
    got = cal.adjust(0.0, 40.0, 35.0, 45.0)
    assert got.calibrated
    assert 100.0 < got.eta < 140.0  # about 3x the predicted wait
    assert got.low < 100.0 and got.high > 140.0  # p10..p90 of the ratio, 2.2x..3.8x
    assert got.low <= got.eta <= got.high


def test_estimates_are_read_through_errors_of_a_similar_horizon() -> None:
    cal = Calibrator(min_records=10, neighbours=20)
    for _ in range(50):
        cal.record(0.0, 0.0)  # "starts now" was right
        cal.record(100.0, 300.0)  # a 100 s wait came out 3x longer
    now = cal.adjust(0.0, 0.0, 0.0, 0.0)
    assert now.calibrated and now.eta == 0.0 and now.high == 0.0
    later = cal.adjust(0.0, 100.0, 90.0, 110.0)
    assert 290.0 <= later.eta <= 310.0


def test_the_forecast_range_is_kept_where_it_is_wider() -> None:
    cal = Calibrator(min_records=5)
    for _ in range(20):
        cal.record(50.0, 50.0)  # exact so far: the calibrated range alone would be a point
    got = cal.adjust(0.0, 50.0, 20.0, 120.0)
    assert got.eta == 50.0 and got.low == 20.0 and got.high == 120.0
