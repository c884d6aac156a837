"""The timeline protocol: pods arrive and leave at their trace times through bigk's scheduler core.

Every trace pod arrives at its `creation_time` and leaves at its
`deletion_time`. At each instant where pods arrive (or leave while others
wait), one `Scheduler.cycle` runs on a `Snapshot` of the cluster, exactly as
`bigk serve` runs it: pods that do not fit wait in bigk's queue and are retried
in later cycles as capacity frees. A pod whose deletion time comes while it
still waits never ran. We report queue waits, GPU allocation over time and how
many pods never ran. Seeds shuffle the node order (which breaks ties).

`speedup` compresses arrival times (each pod keeps its duration), to replay a
trace at a higher load: the default Alibaba trace, replayed as recorded, never
has more than 56 pods at once and uses under 1% of its cluster's GPUs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from bigk.cluster.model import MILLI_GPU, Node, Pod
from bigk.scheduler.core import Scheduler
from bigk.scheduler.types import Snapshot
from bigk.sim.inflation import seeded_policy
from bigk.sim.trace import TracePod

MAX_SERIES_POINTS = 600


@dataclass
class TimelineRun:
    policy: str
    seed: int
    pods: int
    ran: int
    never_ran: int
    waits_s: list[float]
    times: list[float] = field(default_factory=list)
    gpu_alloc_pct: list[float] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)
    cycles: int = 0
    seconds: float = 0.0


@dataclass
class Tally:
    """What a timeline replay counts as it goes (one cluster or several); `run` makes its TimelineRun."""

    capacity: int  # milli-GPU of every node replayed
    waits: list[float] = field(default_factory=list)
    never: int = 0
    allocated: int = 0  # milli-GPU of the pods running
    cycles: int = 0
    times: list[float] = field(default_factory=list)
    alloc: list[float] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)

    def bound(self, pod: Pod, now: float) -> None:
        """`pod` starts at `now`: its wait ends and its GPUs count as allocated."""
        self.waits.append(now - pod.created_at)
        self.allocated += pod.request.total_gpu_milli

    def sample(self, now: float, waiting: int) -> None:
        """One point of the series after the instant `now`, with `waiting` pods waiting."""
        self.times.append(now)
        self.alloc.append(100.0 * self.allocated / self.capacity if self.capacity else 0.0)
        self.pending.append(waiting)

    def run(self, policy_name: str, seed: int, pods: int, waiting: int, started: float) -> TimelineRun:
        """The run, once the replay is over; the `waiting` pods left never ran."""
        step = max(1, len(self.times) // MAX_SERIES_POINTS)
        return TimelineRun(policy_name, seed, pods, len(self.waits), self.never + waiting, self.waits,
                           self.times[::step], self.alloc[::step], self.pending[::step], self.cycles,
                           time.perf_counter() - started)


Event = tuple[float, int, int]  # (time, 0 = leave / 1 = arrive, pod index)


def replay_events(pods: Sequence[TracePod], speedup: float) -> tuple[list[Pod], list[Event]]:
    """The pods with a creation time as `Pod`s (NAME-INDEX, created when the replay has them arrive) and their
    arrivals and departures in replay order; times after the first arrival are divided by `speedup`.

    Raises ValueError when no pod has a creation time.
    """
    timed = [p for p in pods if p.created is not None]
    if not timed:
        raise ValueError("the timeline protocol needs creation_time on the pods")
    events: list[Event] = []
    objs: list[Pod] = []
    origin = min(float(p.created) for p in timed)  # type: ignore[arg-type]
    for i, tp in enumerate(timed):
        recorded = float(tp.created)  # type: ignore[arg-type]
        created = origin + (recorded - origin) / speedup
        objs.append(Pod(f"{tp.name}-{i}", tp.request, created_at=created))
        events.append((created, 1, i))
        if tp.deleted is not None:
            # a pod that leaves the instant it arrives still gets that instant's cycle
            events.append((created + max(tp.deleted - recorded, 1e-6), 0, i))
    events.sort()
    return objs, events


def run_timeline(nodes: Sequence[Node], pods: Sequence[TracePod], policy_name: str, seed: int,
                 progress: Callable[[int, int], None] | None = None, speedup: float = 1.0) -> TimelineRun:
    """Replay the trace's arrivals and departures through `Scheduler.cycle`."""
    started = time.perf_counter()
    objs, events = replay_events(pods, speedup)
    rng = np.random.default_rng(seed)
    node_list = [nodes[i] for i in rng.permutation(len(nodes))]
    capacity = sum(len(n.gpus) for n in node_list) * MILLI_GPU
    policy = seeded_policy(policy_name, seed)
    policy.observe_workload([p.request for p in pods])
    sched = Scheduler(policy)

    live: dict[str, Pod] = {}
    waiting: set[str] = set()
    tally = Tally(capacity)
    k = 0
    while k < len(events):
        now = events[k][0]
        arrived = left = False
        while k < len(events) and events[k][0] == now:
            _, kind, i = events[k]
            pod = objs[i]
            if kind == 1:
                live[pod.key] = pod
                waiting.add(pod.key)
                arrived = True
            elif pod.key in live:
                del live[pod.key]
                left = True
                if pod.key in waiting:
                    waiting.discard(pod.key)
                    tally.never += 1
                else:
                    tally.allocated -= pod.request.total_gpu_milli
            k += 1
        if arrived or (left and waiting):
            result = sched.cycle(Snapshot(node_list, list(live.values())), now)
            tally.cycles += 1
            for bind in result.binds:
                bound = live.get(bind.pod_key)
                if bound is None:
                    continue
                bound.node, bound.gpus = bind.node, bind.gpus
                waiting.discard(bind.pod_key)
                tally.bound(bound, now)
        tally.sample(now, len(waiting))
        if progress is not None and k % 500 < 2:
            progress(k, len(events))
    if progress is not None:
        progress(len(events), len(events))
    return tally.run(policy_name, seed, len(objs), len(waiting), started)


def run_timeline_sweep(nodes: Sequence[Node], pods: Sequence[TracePod], policies: Sequence[str],
                       seeds: Sequence[int],
                       progress: Callable[[str, int], Callable[[int, int], None]] | None = None,
                       speedup: float = 1.0) -> dict[str, list[TimelineRun]]:
    runs: dict[str, list[TimelineRun]] = {}
    for policy in policies:
        runs[policy] = [run_timeline(nodes, pods, policy, seed, None if progress is None else progress(policy, seed),
                                     speedup) for seed in seeds]
    return runs
