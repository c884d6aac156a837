"""The informer cache: what the next cycle sees after binds, confirmations, expiries and junk."""

from __future__ import annotations

from bigk.kube.cache import ASSUME_TTL_S, ClusterCache
from tests.kube.objects import node, pod


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_assumed_bind_is_not_placed_again_and_the_server_wins_on_confirmation() -> None:
    cache = ClusterCache(clock=Clock())
    cache.replace_pods([pod("p")])
    assert [p.name for p in cache.candidates()] == ["p"]
    cache.assume("default/p", "n1", (0,))
    assert cache.candidates() == []
    assert [(p.node, p.gpus) for p in cache.pods()] == [("n1", (0,))]
    cache.upsert_pod(pod("p", node="n2"))  # the watch says another scheduler bound it elsewhere
    assert [p.node for p in cache.pods()] == ["n2"]


def test_unconfirmed_assumption_expires_and_the_pod_is_pending_again() -> None:
    clock = Clock()
    cache = ClusterCache(clock=clock)
    cache.replace_pods([pod("p")])
    cache.assume("default/p", "n1")
    clock.t += ASSUME_TTL_S + 1
    assert [p.name for p in cache.candidates()] == ["p"]


def test_finished_and_foreign_pending_pods_are_not_tracked() -> None:
    cache = ClusterCache()
    cache.replace_pods([pod("done", node="n1", phase="Succeeded"), pod("theirs", scheduler="default-scheduler"),
                        pod("running", node="n1", phase="Running", scheduler="default-scheduler")])
    assert [p.name for p in cache.pods()] == ["running"]  # still holds its node's resources
    cache.upsert_pod(pod("running", node="n1", phase="Failed"))
    assert cache.pods() == []


def test_bad_objects_are_counted_and_skipped_and_generation_moves() -> None:
    cache = ClusterCache()
    before = cache.generation
    cache.replace_nodes([node("ok"), node("bad", cpu="lots")])
    cache.upsert_pod(pod("bad", cpu="lots"))
    assert [n.name for n in cache.nodes()] == ["ok"]
    assert cache.pods() == [] and cache.skipped_objects == 2
    assert cache.generation > before
    assert cache.wait_for_change(cache.generation, timeout=0.01) == cache.generation
