"""The bigk policy's incremental node view must always equal one built from scratch.

If it drifted (a state change it missed), bigk would score nodes on stale free
GPU and CPU and place pods where they pack worse or, with live readings, on GPUs
that are no longer usable.
"""

from __future__ import annotations

import random

import numpy as np

from bigk.cluster.model import Gpu, Node, PodRequest
from bigk.cluster.state import ClusterState
from bigk.scheduler.policies.nodeview import NodeView

FIELDS = ("cpu_free", "mem_free", "left", "full", "gpu_mem_free", "idle", "live_max", "model_cap", "model_free")


def _cluster(rng: random.Random) -> ClusterState:
    nodes = []
    for i in range(30):
        k = rng.choice([0, 2, 8])
        model = rng.choice(["A100", "T4"])
        nodes.append(Node(f"n{i}", 64_000, 256_000, 110, [Gpu(g, model, 40_000, f"u{i}-{g}") for g in range(k)], {}))
    return ClusterState(nodes)


def test_incremental_view_matches_a_fresh_one_after_allocations_releases_and_readings() -> None:
    rng = random.Random(7)
    state = _cluster(rng)
    view = NodeView()
    shapes = [PodRequest(1000, 1000), PodRequest(4000, 8000, 1, 1000), PodRequest(2000, 4000, 2, 1000),
              PodRequest(1000, 2000, 1, 250, 5000)]
    live: list[str] = []
    now = 100.0
    for step in range(400):
        r = rng.random()
        if r < 0.5:
            req = rng.choice(shapes)
            nodes = np.flatnonzero(state.feasible(req, now=now))
            if len(nodes):
                node = int(nodes[rng.randrange(len(nodes))])
                gpus = state.default_gpus(node, req, now)
                if gpus is not None:
                    state.allocate(f"p{step}", req, state.placement_for(node, req, gpus))
                    live.append(f"p{step}")
        elif r < 0.75 and live:
            state.release(live.pop(rng.randrange(len(live))))
        elif r < 0.9:
            i = rng.randrange(state.size)
            if state.gpu_count[i]:
                state.set_reading(i, rng.randrange(int(state.gpu_count[i])), 20_000, 50.0, 60.0,
                                  rng.random() < 0.7, now - rng.choice([0.0, 120.0]))
        else:
            now += 45.0  # readings go stale: usable GPUs change without any state call
        view.sync(state, now)
        fresh = NodeView()
        fresh.sync(state, now)
        for name in FIELDS:
            assert np.array_equal(getattr(view, name), getattr(fresh, name)), (step, name)
        assert view.any_fresh(now, state.stale_after_s) == bool(state.fresh_readings(now).any())


def test_view_follows_a_copy_of_the_state_and_back() -> None:
    state = _cluster(random.Random(3))
    view = NodeView()
    view.sync(state, None)
    copy = state.snapshot()
    node = int(np.flatnonzero(state.gpu_count == 8)[0])
    req = PodRequest(1000, 1000, 2, 1000)
    copy.allocate("x", req, copy.placement_for(node, req, (0, 1)))
    seen = view.version
    view.sync(copy, None)  # another state object: compared by content, so score caches redo one node
    assert view.full[node] == 6 and view.changed_since(seen).tolist() == [node]
    seen = view.version
    view.sync(state, None)  # back on the original: only the node that differs is refreshed
    assert view.full[node] == 8 and view.changed_since(seen).tolist() == [node]


def test_state_journal_names_the_nodes_that_changed() -> None:
    state = _cluster(random.Random(5))
    v0 = state.version
    node = int(np.flatnonzero(state.gpu_count > 0)[0])
    req = PodRequest(1000, 1000, 1, 1000)
    state.allocate("a", req, state.placement_for(node, req, (0,)))
    assert state.rows_changed_since(v0).tolist() == [node]
    other = int(np.flatnonzero(state.gpu_count > 0)[1])
    v1 = state.version
    state.release("a")
    state.set_reading(other, 0, 1.0, 1.0, 1.0, True, 0.0)
    assert state.rows_changed_since(v1).tolist() == sorted({node, other})
    assert state.rows_changed_since(state.version).tolist() == []
