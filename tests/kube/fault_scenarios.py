"""Faults of the control plane itself, as scenarios run on the emulator and (marked `cluster`) the real one.

Each scenario gets a `ControlPlane`: something that can stop and start the API
server, keeping or losing its state, and drop open watches. On the emulator a
restart is a new emulated cluster on the same port (state loss: only the nodes
come back; "restore": the given pods are created again, with new, lower resource
versions, as after an etcd restore from a snapshot).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from bigk.cluster import labels as L
from bigk.cluster.executor_request import encode_executor_request
from bigk.cluster.model import PodRequest
from tests.kube.harness import HOSTNAME, Harness, unique


class ControlPlane(Protocol):
    def restart(self, *, keep_state: bool, restore: list[dict[str, Any]] | None = None) -> None:
        """Stop the API server and start it again; without keep_state everything but the nodes is lost
        (then `restore` pods are created again, as from an older snapshot)."""

    def drop_watches(self) -> int:
        """Cut every open watch connection (a network drop); returns how many."""


def _pinned(h: Harness, node: str, name: str, cpu_m: int, **kwargs: Any) -> dict[str, Any]:
    return h.pod(name, cpu=f"{cpu_m}m", node_selector={HOSTNAME: node}, **kwargs)


def state_loss(h: Harness, cp: ControlPlane) -> None:
    """The API server forgets everything: bigk lists afresh, and pods and room reservations of the old
    state are dropped, so new pods get the room at once."""
    loop = h.loop()
    node = h.schedulable_node(loop)
    free = h.free_cpu(loop, node)
    share = free // 3
    app = unique("spark")
    annotations = {L.MIN_EXECUTORS_ANNOTATION: "1", L.MAX_EXECUTORS_ANNOTATION: "1",
                   L.EXECUTOR_REQUEST_ANNOTATION: encode_executor_request(PodRequest(share, 16),
                                                                          {HOSTNAME: node})}
    _pinned(h, node, f"{app}-driver", share, app=app, role="driver", annotations=annotations)
    _pinned(h, node, "old-0", share - 10)
    h.wait(lambda: h.node_of(f"{app}-driver") == node and h.node_of("old-0") == node, what="old pods bound")
    assert loop.scheduler.reservations().get(app)  # room held for the executor that never comes
    lists_before = loop.pod_informer.stats.lists
    cp.restart(keep_state=False)
    names = [f"new-{i}" for i in range(3)]
    for name in names:
        _pinned(h, node, name, share - 10)
    h.wait(lambda: all(h.node_of(n) == node for n in names), timeout=30, what="new pods bound after state loss")
    assert loop.pod_informer.stats.lists > lists_before
    cached = {p.key for p in loop.cache.pods()}
    assert f"{h.namespace}/old-0" not in cached and f"{h.namespace}/{app}-driver" not in cached
    h.wait(lambda: not loop.scheduler.reservations().get(app), what="reservations of the vanished gang dropped")


def restart_mid_bind(h: Harness, cp: ControlPlane, block_binds: Callable[[], None]) -> None:
    """The API server goes away while binds are in flight and comes back from a snapshot taken before
    them: every pod is bound exactly once, and no assumed bind of the old server holds room."""
    loop = h.loop()
    node = h.schedulable_node(loop)
    share = h.free_cpu(loop, node) // 4
    block_binds()
    snapshot = [_pinned(h, node, f"p-{i}", share - 10) for i in range(4)]
    h.wait(lambda: loop.stats.bind_failed + loop.stats.bind_lost >= 1 or loop.stats.binds >= 1, timeout=20,
           what="binds attempted")
    cp.restart(keep_state=False, restore=snapshot)
    h.wait(lambda: all(h.node_of(f"p-{i}") == node for i in range(4)), timeout=30,
           what="all pods bound after the restart")
    time.sleep(0.5)
    for i in range(4):
        assert h.reasons_for(f"p-{i}").count("Scheduled") == 1
    assert not loop.cache._assumed or all(k.startswith(f"{h.namespace}/p-") for k in loop.cache._assumed)


def network_drop(h: Harness, cp: ControlPlane) -> None:
    """Watches cut by the network resume from where they were (no fresh list) and miss nothing."""
    loop = h.loop()
    node = h.schedulable_node(loop)
    _pinned(h, node, "before", 10)
    h.wait(lambda: h.node_of("before") == node, what="first pod bound")
    lists = loop.pod_informer.stats.lists
    assert cp.drop_watches() >= 2
    _pinned(h, node, "during", 10)
    assert cp.drop_watches() >= 0
    _pinned(h, node, "after", 10)
    h.wait(lambda: h.node_of("during") == node and h.node_of("after") == node, what="pods after the drop bound")
    assert loop.pod_informer.stats.lists == lists
    assert loop.pod_informer.stats.relists_forgot == 0


def apiserver_restart(h: Harness, cp: ControlPlane) -> None:
    """The API server restarts with its state intact: bigk carries on, forgetting nothing it should keep."""
    loop = h.loop()
    node = h.schedulable_node(loop)
    _pinned(h, node, "before", 10)
    h.wait(lambda: h.node_of("before") == node and "Scheduled" in h.reasons_for("before"), what="first pod bound")
    cp.restart(keep_state=True)
    _pinned(h, node, "after", 10)
    h.wait(lambda: h.node_of("after") == node, timeout=30, what="pod created after the restart bound")
    assert f"{h.namespace}/before" in {p.key for p in loop.cache.pods()}
    assert h.reasons_for("before").count("Scheduled") == 1  # not bound a second time
