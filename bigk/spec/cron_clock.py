"""Cron at clock changes (daylight saving time), as Vixie cron runs it.

APScheduler's CronTrigger works on wall-clock fields, so at a fall-back it fires a
`0 2 * * *` job twice (02:00 summer time, then 02:00 winter time: two distinct
instants), and at a spring-forward it fires a `30 2 * * *` job at 03:30, half an
hour late. Standard cron distinguishes two kinds of jobs:

- *fixed-time* jobs (neither minute nor hour starts with `*`): a wall time that
  occurs twice fires once (the first time); a wall time that does not exist
  fires once, at the first valid instant after the gap (03:00 in Berlin);
- *wildcard* jobs (`*/15 * * * *`, `0 * * * *`): they follow elapsed time and
  keep firing through the repeated hour; times inside a gap are skipped (no
  interval between two fires gets longer than it really was).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from apscheduler.triggers.cron import CronTrigger

_TINY = timedelta(microseconds=1)


def is_fixed_time(minute: str, hour: str) -> bool:
    """Vixie cron's rule: a job is fixed-time unless its minute or hour field starts with '*'."""
    return not minute.startswith("*") and not hour.startswith("*")


def _wall(dt: datetime) -> datetime:
    return dt.replace(tzinfo=None, fold=0)


def _exists(wall: datetime, tz: tzinfo) -> bool:
    """False when `wall` falls into a spring-forward gap of `tz`."""
    return _wall(wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)) == wall


def _repeated(wall: datetime, tz: tzinfo) -> bool:
    """True when `wall` occurs twice in `tz` (a fall-back hour)."""
    first, second = wall.replace(tzinfo=tz, fold=0), wall.replace(tzinfo=tz, fold=1)
    return _exists(wall, tz) and first.utcoffset() != second.utcoffset()


def gap_end(wall: datetime, tz: tzinfo) -> datetime:
    """The first valid instant after the spring-forward gap that contains `wall` (in `tz`)."""
    low = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)  # read with the later offset: before the change
    high = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)  # read with the earlier offset: after it
    if low > high:
        low, high = high, low
    after = high.astimezone(tz).utcoffset()
    while high - low > timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(tz).utcoffset() == after:
            high = mid
        else:
            low = mid
    return high.replace(microsecond=0).astimezone(tz)


class ClockChangeCronTrigger(CronTrigger):
    """A CronTrigger that fires as standard cron does across daylight saving changes (see module doc)."""

    def __init__(self, *, fixed_time: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fixed_time = fixed_time

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        tz = self.timezone
        for _ in range(64):  # a few candidates in one clock change at most; bounded anyway
            candidate = super().get_next_fire_time(previous_fire_time, now)
            if candidate is None or not self.fixed_time:
                return candidate
            wall = _wall(candidate)
            if not _exists(wall, tz):
                fire = gap_end(wall, tz)
                if fire >= now:
                    return fire
            elif not (_repeated(wall, tz) and candidate.utcoffset() == wall.replace(tzinfo=tz, fold=1).utcoffset()):
                return candidate
            # the second pass through a repeated wall time, or a gap fire already past: look further
            now = candidate.astimezone(UTC) + _TINY
            previous_fire_time = None
        return None

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = super().__getstate__()
        state["fixed_time"] = self.fixed_time
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        self.fixed_time = bool(state.pop("fixed_time", True))
        super().__setstate__(state)
