"""The held head's preemption attempt is not repeated while nothing changes, and is as soon as something does.

Node `a` (8 GPUs) is full of 1-GPU pods of priority 10; `head` wants 8 GPUs at priority 5: it can neither fit
nor preempt, so it is the held head. A scheduler without the retry filter runs beside it as the reference.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from bigk.scheduler import Scheduler
from bigk.scheduler.cycle import Cycle
from tests.scheduler.helpers import World, gpu_node, pod


def worlds() -> tuple[World, World]:
    out = []
    for retry in (True, False):
        wd = World([gpu_node("a")], policy="binpack")
        wd.sched = Scheduler("binpack", retry_filter=retry)
        for g in range(8):
            wd.add(pod(f"run-{g}", gpus=1, on="a", slots=(g,), priority=10))
        wd.add(pod("head", gpus=8, priority=5, created_at=1.0))
        out.append(wd)
    return out[0], out[1]


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = Cycle.preempt

    def counted(self: Cycle, unit: object, keys: list[str]) -> bool:
        calls.append(getattr(unit, "name", ""))
        return real(self, unit, keys)  # type: ignore[arg-type]

    monkeypatch.setattr(Cycle, "preempt", counted)
    return calls


def test_nothing_changed_no_new_attempt_and_the_same_answer(attempts: list[str]) -> None:
    wd, ref = worlds()
    first = wd.cycle(0.0)
    assert first.waiting["default/head"].state == "held"
    assert attempts == ["default/head"]
    for t in (1.0, 2.0, 3.0):
        attempts.clear()
        again = wd.cycle(t)
        assert attempts == []  # the last attempt's answer stands: nothing it reads has changed
        assert again.waiting["default/head"] == first.waiting["default/head"]
        assert not again.binds and not again.evictions


def test_victims_whose_priority_drops_in_place_are_seen_at_once(attempts: list[str]) -> None:
    wd, ref = worlds()
    for t in (0.0, 1.0):
        assert wd.cycle(t).waiting["default/head"].state == ref.cycle(t).waiting["default/head"].state == "held"
    for w in (wd, ref):  # the same pods, nodes and GPUs: only their priority changes (no room moves)
        for g in range(8):
            key = f"default/run-{g}"
            w.pods[key] = replace(w.pods[key], priority=1)
    attempts.clear()
    got, want = wd.cycle(2.0), ref.cycle(2.0)
    assert "default/head" in attempts
    assert sorted(e.pod_key for e in got.evictions) == sorted(e.pod_key for e in want.evictions)
    assert len(got.evictions) == 8
    assert got.waiting["default/head"].state == "preempting"


def test_a_cordon_lifted_or_room_freed_is_tried(attempts: list[str]) -> None:
    wd, ref = worlds()
    for t in (0.0, 1.0):
        wd.cycle(t)
        ref.cycle(t)
    for w in (wd, ref):  # every pod of `a` finishes: room, not victims, changes
        for g in range(8):
            w.pods.pop(f"default/run-{g}")
    got, want = wd.cycle(2.0), ref.cycle(2.0)
    assert got.binds == want.binds and [b.pod_key for b in got.binds] == ["default/head"]
