"""One log format for every long-running bigk process (serve, agent, emulator): logfmt or JSON lines on stderr.

bigk's log calls already write `event=... key=value` messages; `--log-format json` turns each line into
one JSON object with `ts` (RFC 3339), `level`, `logger` and every `key=value` of the message as a field
(values keep their quoting rules: `why='a b'` and `why="a b"` both become `"why": "a b"`), so that Loki,
Elasticsearch or `jq` read fields without parsing text. Text that is not `key=value` goes to `msg`.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import logging
import re
import sys
from typing import Any

from bigk.errors import UsageError

FORMATS = ("logfmt", "json")
QUIET = ("apscheduler", "uvicorn", "uvicorn.error", "uvicorn.access", "kubernetes", "urllib3", "aiohttp")
_PAIR = re.compile(r"""([A-Za-z_][\w.-]*)=("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\S*)""")


def parse_pairs(message: str) -> tuple[dict[str, Any], str]:
    """`event=x n=3 why='a b'` -> ({"event": "x", "n": "3", "why": "a b"}, leftover text)."""
    fields: dict[str, Any] = {}
    rest: list[str] = []
    pos = 0
    for match in _PAIR.finditer(message):
        gap = message[pos:match.start()].strip()
        if gap:
            rest.append(gap)
        key, raw = match.group(1), match.group(2)
        if raw[:1] in ("'", '"') and len(raw) >= 2:
            try:
                fields[key] = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                fields[key] = raw[1:-1]
        else:
            fields[key] = raw
        pos = match.end()
    tail = message[pos:].strip()
    if tail:
        rest.append(tail)
    return fields, " ".join(rest)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, the message's key=value pairs, msg, exc."""

    def format(self, record: logging.LogRecord) -> str:
        moment = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
        out: dict[str, Any] = {"ts": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
                               "level": record.levelname, "logger": record.name}
        fields, rest = parse_pairs(record.getMessage())
        for key, value in fields.items():
            out.setdefault(key, value)
        if rest:
            out["msg"] = rest
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


LOGFMT = logging.Formatter("ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
                           datefmt="%Y-%m-%dT%H:%M:%S")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at each line, not the stream of the moment it was made: a process
    (or a test runner) that swaps stderr never leaves logging writing into a closed stream."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def setup_logging(level: str = "INFO", fmt: str = "logfmt") -> None:
    """Send every log line to stderr in `fmt` (logfmt or json) at `level`; third-party chatter only from WARNING."""
    if fmt not in FORMATS:
        raise UsageError(f"--log-format {fmt!r}: use logfmt or json")
    if level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise UsageError(f"--log-level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else LOGFMT)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("apscheduler.executors").setLevel(logging.ERROR)  # misses are logged by bigk itself


LOG_FORMAT_HELP = "logfmt (key=value) or json (one object per line, the same fields)."
