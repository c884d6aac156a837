"""Root of bigk's exception hierarchy: every boundary subclasses `BigkError`.

The CLI prints a `BigkError` as one line and exits with `exit_code`; anything
else is a bug and shows a traceback.
"""

from __future__ import annotations


class BigkError(Exception):
    """An error a user can act on; the message says what and where."""

    exit_code = 1


class UsageError(BigkError):
    """A command line or option value that cannot mean anything (exit 2, like click's own usage errors)."""

    exit_code = 2
