"""Cron across daylight saving changes: fixed clocks, both directions, every time zone the examples use.

A fixed-time job (`0 2 * * *`) fires once on the day a wall time occurs twice, and once,
at the end of the gap, on the day it does not exist; a wildcard job (`0 * * * *`) follows
elapsed time through both changes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from bigk.spec.cron import to_trigger

ROOT = Path(__file__).resolve().parents[2]
# Beyond the examples: the southern hemisphere (changes the other way round), a zone whose clocks
# change at 01:00, and one whose summer time is only 30 minutes ahead.
EXTRA_ZONES = ["America/New_York", "Australia/Sydney", "Europe/London", "Australia/Lord_Howe"]


def example_zones() -> list[str]:
    zones = set()
    for path in sorted((ROOT / "jobspecs").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            schedule = ((doc or {}).get("spec") or {}).get("schedule") if isinstance(doc, dict) else None
            if isinstance(schedule, dict) and schedule.get("timeZone"):
                zones.add(schedule["timeZone"])
    return sorted(zones)


def test_the_examples_name_time_zones_with_clock_changes() -> None:
    assert "Europe/Berlin" in example_zones()  # nightly-etl: the job the issue was found with


def transitions(zone: str, year: int = 2026) -> list[tuple[datetime, timedelta]]:
    """(instant of the change in UTC, new offset minus old) for each change of `zone` in `year`."""
    tz = ZoneInfo(zone)
    out = []
    t = datetime(year, 1, 1, tzinfo=UTC)
    step = timedelta(minutes=15)
    prev = t.astimezone(tz).utcoffset()
    while t.year == year:
        t += step
        off = t.astimezone(tz).utcoffset()
        if off != prev:
            assert off is not None and prev is not None
            out.append((t, off - prev))
            prev = off
    return out


def fires(expr: str, zone: str, start: datetime, end: datetime) -> list[datetime]:
    """Every fire time in [start, end), walking the trigger as APScheduler does (UTC clock)."""
    trigger = to_trigger(expr, zone)
    out: list[datetime] = []
    prev = None
    now = start
    while True:
        nxt = trigger.get_next_fire_time(prev, now)
        if nxt is None or nxt >= end:
            return out
        out.append(nxt.astimezone(UTC))
        prev, now = nxt, nxt.astimezone(UTC) + timedelta(seconds=1)


ZONES = sorted(set(example_zones()) | set(EXTRA_ZONES))
CHANGES = [(zone, at, delta) for zone in ZONES for at, delta in transitions(zone)]


def test_utc_and_every_example_zone_is_covered() -> None:
    assert "UTC" in ZONES and transitions("UTC") == []
    assert {zone for zone, _, _ in CHANGES} >= {z for z in example_zones() if z != "UTC"}


@pytest.mark.parametrize(("zone", "at", "delta"), CHANGES, ids=lambda v: str(v))
def test_fixed_time_job_fires_once_per_day_across_the_change(zone: str, at: datetime, delta: timedelta) -> None:
    tz = ZoneInfo(zone)
    local = at.astimezone(tz).replace(tzinfo=None)  # the wall time just after the change
    # spring forward: [local - delta, local) does not exist; fall back: [local, local + |delta|) occurs twice
    wall = local - delta / 2 if delta > timedelta(0) else local + (-delta) / 2
    wall = wall.replace(second=0, microsecond=0)
    expr = f"{wall.minute} {wall.hour} * * *"
    got = fires(expr, zone, at - timedelta(days=2), at + timedelta(days=2))
    days = [f.astimezone(tz).date() for f in got]
    shown = (expr, [f.astimezone(tz).isoformat() for f in got])
    assert len(days) >= 3 and days == [days[0] + timedelta(days=i) for i in range(len(days))], shown
    change_day = [f for f in got if f.astimezone(tz).date() == at.astimezone(tz).date()]
    assert len(change_day) == 1
    fire = change_day[0]
    if delta > timedelta(0):
        assert fire == at, f"{expr} in {zone}: fires at the end of the gap, {at.astimezone(tz)}"
    else:
        first = wall.replace(tzinfo=tz, fold=0)
        assert fire == first.astimezone(UTC), f"{expr} in {zone}: fires at the first {wall.time()}"


@pytest.mark.parametrize(("zone", "at", "delta"), [c for c in CHANGES if abs(c[2]) == timedelta(hours=1)],
                         ids=lambda v: str(v))
def test_hourly_job_follows_elapsed_time_across_the_change(zone: str, at: datetime, delta: timedelta) -> None:
    got = fires("0 * * * *", zone, at - timedelta(hours=6), at + timedelta(hours=6))
    gaps = {b - a for a, b in zip(got, got[1:], strict=False)}
    assert gaps == {timedelta(hours=1)}, [f.astimezone(ZoneInfo(zone)).isoformat() for f in got]


def test_nightly_etl_fires_once_on_both_change_days_of_2026() -> None:
    """The shipped job of the report: 0 2 * * * Europe/Berlin."""
    tz = ZoneInfo("Europe/Berlin")
    autumn = fires("0 2 * * *", "Europe/Berlin", datetime(2026, 10, 24, 12, tzinfo=UTC),
                   datetime(2026, 10, 26, 12, tzinfo=UTC))
    assert [f.astimezone(tz).isoformat() for f in autumn] == ["2026-10-25T02:00:00+02:00",
                                                              "2026-10-26T02:00:00+01:00"]
    spring = fires("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 28, 12, tzinfo=UTC),
                   datetime(2026, 3, 30, 12, tzinfo=UTC))
    assert [f.astimezone(tz).isoformat() for f in spring] == ["2026-03-29T03:00:00+02:00",
                                                              "2026-03-30T02:30:00+02:00"]


def test_trigger_survives_the_job_store_round_trip() -> None:
    import pickle

    trigger = to_trigger("0 2 * * *", "Europe/Berlin")
    again = pickle.loads(pickle.dumps(trigger))
    start = datetime(2026, 10, 24, 12, tzinfo=UTC)
    assert again.get_next_fire_time(None, start) == trigger.get_next_fire_time(None, start)
    assert getattr(again, "fixed_time", None) is True
