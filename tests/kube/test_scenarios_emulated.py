"""The shared scenarios against the emulated cluster over HTTP (see tests/kube/scenarios.py)."""

from __future__ import annotations

import pytest

from tests.kube import scenarios
from tests.kube.harness import Harness


@pytest.mark.parametrize("scenario", scenarios.ALL, ids=lambda f: f.__name__)
def test_scenario(harness: Harness, scenario: object) -> None:
    scenario(harness)  # type: ignore[operator]
