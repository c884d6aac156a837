"""The policy learns the workload to expect from the snapshots, unless its owner configured it."""

import numpy as np

from bigk.cluster.model import PodRequest
from bigk.cluster.state import ClusterState, Placement
from bigk.scheduler import Scheduler, Snapshot

from .helpers import cpu_node, pod


class _Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[int] = []

    def select(self, state: ClusterState, req: PodRequest, feasible: np.ndarray,
               now: float | None = None) -> Placement | None:
        return state.placement_for(int(np.argmax(feasible)), req, ())

    def observe_workload(self, requests: list[PodRequest]) -> None:
        self.seen.append(len(requests))


def test_workload_is_refreshed_when_pods_double_or_time_passes() -> None:
    rec = _Recorder()
    sched = Scheduler(rec, workload_refresh_s=100)
    nodes = [cpu_node("c0")]
    sched.cycle(Snapshot(nodes, [pod("a"), pod("b")]), 0)
    sched.cycle(Snapshot(nodes, [pod("a"), pod("b"), pod("c")]), 10)
    sched.cycle(Snapshot(nodes, [pod(f"p{i}") for i in range(4)]), 20)
    sched.cycle(Snapshot(nodes, [pod(f"p{i}") for i in range(4)]), 130)
    assert rec.seen == [2, 4, 4]


def test_a_configured_policy_instance_is_left_alone() -> None:
    rec = _Recorder()
    sched = Scheduler(rec)
    sched.cycle(Snapshot([cpu_node("c0")], [pod("a")]), 0)
    assert rec.seen == []
