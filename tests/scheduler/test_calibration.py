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


def test_waits_that_ran_three_times_longer_widen_the_range_and_leave_the_point() -> None:
    cal = Calibrator(min_records=10, scale_s=0.0 + 1.0)
    rng = np.random.default_rng(1)
    for _ in range(200):
        predicted = float(rng.uniform(20, 60))
        cal.record(predicted, (predicted + 1.0) * float(rng.uniform(2.0, 4.0)) - 1.0)
    got = cal.adjust(0.0, 40.0, 35.0, 45.0)
    assert got.calibrated and got.eta == 40.0 and got.low == 35.0  # the point and the near end stay
    assert got.median is not None and 100.0 < got.median < 140.0  # where the ratio's median would put it: ~3x
    assert 140.0 < got.high < 170.0  # p90 of the ratio, ~3.8x


def test_estimates_are_read_through_errors_of_a_similar_horizon() -> None:
    cal = Calibrator(min_records=10, neighbours=20)
    for _ in range(50):
        cal.record(0.0, 0.0)  # "starts now" was right
        cal.record(100.0, 300.0)  # a 100 s wait came out 3x longer
    now = cal.adjust(0.0, 0.0, 0.0, 0.0)
    assert now.calibrated and now.eta == 0.0 and now.high == 0.0
    later = cal.adjust(0.0, 100.0, 90.0, 110.0)
    assert later.eta == 100.0 and 290.0 <= later.high <= 310.0


def test_the_forecast_range_is_kept_where_it_is_wider() -> None:
    cal = Calibrator(min_records=5)
    for _ in range(20):
        cal.record(50.0, 50.0)  # exact so far: the calibrated range alone would be a point
    got = cal.adjust(0.0, 50.0, 20.0, 120.0)
    assert got.eta == 50.0 and got.low == 20.0 and got.high == 120.0


def test_estimates_still_waiting_count_as_at_least_as_long_as_they_have_waited() -> None:
    """Of 50 estimates of 20 s: 10 started early, 10 late (8x), 30 still wait at 5x. Counting only the started
    ones would put the median between; the ones still waiting say most runs wait long."""
    cal = Calibrator(min_records=10, min_neighbours=10)
    for i in range(30):
        cal.open(f"r{i}", 0.0, 20.0)
    early = cal.adjust(10.0, 30.0, 25.0, 35.0)  # at 10 s they have waited less than estimated: nothing known
    assert early.calibrated and early.eta == 30.0 and (early.low, early.high) == (25.0, 35.0)
    for _ in range(10):
        cal.record(20.0, 0.5 * 22.0 - 2.0)
        cal.record(20.0, 8.0 * 22.0 - 2.0)
    now = 5.0 * 22.0 - 2.0  # the open ones have waited 5x their estimate
    got = cal.adjust(now, now + 20.0, now + 15.0, now + 25.0)
    assert got.calibrated and got.median is not None and abs(got.median - (now + 8.0 * 22.0 - 2.0)) < 1e-6  # 8x
    assert abs(got.low - (now + 0.5 * 22.0 - 2.0)) < 1e-6 and abs(got.high - (now + 8.0 * 22.0 - 2.0)) < 1e-6
    for i in range(30):
        cal.close(f"r{i}", 400.0 if i % 2 else None)  # half started at 400 s, half never did
    assert len(cal) == 35


def test_the_table_is_built_once_per_now_and_again_after_every_change() -> None:
    """A board adjusts thousands of estimates at one `now`: the records are read into one table for all of them,
    and any record, open or close in between is seen by the next call (as a calibrator built afresh sees it)."""

    def history(cal: Calibrator) -> None:
        for i in range(80):
            cal.record(10.0 + i, 12.0 + 2 * i)
        for i in range(40):
            cal.open(f"r{i}", 100.0, 30.0 + i)

    kept = Calibrator()
    history(kept)
    first = kept.ratios(50.0, now=160.0)
    table = kept._rows(160.0)
    assert kept.ratios(60.0, now=160.0) is not None and kept._rows(160.0) is table  # the same table, not rebuilt
    steps = [lambda c: [c.record(50.0, 2000.0) for _ in range(40)], lambda c: c.open("late", 150.0, 45.0),
             lambda c: c.close("r3", 155.0), lambda c: c.close("r4", None)]
    for step in steps:
        step(kept)
        fresh = Calibrator()
        history(fresh)
        for done in steps[: steps.index(step) + 1]:
            done(fresh)
        assert kept.ratios(50.0, now=160.0) == fresh.ratios(50.0, now=160.0)
    assert kept.ratios(50.0, now=160.0) != first  # the changes moved it: the comparison above could fail
    assert kept.ratios(50.0, now=900.0) == fresh.ratios(50.0, now=900.0)  # another now: the open waits grew
