"""Retrying calls to the Kubernetes API: which failures are worth another try, and when.

Throttling (429), server errors (5xx) and dropped connections are transient; a
conflict (409) is transient only where the caller says so (an update against a
stale resourceVersion), never for a binding, where 409 means another scheduler
already bound the pod. Delays grow exponentially with full jitter and honour a
server's Retry-After.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import urllib3
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)
T = TypeVar("T")

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    urllib3.exceptions.HTTPError,  # ProtocolError, MaxRetryError, ReadTimeoutError, ...
    ConnectionError,
    TimeoutError,
)


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an API error; None for connection-level failures."""
    if isinstance(exc, ApiException):
        return int(exc.status) if exc.status else None
    return None


def is_transient(exc: BaseException, *, conflict_ok: bool = False) -> bool:
    """True for failures a later identical request may get past."""
    if isinstance(exc, CONNECTION_ERRORS):
        return True
    if isinstance(exc, ApiException):
        status = status_of(exc)
        if status is None or status == 0:
            return True  # the client's own wrapper for transport errors
        if status == 429 or status >= 500:
            return True
        return conflict_ok and status == 409
    return False


def retry_after(exc: BaseException) -> float | None:
    """Seconds from a Retry-After header, when the server sent one."""
    headers = getattr(exc, "headers", None)
    if not headers:
        return None
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


@dataclass
class Backoff:
    """Exponential backoff with full jitter: delay n is uniform in [0, min(cap, base * 2**n)]."""

    base_s: float = 0.05
    cap_s: float = 2.0
    attempts: int = 6
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        return self.rng.uniform(0.0, min(self.cap_s, self.base_s * (2**attempt)))

    def call(self, fn: Callable[[], T], *, what: str, conflict_ok: bool = False,
             retry_if: Callable[[BaseException], bool] | None = None) -> T:
        """Call `fn`, retrying transient failures (or those `retry_if` accepts); the last failure propagates."""
        for attempt in range(self.attempts):
            try:
                return fn()
            except Exception as exc:
                retryable = retry_if(exc) if retry_if is not None else is_transient(exc, conflict_ok=conflict_ok)
                if attempt + 1 >= self.attempts or not retryable:
                    raise
                wait = retry_after(exc)
                wait = min(self.cap_s, wait) if wait is not None else self.delay(attempt)
                log.info("event=api_retry what=%s attempt=%d status=%s error=%s wait_s=%.3f", what, attempt + 1,
                         status_of(exc), type(exc).__name__, wait)
                self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover
