"""Root of bigk's exception hierarchy: every boundary subclasses `BigkError`.

Four kinds a user can act on, each mapped once by the CLI (the exit code here,
printed as one line by `bigk.cli.main`) and once by the API (`bigk.service.http.status_for`):

    kind           CLI exit   HTTP
    NotFound           3      404   a job, run, node, queue or name that does not exist
    Conflict           1      409   the thing exists but is in a state that refuses the action
    Invalid            1      400   a value that cannot mean anything (UsageError: on the command line, exit 2)
    Unauthorized       4      401   not signed in, or not allowed (Forbidden: 403)

A plain `BigkError` is exit 1 / HTTP 400; anything else is a bug and shows a traceback.
"""

from __future__ import annotations


class BigkError(Exception):
    """An error a user can act on; the message says what and where."""

    exit_code = 1


class NotFound(BigkError):
    """What was named does not exist."""

    exit_code = 3


class Conflict(BigkError):
    """It exists, but its state refuses the action (a finished run cannot be cancelled)."""


class Invalid(BigkError):
    """A value that cannot mean anything."""


class UsageError(Invalid):
    """A command line or option value that cannot mean anything (exit 2, like click's own usage errors)."""

    exit_code = 2


class Unauthorized(BigkError):
    """The caller is not signed in, or may not do this."""

    exit_code = 4


class Forbidden(Unauthorized):
    """The caller is known, but may not do this (RBAC)."""
