"""The scheduling loop publishes one immutable view per cycle; other threads read that, never the live state."""

from __future__ import annotations

import dataclasses

import pytest

from tests.kube.harness import Harness


def test_each_cycle_publishes_a_frozen_view_with_a_copy_of_the_cluster(harness: Harness) -> None:
    h = harness
    loop = h.loop(cluster_view_s=0.0)  # a cluster copy with every cycle
    key = f"{h.namespace}/nowhere"
    h.pod("nowhere", node_selector={"no-such-label": "x"})
    first = h.wait(lambda: v if key in (v := loop.view()).explanations else None, what="pod explained")
    assert first is not None
    assert first.explanation(key) == loop.explanations()[key] and "node selector" in (first.explanation(key) or "")
    with pytest.raises(TypeError):
        first.explanations[key] = first.explanations[key]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.cycles = 0  # type: ignore[misc]
    assert first.cluster is not None and first.cluster is not loop.scheduler.state
    cpu_before = int(first.cluster.cpu_used.sum())

    h.pod("fits", cpu="500m")
    h.wait(lambda: h.node_of("fits"), what="pod bound")
    later = h.wait(lambda: v if (v := loop.view()).cluster is not None and int(v.cluster.cpu_used.sum()) > cpu_before
                   else None, what="a later view counting the bound pod")
    assert later is not None
    assert later.cycles > first.cycles
    assert int(first.cluster.cpu_used.sum()) == cpu_before  # the view read earlier did not change under its reader
    assert key in later.explanations and loop.queue_usage()[1] == later.totals


def test_no_cluster_copy_unless_asked(harness: Harness) -> None:
    h = harness
    loop = h.loop()
    h.pod("nowhere", node_selector={"no-such-label": "x"})
    view = h.wait(lambda: v if (v := loop.view()).cycles else None, what="a cycle")
    assert view is not None and view.cluster is None
