"""Fault injection: make the next N matching requests fail the way real API servers fail.

`status` 500 answers an InternalError Status, 429 a TooManyRequests Status with
`Retry-After: 1`, any other 4xx/5xx a Status with that code, and 0 drops the
connection without an answer. With `after=True` the request is carried out first
and only the answer is lost (status 0: the connection drops; otherwise the error
replaces the real answer) — the "did my bind happen?" case. Faults match on the
HTTP method ("*" for any) and a regular expression searched in the request path
(and, if given, the query).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

_REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    remaining: int
    query: re.Pattern[str] | None = None
    after: bool = False
    hits: int = 0

    @property
    def reason(self) -> str:
        return _REASONS.get(self.status, "InternalError")


class Faults:
    """The pending faults of one emulated cluster (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        method: str,
        path_regex: str,
        status: int,
        count: int = 1,
        *,
        query_regex: str | None = None,
        after: bool = False,
    ) -> Fault:
        """Fail the next `count` requests matching `method` and `path_regex` with `status` (0 = drop)."""
        if status != 0 and not 400 <= status <= 599:
            raise ValueError(f"fault status must be 0 (drop) or 400-599, got {status}")
        if count < 1:
            raise ValueError(f"fault count must be at least 1, got {count}")
        query = re.compile(query_regex) if query_regex else None
        fault = Fault(method.upper(), re.compile(path_regex), status, count, query, after)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._faults)

    def take(self, method: str, path: str, query: str) -> Fault | None:
        """The fault that applies to this request (consuming one of its count), or None."""
        if not self._faults:
            return None
        with self._lock:
            for fault in self._faults:
                if fault.remaining <= 0 or fault.method not in ("*", method):
                    continue
                if not fault.path.search(path) or (fault.query is not None and not fault.query.search(query)):
                    continue
                fault.remaining -= 1
                fault.hits += 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None
