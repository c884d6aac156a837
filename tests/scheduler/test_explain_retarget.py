"""A parked unit's behind-head explanation re-told behind a new head reads exactly as if rebuilt."""

from bigk.scheduler.explain import behind, behind_another, explain
from bigk.scheduler.units import lone_unit

from .helpers import pod


def test_behind_another_reads_as_a_rebuilt_explanation() -> None:
    unit = lone_unit(pod("waiting", gpus=2, created_at=1))
    before = explain(unit, "behind-head", None, 40, behind("default/head-a"))
    moved = behind_another(before, "default/head-a", "default/head-b")
    rebuilt = explain(unit, "behind-head", None, 40, behind("default/head-b"))
    assert moved is not None and moved == rebuilt and moved.message.endswith("behind default/head-b, which holds room")
    assert before.message.endswith("behind default/head-a, which holds room")  # the published one is not changed


def test_behind_another_declines_a_message_it_did_not_write() -> None:
    unit = lone_unit(pod("waiting", gpus=2))
    other = explain(unit, "behind-head", None, 40, behind(None))
    assert behind_another(other, "", "default/head-b") is None
