"""`bigk.service.guards.FitGuard`: one judgement per job spec and node listing, however many runs ask."""

from __future__ import annotations

from pathlib import Path

import pytest

from bigk.cluster.model import Node
from bigk.service import guards
from bigk.service.guards import FitGuard
from bigk.spec.loader import load_file
from tests.service.conftest import job_yaml


def test_a_job_is_judged_once_per_spec_and_node_listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The queue view asks for every waiting run (1,000 runs of one job: 1,000 fit checks per request before)."""
    calls: list[str] = []
    real = guards.fit_problems

    def counted(spec, nodes):  # type: ignore[no-untyped-def]
        calls.append(spec.metadata.name)
        return real(spec, nodes)

    monkeypatch.setattr(guards, "fit_problems", counted)
    now = [0.0]
    guard = FitGuard(lambda: [Node("cpu-0", 4000, 8192)], clock=lambda: now[0])
    path = tmp_path / "big.yaml"
    path.write_text(job_yaml("big", instances=8))
    loaded = load_file(path).jobs[0]
    first = guard.reason(loaded)
    assert first.startswith("it can never run on the cluster's 1 nodes") and calls == ["big"]
    assert [guard.reason(loaded) for _ in range(100)] == [first] * 100 and calls == ["big"]
    guard.problems(loaded).clear()  # a caller's copy: the judgement is kept
    assert guard.reason(loaded) == first and calls == ["big"]
    again = load_file(path).jobs[0]  # the spec read again (a reload): judged again
    assert guard.reason(again) == first and calls == ["big", "big"]
    now[0] += guards.NODES_TTL_S + 1  # the nodes read again: judged again
    assert guard.reason(again) == first and calls == ["big", "big", "big"]
