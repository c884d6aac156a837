"""Standard 5-field cron (as in crontab(5)) turned into an APScheduler `CronTrigger`.

Also the descriptors of robfig/cron (the Spark Operator's cron library): `@yearly`,
`@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`, `?` for "any" in the
day fields, and `@every DURATION` with a Go duration (`90s`, `5m`, `1h30m`), which
becomes an interval trigger anchored at the Unix epoch so that a restart or a
reload never shifts it (robfig counts from when its process started).

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
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bigk.spec.cron_clock import ClockChangeCronTrigger, is_fixed_time
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
_GO_DURATION = re.compile(r"^(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+$")
_GO_PART = re.compile(r"([0-9]*\.?[0-9]*)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_EVERY_S = 366 * 86400
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
        if item == "?" and field.name in ("day-of-month", "day-of-week"):
            item = "*"  # robfig/cron and Quartz: '?' means "no specific value", i.e. any
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
    unrestricted = text in ("*", "?")
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


@dataclass(frozen=True)
class Every:
    """`@every DURATION`: fire every `seconds` seconds (whole seconds, at least 1, as robfig/cron does)."""

    seconds: int


def parse_every(expr: str) -> Every | None:
    """`@every 1h30m` -> Every(5400); None if `expr` is not an @every descriptor; CronError if it is a bad one."""
    text = expr.strip()
    if not text.lower().startswith("@every"):
        return None
    duration = text[len("@every") :].strip()
    if not duration or not _GO_DURATION.match(duration):
        raise CronError(f"'@every' needs a Go duration such as '90s', '5m' or '1h30m', got {duration or 'nothing'!r}")
    seconds = sum(float(num) * _GO_UNIT_S[unit] for num, unit in _GO_PART.findall(duration))
    if seconds > MAX_EVERY_S:
        raise CronError(f"'@every {duration}' is longer than a year; use a cron expression")
    return Every(max(1, int(seconds)))  # robfig truncates to whole seconds, at least one


def parse_schedule(expr: str) -> CronFields | Every:
    """A cron expression, a descriptor, or `@every DURATION`; raise CronError if invalid."""
    if not isinstance(expr, str):
        raise CronError(f"cron expression must be a string, got {type(expr).__name__}")
    if len(expr) > _MAX_LEN:
        raise CronError(f"cron expression is longer than {_MAX_LEN} characters")
    every = parse_every(expr)
    return every if every is not None else parse_cron(expr)


def parse_cron(expr: str) -> CronFields:
    """Parse a standard 5-field cron expression (or an @macro); raise CronError if invalid."""
    if not isinstance(expr, str):
        raise CronError(f"cron expression must be a string, got {type(expr).__name__}")
    if len(expr) > _MAX_LEN:
        raise CronError(f"cron expression is longer than {_MAX_LEN} characters")
    text = expr.strip().lower()
    text = _MACROS.get(text, text)
    if text.startswith("@"):
        known = ", ".join([*sorted(_MACROS), "@every DURATION"])
        raise CronError(f"unknown cron macro {expr.strip()!r} (known: {known})")
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


def to_trigger(expr: str, timezone: str = "UTC") -> BaseTrigger:
    """A trigger firing exactly when standard cron would (0 and 7 = Sunday); `@every` gives an interval."""
    parsed = parse_schedule(expr)
    tz = parse_timezone(timezone)
    if isinstance(parsed, Every):
        return IntervalTrigger(seconds=parsed.seconds, start_date=EPOCH, timezone=tz)
    fields = parsed
    raw = _MACROS.get(expr.strip().lower(), expr.strip().lower()).split()
    try:
        return ClockChangeCronTrigger(  # cron's rules at daylight saving changes (see cron_clock)
            fixed_time=is_fixed_time(raw[0], raw[1]),
            minute=fields.minute,
            hour=fields.hour,
            day=fields.day,
            month=fields.month,
            day_of_week=fields.day_of_week,
            timezone=tz,
        )
    except ValueError as exc:
        raise CronError(f"cron expression {expr!r}: {exc}") from None
