"""Standard cron semantics: 0 and 7 are Sunday (APScheduler's from_crontab says Monday)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bigk.errors import BigkError
from bigk.spec.cron import to_trigger

UTC = ZoneInfo("UTC")
WED = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday


def _next(expr: str, after: datetime = WED, tz: str = "UTC") -> datetime:
    fire = to_trigger(expr, tz).get_next_fire_time(None, after)
    assert fire is not None
    return fire


def _fires(expr: str, count: int, tz: str = "UTC") -> list[datetime]:
    trigger = to_trigger(expr, tz)
    out: list[datetime] = []
    prev = None
    now = WED
    for _ in range(count):
        fire = trigger.get_next_fire_time(prev, now)
        assert fire is not None
        out.append(fire)
        prev, now = fire, fire.replace(second=1)
    return out


@pytest.mark.parametrize("dow", ["0", "7", "SUN", "sun"])
def test_zero_seven_and_sun_all_mean_sunday(dow: str) -> None:
    fire = _next(f"0 9 * * {dow}")
    assert fire.strftime("%A %H:%M") == "Sunday 09:00"
    assert fire.date().isoformat() == "2026-11-29"


def test_weekday_ranges_and_steps_follow_crontab() -> None:
    assert {f.strftime("%a") for f in _fires("0 0 * * 1-5", 10)} == {"Mon", "Tue", "Wed", "Thu", "Fri"}
    assert {f.strftime("%a") for f in _fires("0 0 * * 5-7", 6)} == {"Fri", "Sat", "Sun"}
    # */2 over 0-6 is Sun, Tue, Thu, Sat in crontab (APScheduler alone would say Mon, Wed, Fri, Sun)
    assert {f.strftime("%a") for f in _fires("0 0 * * */2", 8)} == {"Sun", "Tue", "Thu", "Sat"}
    assert {f.strftime("%a") for f in _fires("0 0 * * MON-FRI", 10)} == {"Mon", "Tue", "Wed", "Thu", "Fri"}


def test_minute_steps_macros_and_month_names() -> None:
    fires = _fires("*/2 * * * *", 3)
    assert [f.minute for f in fires] == [0, 2, 4]  # 12:00 itself counts
    assert _next("@daily") == datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
    assert _next("@hourly", WED.replace(minute=1)) == datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
    assert _next("0 0 1 JAN *") == datetime(2027, 1, 1, tzinfo=UTC)


def test_time_zone_is_honoured() -> None:
    fire = _next("0 2 * * *", tz="Europe/Berlin")
    assert fire.utcoffset() is not None and fire.hour == 2
    assert fire.astimezone(UTC).hour == 1  # CET is UTC+1 in November


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("* * * *", "4 fields"),
        ("61 * * * *", "minute: 61 is out of range 0-59"),
        ("* 24 * * *", "hour: 24 is out of range"),
        ("0 0 * * 8", "day-of-week: 8 is out of range"),
        ("0 0 * * FUNDAY", "not a number or a name"),
        ("0 0 30 2 *", "can never fire"),
        ("0 0 1 * 1", "EITHER"),
        ("5-1 * * * *", "runs backwards"),
        ("*/0 * * * *", "step 0"),
        ("@fortnightly", "unknown cron macro"),
        ("@every 5 minutes", "Go duration"),
        ("@every", "Go duration"),
        ("@every 9000h", "longer than a year"),
        ("0 0 L * *", "not a number"),
        ("", "0 fields"),
    ],
)
def test_bad_expressions_raise_clear_bigk_errors(expr: str, words: str) -> None:
    with pytest.raises(BigkError, match=None) as info:
        to_trigger(expr, "UTC")
    assert words in str(info.value)


@pytest.mark.parametrize("tz", ["Mars/Olympus", "../../etc/passwd", "", "x" * 200])
def test_impossible_time_zones_raise(tz: str) -> None:
    with pytest.raises(BigkError, match="time zone"):
        to_trigger("0 0 * * *", tz)


@pytest.mark.parametrize(("expr", "seconds"), [("@every 3m", 180), ("@every 1h30m", 5400), ("@every 1.5h", 5400),
                                               ("@every 90s", 90), ("@every 500ms", 1), ("@every 2m0.9s", 120)])
def test_every_descriptor_fires_at_that_interval_as_robfig_cron_does(expr: str, seconds: int) -> None:
    """The Spark Operator's own scheduled example says `@every 3m` (robfig/cron: Go durations, whole seconds)."""
    trigger = to_trigger(expr, "UTC")
    start = datetime(2026, 3, 1, 12, 0, 7, tzinfo=UTC)
    first = trigger.get_next_fire_time(None, start)
    second = trigger.get_next_fire_time(first, first)
    assert first is not None and second is not None
    assert (second - first).total_seconds() == seconds
    assert 0 <= (first - start).total_seconds() <= seconds


def test_every_is_anchored_so_a_reload_does_not_move_it() -> None:
    """Cron re-adds a job whenever repr(trigger) changes; an interval counted from 'now' would never fire."""
    assert repr(to_trigger("@every 3m", "UTC")) == repr(to_trigger("@every 3m", "UTC"))
    assert to_trigger("@every 3m", "UTC").get_next_fire_time(None, datetime(2026, 3, 1, 12, 1, tzinfo=UTC)) == (
        datetime(2026, 3, 1, 12, 3, tzinfo=UTC)
    )


def test_question_mark_means_any_day_as_in_robfig_cron() -> None:
    fire = to_trigger("0 6 ? * MON", "UTC").get_next_fire_time(None, datetime(2026, 3, 1, tzinfo=UTC))
    assert fire is not None and fire.weekday() == 0 and fire.hour == 6
