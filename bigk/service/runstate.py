"""The run state machine: which states exist and which moves between them are legal.

Every state change goes through `check_transition`, so a run can never jump from
Succeeded back to Running after a restart or a late pod event.
"""

from __future__ import annotations

from enum import StrEnum

from bigk.errors import Conflict


class RunState(StrEnum):
    PENDING = "Pending"  # recorded, not yet handed to the cluster
    SUBMITTED = "Submitted"  # driver pod exists, waiting for bigk to place it
    ADMITTED = "Admitted"  # bigk bound the driver (the gang is admitted)
    RUNNING = "Running"  # the driver pod runs
    UNKNOWN = "Unknown"  # its cluster does not answer (several clusters): not failed, not known to run either
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    TIMED_OUT = "TimedOut"


TERMINAL = frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.TIMED_OUT})
ACTIVE = frozenset(set(RunState) - TERMINAL)
_ENDINGS = {RunState.FAILED, RunState.CANCELLED, RunState.TIMED_OUT}

ALLOWED: dict[RunState, frozenset[RunState]] = {
    RunState.PENDING: frozenset({RunState.SUBMITTED, RunState.ADMITTED, RunState.RUNNING, RunState.SUCCEEDED,
                                 *_ENDINGS}),
    RunState.SUBMITTED: frozenset({RunState.ADMITTED, RunState.RUNNING, RunState.SUCCEEDED, RunState.UNKNOWN,
                                   *_ENDINGS}),
    RunState.ADMITTED: frozenset({RunState.RUNNING, RunState.SUCCEEDED, RunState.UNKNOWN, *_ENDINGS}),
    RunState.RUNNING: frozenset({RunState.SUCCEEDED, RunState.UNKNOWN, *_ENDINGS}),
    # back from Unknown: to what its cluster shows on return, or Pending (never started: dispatched again elsewhere)
    RunState.UNKNOWN: frozenset({RunState.PENDING, RunState.SUBMITTED, RunState.ADMITTED, RunState.RUNNING,
                                 RunState.SUCCEEDED, *_ENDINGS}),
    RunState.SUCCEEDED: frozenset(),
    RunState.FAILED: frozenset(),
    RunState.CANCELLED: frozenset(),
    RunState.TIMED_OUT: frozenset(),
}

# Which timestamp column a state records when it is entered.
TIMESTAMP_FIELD: dict[RunState, str] = {
    RunState.PENDING: "created_at",
    RunState.SUBMITTED: "submitted_at",
    RunState.ADMITTED: "admitted_at",
    RunState.RUNNING: "running_at",
    RunState.UNKNOWN: "unknown_at",
    RunState.SUCCEEDED: "finished_at",
    RunState.FAILED: "finished_at",
    RunState.CANCELLED: "finished_at",
    RunState.TIMED_OUT: "finished_at",
}


class InvalidTransition(Conflict):
    """A state change the state machine forbids (e.g. Succeeded -> Running)."""


def check_transition(run_id: str, old: RunState, new: RunState) -> None:
    """Raise InvalidTransition unless `old -> new` is a legal move."""
    if new not in ALLOWED[old]:
        raise InvalidTransition(f"run {run_id}: cannot move from {old} to {new}")
