"""Standard 5-field cron (as in crontab(5)) turned into an APScheduler `CronTrigger`.

APScheduler's own `CronTrigger.from_crontab` reads day-of-week 0 as Monday, while
every crontab, Kubernetes CronJob and the Spark Operator read 0 (and 7) as Sunday.
So we parse each field ourselves into explicit value lists and hand APScheduler
weekday *names*, which it cannot misread.

Standard cron ORs day-of-month and day-of-week when both are restricted; a
CronTrigger can only AND them, so that combination is rejected with a clear
message instead of silently firing on the wrong days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from bigk.spec.errors import CronError

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]  # cron numbering: 0 = Sunday
_APS_DAYS = {0: "sun", 1: "mon", 2: "tue", 3: "wed", 4: "thu", 5: "fri", 6: "sat"}
_ITEM = re.compile(r"^(?:(\*)|([0-9a-z]+)(?:-([0-9a-z]+))?)(?:/([0-9]+))?$")
_MAX_LEN = 256
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0  # value of names[0]


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, tuple(_MONTHS), 1),
    _Field("day-of-week", 0, 7, tuple(_DAYS), 0),
)


def _value(text: str, field: _Field) -> int:
    if text.isdigit():
        number = int(text)
    elif text in field.names:
        number = field.names.index(text) + field.name_base
    else:
        raise CronError(f"{field.name}: {text!r} is not a number or a name")
    if not field.low <= number <= field.high:
        raise CronError(f"{field.name}: {number} is out of range {field.low}-{field.high}")
    return number


def _parse_field(text: str, field: _Field) -> tuple[set[int], bool]:
    """Return the field's values and whether it was unrestricted ('*')."""
    values: set[int] = set()
    if not text:
        raise CronError(f"{field.name}: empty field")
    for item in text.split(","):
        match = _ITEM.match(item)
        if not match:
            raise CronError(f"{field.name}: cannot read {item!r} (use N, N-M, */S, N-M/S or a comma list)")
        star, start, end, step_text = match.groups()
        step = int(step_text) if step_text else 1
        if step < 1 or step > field.high:
            raise CronError(f"{field.name}: step {step_text} is out of range 1-{field.high}")
        if star:
            low, high = field.low, field.high
            if field.name == "day-of-week":
                high = 6  # 7 is only an alias of Sunday
        else:
            low = _value(start, field)
            high = _value(end, field) if end else (field.high if step_text else low)
            if low > high:
                raise CronError(f"{field.name}: range {start}-{end} runs backwards")
        values.update(range(low, high + 1, step))
    unrestricted = text == "*"
    if field.name == "day-of-week":
        values = {0 if v == 7 else v for v in values}  # 7 is Sunday too
    return values, unrestricted


def _join(values: set[int]) -> str:
    return ",".join(str(v) for v in sorted(values))


@dataclass(frozen=True)
class CronFields:
    """A parsed cron expression, in APScheduler's field syntax."""

    minute: str
    hour: str
    day: str
    month: str
    day_of_week: str


def parse_cron(expr: str) -> CronFields:
    """Parse a standard 5-field cron expression (or an @macro); raise CronError if invalid."""
    if not isinstance(expr, str):
        raise CronError(f"cron expression must be a string, got {type(expr).__name__}")
    if len(expr) > _MAX_LEN:
        raise CronError(f"cron expression is longer than {_MAX_LEN} characters")
    text = expr.strip().lower()
    text = _MACROS.get(text, text)
    if text.startswith("@"):
        raise CronError(f"unknown cron macro {expr.strip()!r} (known: {', '.join(sorted(_MACROS))})")
    parts = text.split()
    if len(parts) != 5:
        raise CronError(
            f"cron expression {expr!r} has {len(parts)} fields; expected 5 (minute hour day-of-month month day-of-week)"
        )
    parsed = [_parse_field(part, field) for part, field in zip(parts, _FIELDS, strict=True)]
    (minute, minute_any), (hour, hour_any), (dom, dom_any), (month, month_any), (dow, dow_any) = parsed
    if not dom_any and not dow_any:
        raise CronError(
            f"cron expression {expr!r} restricts both day-of-month and day-of-week; standard cron runs when "
            "EITHER matches, which bigk does not support: use two jobs or restrict only one of them"
        )
    if not dom_any and min(dom) > max(_MONTH_DAYS[m - 1] for m in month):
        raise CronError(f"cron expression {expr!r} can never fire: no selected month has day {min(dom)}")
    return CronFields(
        minute="*" if minute_any else _join(minute),
        hour="*" if hour_any else _join(hour),
        day="*" if dom_any else _join(dom),
        month="*" if month_any else _join(month),
        day_of_week="*" if dow_any else ",".join(_APS_DAYS[d] for d in sorted(dow)),
    )


def parse_timezone(name: str) -> ZoneInfo:
    """An IANA time zone such as 'Europe/Berlin'; raise CronError if unknown."""
    if not isinstance(name, str) or not name or len(name) > 64:
        raise CronError(f"invalid time zone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(f"unknown time zone {name!r} (use an IANA name such as 'UTC' or 'Europe/Berlin')") from None


def to_trigger(expr: str, timezone: str = "UTC") -> CronTrigger:
    """A CronTrigger firing exactly when standard cron would (0 and 7 = Sunday)."""
    fields = parse_cron(expr)
    tz = parse_timezone(timezone)
    try:
        return CronTrigger(
            minute=fields.minute,
            hour=fields.hour,
            day=fields.day,
            month=fields.month,
            day_of_week=fields.day_of_week,
            timezone=tz,
        )
    except ValueError as exc:
        raise CronError(f"cron expression {expr!r}: {exc}") from None
