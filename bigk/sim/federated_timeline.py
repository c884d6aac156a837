"""Queue waits across clusters: the timeline protocol with every arriving pod dispatched to one cluster.

`bigk simulate --protocol timeline --split N` (issue 18). Nodes are spread over N clusters as for the
inflation protocol (`bigk.sim.federation.split_nodes`; nodes without GPUs dealt round robin), after the
same seeded node shuffle as `run_timeline`. Each cluster runs its own `Scheduler` (its own queue, the
same policy), as `bigk serve` will with one scheduling loop per cluster. When pods arrive, each is
dispatched once, at arrival, by `bigk.scheduler.dispatch` on a copy of every cluster's accounted state
(what its scheduler holds after its last cycle, less the pods that left and plus the pods dispatched
there at this instant) and the
demand already waiting there: where it fits now, else where it is expected to start soonest (the
backlog estimate). It then waits in that cluster's queue until it runs or its deletion time comes;
it is never moved to another cluster. A pod no cluster could ever hold never runs. With `when="late"`
(`--dispatch late`) a pod is dispatched only once it fits now in some cluster: until then it is held,
in arrival order, and tried again whenever pods arrive or leave (shapes that fit nowhere are not tried
twice in one instant); `hold_limit_s` bounds the hold (then it queues where it should start soonest).
The baseline is `run_timeline` on one cluster of all the nodes, with the same seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from bigk.cluster.model import MILLI_GPU, Gang, Node, Pod
from bigk.cluster.state import ClusterState
from bigk.cluster.usage import ZERO, Usage
from bigk.scheduler.core import Scheduler
from bigk.scheduler.dispatch import ClusterView, Fill, dispatch
from bigk.scheduler.types import Snapshot
from bigk.sim.federation import split_nodes
from bigk.sim.inflation import seeded_policy
from bigk.sim.timeline import Tally, TimelineRun, replay_events
from bigk.sim.trace import TracePod

DISPATCH_WHEN = ("once", "late")


class _Cluster:
    """One cluster of the replay: its nodes, scheduler, live pods and the demand waiting in its queue."""

    def __init__(self, name: str, nodes: list[Node], policy_name: str, seed: int, workload: list) -> None:
        self.name = name
        self.nodes = nodes
        policy = seeded_policy(policy_name, seed)
        policy.observe_workload(workload)
        self.sched = Scheduler(policy)
        self.trial_policy = seeded_policy(policy_name, seed)  # the dispatcher's trials: its own caches
        self.trial_policy.observe_workload(workload)
        self.live: dict[str, Pod] = {}
        self.waiting: set[str] = set()
        self.queued = ZERO

    def view(self, gone: list[str]) -> ClusterView:
        """A copy of the accounted state, less the pods that left at this instant (before this cluster's cycle)."""
        state = self.sched.state
        copy = state.snapshot() if state is not None else ClusterState(self.nodes)
        for key in gone:
            copy.release(key)
        return ClusterView(self.name, copy, policy=self.trial_policy, queued=self.queued)

    def add_waiting(self, pod: Pod, sign: int) -> None:
        self.queued += Usage.of_request(pod.request) * sign


def run_timeline_federated(nodes: Sequence[Node], pods: Sequence[TracePod], policy_name: str, seed: int,
                           clusters: int, split: str = "model", fill: Fill = "spread",
                           progress: Callable[[int, int], None] | None = None, speedup: float = 1.0,
                           when: str = "once", hold_limit_s: float | None = None
                           ) -> tuple[TimelineRun, list[int]]:
    """Replay the trace over `clusters` clusters; the run (as `run_timeline`'s) and the pods each cluster took.

    `when`: "once" dispatches every pod at its arrival (module docstring); "late" dispatches a pod only once it
    fits now somewhere, holding it (in arrival order) until then and trying again whenever pods arrive or leave;
    with `hold_limit_s`, a pod held that long is dispatched where it is expected to start soonest and queues
    there (its cluster's scheduler then holds room for it when it is the head of that queue).
    """
    if when not in DISPATCH_WHEN:
        raise ValueError(f"unknown dispatch mode {when!r}; use {' or '.join(DISPATCH_WHEN)}")
    started = time.perf_counter()
    objs, events = replay_events(pods, speedup)
    rng = np.random.default_rng(seed)
    node_list = [nodes[i] for i in rng.permutation(len(nodes))]  # the same shuffle as run_timeline
    capacity = sum(len(n.gpus) for n in node_list) * MILLI_GPU
    workload = [p.request for p in pods]
    fleet = [_Cluster(f"c{k}", part, policy_name, seed, workload)
             for k, part in enumerate(split_nodes(node_list, clusters, split))]
    by_name = {c.name: c for c in fleet}

    home: dict[str, _Cluster] = {}  # pod key -> the cluster it was dispatched to
    held: dict[str, Pod] = {}  # "late": pods not dispatched yet, in arrival order
    taken = [0] * len(fleet)
    tally = Tally(capacity)
    k = 0
    while k < len(events):
        now = events[k][0]
        touched: set[str] = set()  # clusters with arrivals, or departures while pods wait: they cycle
        left: set[str] = set()
        gone: dict[str, list[str]] = {}  # bound pods that left at this instant, per cluster
        views: dict[str, ClusterView] | None = None
        while k < len(events) and events[k][0] == now:
            _, kind, i = events[k]
            pod = objs[i]
            if kind == 1 and when == "late":
                held[pod.key] = pod
            elif kind == 1:
                if views is None:  # departures of this instant sort first: they are all known here
                    views = {c.name: c.view(gone.get(c.name, [])) for c in fleet}
                choice = dispatch(Gang(pod.key, pod.queue, pod.priority, pod.request, pod.request, 0),
                                  list(views.values()), fill=fill, keep=True, now=now)
                if choice.cluster is None:
                    tally.never += 1  # no cluster could ever hold it
                else:
                    cluster = by_name[choice.cluster]
                    home[pod.key] = cluster
                    taken[fleet.index(cluster)] += 1
                    cluster.live[pod.key] = pod
                    cluster.waiting.add(pod.key)
                    cluster.add_waiting(pod, 1)
                    touched.add(cluster.name)
                    if choice.how != "fits-now":  # not placed on the view's copy: count it as queued there
                        v = views[cluster.name]
                        v.queued += Usage.of_request(pod.request)
            elif pod.key in held:  # "late": it left before any cluster could take it
                del held[pod.key]
                tally.never += 1
            else:
                cluster = home.get(pod.key)  # type: ignore[assignment]
                if cluster is not None and pod.key in cluster.live:
                    del cluster.live[pod.key]
                    if pod.key in cluster.waiting:
                        cluster.waiting.discard(pod.key)
                        cluster.add_waiting(pod, -1)
                        tally.never += 1
                    else:
                        tally.allocated -= pod.request.total_gpu_milli
                        gone.setdefault(cluster.name, []).append(pod.key)
                    left.add(cluster.name)
            k += 1
        touched |= {name for name in left if by_name[name].waiting}  # room freed or the queue changed
        if held:
            if views is None:
                views = {c.name: c.view(gone.get(c.name, [])) for c in fleet}
            failed: set[object] = set()  # shapes that fit nowhere now (room only shrinks within an instant)
            for key, pod in list(held.items()):
                overdue = hold_limit_s is not None and now - pod.created_at >= hold_limit_s
                if pod.request in failed and not overdue:
                    continue
                choice = dispatch(Gang(pod.key, pod.queue, pod.priority, pod.request, pod.request, 0),
                                  list(views.values()), fill=fill, keep=True, now=now)
                if choice.cluster is not None and (choice.how == "fits-now" or overdue):
                    del held[key]
                    if choice.how != "fits-now":  # held too long: it queues where it should start soonest
                        v = views[choice.cluster]
                        v.queued += Usage.of_request(pod.request)
                    cluster = by_name[choice.cluster]
                    home[key] = cluster
                    taken[fleet.index(cluster)] += 1
                    cluster.live[key] = pod
                    cluster.waiting.add(key)
                    cluster.add_waiting(pod, 1)
                    touched.add(cluster.name)
                elif choice.cluster is None:
                    del held[key]
                    tally.never += 1  # no cluster could ever hold it
                else:
                    failed.add(pod.request)
        for cluster in fleet:
            if cluster.name not in touched:
                continue
            result = cluster.sched.cycle(Snapshot(cluster.nodes, list(cluster.live.values())), now)
            tally.cycles += 1
            for bind in result.binds:
                bound = cluster.live.get(bind.pod_key)
                if bound is None:
                    continue
                bound.node, bound.gpus = bind.node, bind.gpus
                if bind.pod_key in cluster.waiting:
                    cluster.waiting.discard(bind.pod_key)
                    cluster.add_waiting(bound, -1)
                tally.bound(bound, now)
        tally.sample(now, sum(len(c.waiting) for c in fleet) + len(held))
        if progress is not None and k % 500 < 2:
            progress(k, len(events))
    if progress is not None:
        progress(len(events), len(events))
    return tally.run(policy_name, seed, len(objs), sum(len(c.waiting) for c in fleet) + len(held), started), taken
