"""The shared scenarios against the emulated cluster over HTTP (see tests/kube/scenarios.py)."""

from __future__ import annotations

import pytest

from tests.kube import scenarios
from tests.kube.harness import Harness


@pytest.mark.parametrize("scenario", [
    scenarios.bind_with_events,
    scenarios.gang_with_staggered_executors,
    scenarios.binders_race,
    scenarios.replicas_without_leader_never_double_bind,
    scenarios.only_the_leader_binds,
    scenarios.leader_failover,
    scenarios.preemption_by_eviction,
], ids=lambda f: f.__name__)
def test_scenario(harness: Harness, scenario: object) -> None:
    scenario(harness)  # type: ignore[operator]
