"""Errors raised by the spec layer; each is a `BigkError` so the CLI prints one line."""

from __future__ import annotations

from bigk.errors import BigkError, NotFound


class SpecError(BigkError):
    """A job spec (or a file holding specs) that cannot be used as written."""


class CronError(SpecError):
    """A cron expression or time zone that cannot drive a schedule."""


class UnknownJobError(SpecError, NotFound):
    """A job name that no loaded spec defines (exit 3, "not found", like the operator CLI)."""
