"""bigk's error kinds and their one mapping each: exit codes for the CLI, HTTP statuses for the API."""

from __future__ import annotations

import pytest

from bigk.cli.api_access import NoSuchName
from bigk.errors import BigkError, Conflict, Invalid, NotFound, Unauthorized, UsageError
from bigk.service import client
from bigk.service.cluster_view import UnknownNode
from bigk.service.http import ListenError, status_for
from bigk.service.queue_views import UnknownQueue
from bigk.service.runstate import InvalidTransition
from bigk.service.store import UnknownRun
from bigk.spec.errors import SpecError, UnknownJobError

NOT_FOUND = (UnknownJobError, NoSuchName, client.NotFound, UnknownNode, UnknownRun, UnknownQueue)


@pytest.mark.parametrize("kind", NOT_FOUND)
def test_every_not_found_is_one_kind_exit_3_and_404(kind: type[BigkError]) -> None:
    exc = kind("no such thing")
    assert isinstance(exc, NotFound)
    assert exc.exit_code == 3
    assert status_for(exc) == 404


@pytest.mark.parametrize(("exc", "exit_code", "status"), [
    (InvalidTransition("run r1 already Succeeded"), 1, 409),
    (UsageError("--listen x"), 2, 400),
    (client.BadServer("--server ftp://x"), 2, 400),
    (Invalid("bad value"), 1, 400),
    (SpecError("spec.driver.cores: must be positive"), 1, 400),
    (client.Unauthorized("no token"), 4, 401),
    (client.Forbidden("RBAC says no"), 4, 403),
    (client.Unreachable("nobody at http://127.0.0.1:1"), 5, 400),
    (ListenError("address in use"), 1, 400),
    (BigkError("anything else"), 1, 400),
])
def test_each_kind_has_its_exit_code_and_status(exc: BigkError, exit_code: int, status: int) -> None:
    assert exc.exit_code == exit_code
    assert status_for(exc) == status


def test_kinds_are_distinct() -> None:
    kinds = (NotFound, Conflict, Invalid, Unauthorized)
    for a in kinds:
        assert [b for b in kinds if issubclass(a, b)] == [a]
