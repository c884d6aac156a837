"""When will each waiting unit start? Run the scheduling cycle forward on a copy of the cluster.

A forecast plays `Scheduler.cycle` forward in simulated time on a copy of a
snapshot: running units (gangs or lone pods) end at their expected times, units
that start then run for their expected duration, scheduled arrivals (cron fires)
join the queue at their times, and reservations, queue order, backfill and
preemption act exactly as the live scheduler would, because it *is* the live
scheduling code (a fresh `Scheduler` from `make_scheduler`; the live one is never
touched). Nothing here reads a clock or does I/O.

Uncertainty comes from durations only. Every duration is given at three
quantiles (`Spread`: p10, p50, p90). The forward run uses the p50s; it says
when and where each unit starts and which units' ends let it start (its
blockers). The range follows that chain: a unit's p10 (p90) start is the
latest p10 (p90) end of its blockers, and its p10 (p90) end adds its own p10
(p90) duration, so the range widens with every unit ahead of it in line. (One
run instead of one per quantile: three times cheaper, and the range keeps the
p50 run's order.)

Cost is bounded: events closer together than `eps` of their distance from now
(and at least `min_step_s`) are applied in one cycle, and a run stops once
every target started. Admitted gangs keep their executors' reservations until
they end (the forward scheduler's reservation TTL is unbounded), which stands
for the executors Spark would create, without a second cycle per admission.
Units are keyed as the scheduler keys them: the gang id (Spark application
id), or "namespace/name" for a pod without a gang.
"""

from __future__ import annotations

import heapq
import itertools
import math
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from statistics import NormalDist

import numpy as np

from bigk.cluster.model import Gang, Node, Pod, PodConstraints, PodRequest, Role, Toleration
from bigk.cluster.state import ClusterState, OvercommitError
from bigk.scheduler.core import Scheduler
from bigk.scheduler.types import CycleResult, ReservedSlot, Snapshot

_NORMAL = NormalDist()
_Z90 = _NORMAL.inv_cdf(0.9)
DEFAULT_HORIZON_S = 14 * 86400.0
# Several forward runs with drawn durations (forecast(runs=...)) while the snapshot is small; one above.
DRAWN_RUNS = 5
DRAWN_RUNS_MAX_PODS = 2_000
# The exact forward run stops once its cycles have looked at this many pods in all (the sum over cycles of
# the snapshot's pods: what a cycle costs grows with them); the units still waiting then go to the tail.
DEFAULT_BUDGET_POD_CYCLES = 40_000
FOLLOW_UPS = 4  # extra cycles at one instant after evictions (the preemptor starts once its victims are gone)
FOREVER = 1e15  # the forward scheduler's reservation TTL: an admitted gang's reserved executors last until it ends


@dataclass(frozen=True)
class Spread:
    """A duration in seconds at three quantiles: p10 (`low`), p50 (`mid`), p90 (`high`)."""

    low: float
    mid: float
    high: float

    def shifted(self, by: float) -> Spread:
        return Spread(self.low + by, self.mid + by, self.high + by)

    @classmethod
    def fixed(cls, seconds: float) -> Spread:
        return cls(seconds, seconds, seconds)

    def at(self, u: float) -> float:
        """The duration at quantile `u` (0..1): log-normal through p10, p50, p90 on either side of p50 (in
        log(1 + seconds)), so a draw can fall outside p10..p90 as often as the spread says."""
        z = _NORMAL.inv_cdf(min(0.995, max(0.005, u)))
        lo, mid, hi = (math.log1p(max(0.0, x)) for x in (self.low, self.mid, self.high))
        width = (mid - lo) if z < 0 else (hi - mid)
        return math.expm1(mid + z * width / _Z90)

    @classmethod
    def of(cls, samples: Sequence[float] | np.ndarray) -> Spread:
        """p10, p50, p90 of observed durations (linear interpolation, as numpy's default)."""
        lo, mid, hi = np.percentile(np.asarray(samples, dtype=float), [10, 50, 90])
        return cls(float(lo), float(mid), float(hi))


MIN_SAMPLES = 3  # durations of a job needed before its history, not its spec, says how long it runs
EXPECTED_SPREAD = (0.8, 1.0, 1.5)  # p10, p50, p90 as factors of a spec's expected duration, before any history


MIN_POOLED = 20  # durations of all jobs together needed before they stand in for a job with no history


def duration_spread(samples: Sequence[float] | np.ndarray, expected: float | None, default: float,
                    pooled: Sequence[float] | np.ndarray = (), running: Sequence[float] | np.ndarray = (),
                    pooled_running: Sequence[float] | np.ndarray = ()) -> Spread:
    """How long a run of a job lasts: its history's quantiles once it has `MIN_SAMPLES` runs, else the spec's
    expected duration with a fixed spread, else the durations of all jobs (`pooled`, once there are
    `MIN_POOLED`), else `default` with the fixed spread. `running` (`pooled_running`): how long the job's
    (all jobs') runs still running have run so far; given, the history is read as a survival curve that
    counts them (`Survival`), not only the runs that finished."""
    if len(samples) >= MIN_SAMPLES:
        return Survival(samples, running).remaining(0.0) if len(running) else Spread.of(samples)
    if not expected and len(pooled) >= MIN_POOLED:
        return Survival(pooled, pooled_running).remaining(0.0) if len(pooled_running) else Spread.of(pooled)
    base = float(expected) if expected else default
    return Spread(*(base * f for f in EXPECTED_SPREAD))


def remaining_spread(samples: Sequence[float] | np.ndarray, expected: float | None, default: float,
                     elapsed: float, pooled: Sequence[float] | np.ndarray = (),
                     running: Sequence[float] | np.ndarray = (),
                     pooled_running: Sequence[float] | np.ndarray = ()) -> Spread:
    """How much longer a run that has run `elapsed` s lasts (same sources as `duration_spread`)."""
    if len(samples) >= MIN_SAMPLES:
        return Survival(samples, running).remaining(elapsed) if len(running) else remaining(samples, elapsed)
    if not expected and len(pooled) >= MIN_POOLED:
        return (Survival(pooled, pooled_running).remaining(elapsed) if len(pooled_running)
                else remaining(pooled, elapsed))
    full = duration_spread(samples, expected, default)
    if elapsed < full.high:
        return Spread(max(0.0, full.low - elapsed), max(0.0, full.mid - elapsed), full.high - elapsed)
    return Spread(0.0, 0.1 * full.mid, 0.5 * full.mid)


def remaining(samples: Sequence[float] | np.ndarray, elapsed: float) -> Spread:
    """How much longer something runs that has run `elapsed` s, from durations of its kind: the quantiles of
    those that lasted longer, less `elapsed`. Past every sample, the samples say nothing (early in a history
    only the short runs have finished): like heavy-tailed job lengths, it is taken to run about as long again
    (p10..p90 a quarter to four times what it has run)."""
    arr = np.asarray(samples, dtype=float)
    longer = arr[arr > elapsed] - elapsed
    if len(longer):
        return Spread.of(longer)
    return Spread(0.25 * elapsed, elapsed, 4.0 * elapsed)


class Survival:
    """How long runs of a kind last, from the finished ones (`finished`, their durations) and those still
    running (`running`, how long each has run so far: it will last at least that long): the Kaplan-Meier
    estimate. A history of finished runs alone is biased short while long runs are still going (early in
    a history, only the short ones have finished); counting the running ones as censored removes that bias.

    Beyond the longest run seen, the curve is unknown: it is continued as a Pareto tail of index 1 (the
    chance to last past t falls as 1/t), the heavy tail of job lengths, under which a run lasts about as
    long again as it has so far."""

    def __init__(self, finished: Sequence[float] | np.ndarray, running: Sequence[float] | np.ndarray = ()) -> None:
        done = np.asarray(finished, dtype=float)
        going = np.asarray(running, dtype=float)
        times = np.concatenate([done, going])
        ended = np.concatenate([np.ones(len(done)), np.zeros(len(going))])
        order = np.lexsort((-ended, times))  # at equal times, ends before the censored (the usual convention)
        self.times = times[order]
        at_risk = len(times) - np.arange(len(times))
        self.surv = np.cumprod(1.0 - ended[order] / np.maximum(at_risk, 1))  # S just after each time

    def _s(self, t: float) -> float:
        """S(t): the share lasting longer than t."""
        i = int(np.searchsorted(self.times, t, side="right"))
        return 1.0 if i == 0 else float(self.surv[i - 1])

    def remaining(self, elapsed: float, quantiles: Sequence[float] = (0.1, 0.5, 0.9)) -> Spread:
        """p10, p50, p90 of how much longer a run lasts that has lasted `elapsed` s."""
        if not len(self.times):
            return Spread(0.25 * elapsed, elapsed, 4.0 * elapsed)
        s_e = self._s(elapsed)
        last = float(self.times[-1])
        out = []
        for q in quantiles:
            level = s_e * (1.0 - q)
            hits = np.flatnonzero((self.times > elapsed) & (self.surv <= level + 1e-12))
            if len(hits) and s_e > 0:
                out.append(float(self.times[hits[0]]) - elapsed)
            else:  # not reached within what was seen: the Pareto tail past the longest run
                base = max(last, elapsed, 1.0)
                share = self._s(base) / s_e if s_e > 0 else 1.0  # of those past `elapsed`, the share past `base`
                out.append(max(0.0, base * share / (1.0 - q) - elapsed))
        return Spread(*sorted(out))


@dataclass
class Arrival:
    """A unit that will join the queue at `at` (a cron fire): its pods (pending), its gang if any."""

    at: float
    key: str
    pods: list[Pod]
    gang: Gang | None = None
    runs_for: Spread | None = None


@dataclass
class ForecastInput:
    """What a forecast starts from.

    `ends`: per running unit, its remaining time (a unit missing here never ends: its room stays taken).
    `durations`: per waiting (or arriving) unit, how long it runs once started (else `default_duration`).
    """

    snapshot: Snapshot
    now: float
    ends: dict[str, Spread] = field(default_factory=dict)
    durations: dict[str, Spread] = field(default_factory=dict)
    arrivals: list[Arrival] = field(default_factory=list)
    default_duration: Spread = field(default_factory=lambda: Spread(300.0, 600.0, 1800.0))
    # "median": every unit runs for its p50; "spread": each unit for a draw from its spread at a quantile fixed
    # by its name (`draw_of`), so that among many units some end early and some late, as they will.
    draws: str = "median"


@dataclass(frozen=True)
class Estimate:
    """When a waiting unit starts, per the forward runs, and why then.

    `start` is the p50 run's start (None: not within the horizon, or never); `low`/`high` the range.
    `placement` (p50 run) lists (node, GPU indices) per pod placed at its start; `after` names the
    units whose end let it start; `freed` says what frees up where; `preempts` the units evicted for it.
    """

    key: str
    queue: str
    priority: int
    created_at: float
    start: float | None
    low: float | None
    high: float | None
    position: int = 0  # 1-based, among all waiting units, by estimated start
    queue_position: int = 0  # 1-based, within its queue, in the queue's own order (priority, then age)
    placement: tuple[tuple[str, tuple[int, ...]], ...] = ()
    after: tuple[str, ...] = ()
    freed: str = ""
    preempts: tuple[str, ...] = ()
    state: str = "waiting"  # "now" | "waiting" | "beyond-horizon"
    method: str = "cycle"  # "cycle": the scheduler's own cycles placed it; "tail": the cheap tail (beyond the budget)

    def waits_for(self, now: float) -> str:
        """One line: what it waits for (or that it would start now)."""
        if self.start is None:
            return "no start within the forecast horizon (it may never fit, or nothing it waits for ends)"
        if self.state == "now":
            where = ", ".join(_where(n, g) for n, g in _by_node(self.placement)[:3])
            extra = f", preempting {', '.join(self.preempts[:3])}" if self.preempts else ""
            return f"would start now on {where}{extra}" if where else "would start now"
        text = f"when {self.freed}" if self.freed else "when room frees up"
        if self.after:
            more = f" and {len(self.after) - 2} more" if len(self.after) > 2 else ""
            text += f", after {' and '.join(self.after[:2])}{more} finish{'es' if len(self.after) == 1 else ''}"
        if self.preempts:
            text += f", preempting {', '.join(self.preempts[:3])}"
        return text


@dataclass
class Forecast:
    """Estimates per waiting unit, plus what the forward runs cost."""

    now: float
    estimates: dict[str, Estimate]
    cycles: int = 0
    tail: int = 0  # units whose start the tail estimated


def _by_node(placement: Sequence[tuple[str, tuple[int, ...]]]) -> list[tuple[str, tuple[int, ...]]]:
    """Pods' (node, GPUs) merged per node, in first-use order."""
    merged: dict[str, tuple[int, ...]] = {}
    for node, gpus in placement:
        merged[node] = merged.get(node, ()) + tuple(gpus)
    return [(n, tuple(sorted(g))) for n, g in merged.items()]


def _where(node: str, gpus: tuple[int, ...]) -> str:
    return f"{node} (GPUs {','.join(map(str, gpus))})" if gpus else node


def draw_of(unit: str, run: int = 0, runs: int = 1) -> float:
    """The quantile of its spread that `unit` draws in forward run `run` of `runs`: the midpoints of `runs`
    equal strata (with 5 runs: 0.1, 0.3, 0.5, 0.7, 0.9), each taken once across the runs, in an order shifted
    by the unit's name (the same in every forecast), so that within one run units draw every stratum alike.
    One run: the median."""
    shift = zlib.crc32(unit.encode()) % runs
    return ((shift + run) % runs + 0.5) / runs


def unit_of(pod: Pod) -> str:
    """The key the scheduler gives a pod's unit."""
    return pod.gang or pod.key


@dataclass
class _Started:
    at: float
    placement: list[tuple[str, tuple[int, ...]]]
    after: list[str]
    freed: str
    preempts: list[str]
    range: Spread  # start at p10 / p50 / p90 along the chain of blockers


class _Run:
    """The forward run (p50 durations), recording each start and the ends that allowed it."""

    def __init__(self, inp: ForecastInput, sched: Scheduler, nodes: dict[str, Node], run: int = 0,
                 runs: int = 1) -> None:
        self.inp = inp
        self.run, self.runs = run, runs  # this is run `run` of `runs` (the strata its units draw)
        self.sched = sched
        sched.reservation_ttl_s = FOREVER
        self.nodes = nodes
        snap = inp.snapshot
        self.pods: dict[str, Pod] = {}
        self.members: dict[str, list[str]] = {}
        self.gangs: dict[str, Gang] = dict(snap.gangs)
        self.meta: dict[str, tuple[str, int, float]] = {}  # unit -> (queue, priority, created)
        self.waiting: set[str] = set()
        for pod in snap.pods:
            self._add(pod if pod.node else replace(pod))
        self.events: list[tuple[float, int, int, str]] = []  # (time, order, kind 0 end / 1 arrive, unit)
        self.seq = itertools.count()
        self.arrivals = {a.key: a for a in inp.arrivals}
        now = inp.now
        self.ends: dict[str, Spread] = {}  # unit -> when it ends, at p10 / p50 / p90 (absolute)
        for unit in self.members:
            if unit in self.waiting:
                continue
            remaining = inp.ends.get(unit)
            if remaining is not None:
                mid = self._draw(unit, remaining)
                self.ends[unit] = Spread(now + max(0.0, remaining.low), now + max(0.0, mid),
                                         now + max(0.0, remaining.high))
                self._push(self.ends[unit].mid, 0, unit)
        for a in inp.arrivals:
            self._push(a.at, 1, a.key)
        self.started: dict[str, _Started] = {}
        self.ended_now: list[tuple[str, list[tuple[str, tuple[int, ...]]]]] = []
        self.cycles = 0
        self.pod_cycles = 0  # sum over cycles of the snapshot's pods
        self.preempting: dict[str, list[str]] = {}  # preemptor -> victim units, until it starts
        self.reserved: dict[str, list[ReservedSlot]] = {}  # per gang, after the last cycle
        self.tail: set[str] = set()  # units whose start the tail estimated

    # -- bookkeeping --------------------------------------------------------------------------
    def _push(self, at: float, kind: int, unit: str) -> None:
        heapq.heappush(self.events, (at, next(self.seq), kind, unit))

    def _add(self, pod: Pod) -> None:
        unit = unit_of(pod)
        self.pods[pod.key] = pod
        self.members.setdefault(unit, []).append(pod.key)
        if unit not in self.meta:
            gang = self.gangs.get(pod.gang) if pod.gang else None
            self.meta[unit] = ((gang.queue, gang.priority, gang.created_at or pod.created_at) if gang else
                               (pod.queue, pod.priority, pod.created_at))
        if not pod.node and (not pod.gang or pod.role is Role.DRIVER or pod.gang not in self.gangs):
            self.waiting.add(unit)

    def _remove(self, unit: str) -> list[tuple[str, tuple[int, ...]]]:
        held = []
        for key in self.members.pop(unit, []):
            pod = self.pods.pop(key, None)
            if pod is not None and pod.node:
                held.append((pod.node, pod.gpus))
        self.waiting.discard(unit)
        return held

    def _arrive(self, unit: str, at: float) -> None:
        a = self.arrivals[unit]
        if a.gang is not None:
            self.gangs[a.gang.name] = replace(a.gang, created_at=at)
        for pod in a.pods:
            self._add(replace(pod, created_at=at, node="", gpus=()))

    def _draw(self, unit: str, spread: Spread) -> float:
        """How long the forward run lets `unit` run (or go on running): its p50, or a draw (`draws`)."""
        return spread.mid if self.inp.draws == "median" else spread.at(draw_of(unit, self.run, self.runs))

    def _duration(self, unit: str) -> Spread:
        spread = self.inp.durations.get(unit)
        if spread is None and unit in self.arrivals:
            spread = self.arrivals[unit].runs_for
        d = spread or self.inp.default_duration
        return Spread(max(0.0, d.low), max(0.0, d.mid), max(0.0, d.high))

    # -- cycles -------------------------------------------------------------------------------
    def recover(self, now: float) -> None:
        """Reserve the missing executors of the gangs already admitted before any waiting unit is taken. The live
        scheduler holds them reserved from admission until Spark creates the executors; a fresh one takes them
        back in queue order, where a waiting gang created in the same second could take their room first."""
        if not self.waiting or not self._short_of_executors():
            return
        admitted = [p for p in self.pods.values() if unit_of(p) not in self.waiting]
        snap = Snapshot(self.inp.snapshot.nodes, admitted, self.inp.snapshot.queues, self.gangs)
        result = self.sched.cycle(snap, now)
        self.cycles += 1
        self.pod_cycles += len(admitted)
        self.reserved = result.reservations
        self._apply(result, now)

    def _short_of_executors(self) -> bool:
        """Whether a gang whose driver is bound has fewer executors bound than its minimum."""
        bound: dict[str, int] = {}
        drivers: set[str] = set()
        for p in self.pods.values():
            if p.gang and p.node:
                if p.role is Role.DRIVER:
                    drivers.add(p.gang)
                elif p.role is Role.EXECUTOR:
                    bound[p.gang] = bound.get(p.gang, 0) + 1
        return any(g in self.gangs and bound.get(g, 0) < self.gangs[g].min_executors for g in drivers)

    def cycle(self, now: float) -> None:
        for _ in range(1 + FOLLOW_UPS):
            snap = Snapshot(self.inp.snapshot.nodes, list(self.pods.values()), self.inp.snapshot.queues, self.gangs)
            result = self.sched.cycle(snap, now)
            self.cycles += 1
            self.pod_cycles += len(snap.pods)
            self.reserved = result.reservations
            again = self._apply(result, now)
            if not again:
                return

    def _apply(self, result: CycleResult, now: float) -> bool:
        again = False
        placed: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
        for b in result.binds:
            pod = self.pods.get(b.pod_key)
            if pod is None:
                continue
            pod.node, pod.gpus = b.node, b.gpus
            placed.setdefault(unit_of(pod), []).append((b.node, b.gpus))
        victims: dict[str, list[str]] = {}
        for ev in result.evictions:
            pod = self.pods.get(ev.pod_key)
            if pod is None:
                continue
            unit = unit_of(pod)
            victims.setdefault(ev.for_gang, [])
            if unit not in victims[ev.for_gang]:
                victims[ev.for_gang].append(unit)
            self.ended_now.append((unit, self._remove(unit)))
            self.ends[unit] = Spread.fixed(now)  # evicted: gone now, whatever its durations
            again = True
        for unit, slots in placed.items():
            if unit not in self.waiting:
                continue
            pod_keys = self.members.get(unit, [])
            if any(not self.pods[k].node for k in pod_keys if self.pods[k].role is not Role.EXECUTOR):
                continue  # a lone part of the unit still waits
            self.waiting.discard(unit)
            slots = slots + [(r.node, r.gpus) for r in result.reservations.get(unit, [])]  # executors to come
            self._started(unit, now, slots, victims.get(unit, []))
        for unit, units in victims.items():
            st = self.started.get(unit)
            if st is not None:
                st.preempts.extend(u for u in units if u not in st.preempts)
            else:
                self.preempting.setdefault(unit, []).extend(units)
        return again

    def _started(self, unit: str, now: float, slots: list[tuple[str, tuple[int, ...]]], preempts: list[str]) -> None:
        nodes_used = {n for n, _ in slots}
        after = [u for u, held in self.ended_now if any(n in nodes_used for n, _ in held)]
        blockers = after or [u for u, _ in self.ended_now]
        ready = self.arrivals[unit].at if unit in self.arrivals else self.inp.now
        chain = [self.ends[b] for b in blockers if b in self.ends]
        if chain:
            # Events a few % of their distance apart share a cycle (at the last of them): the unit could start as
            # soon as the last end it needed, not at the end of the batch.
            at = min(now, max([ready] + [e.mid for e in chain]))
            start = Spread(max([ready] + [e.low for e in chain]), at, max([ready, at] + [e.high for e in chain]))
            start = Spread(min(start.low, at), at, start.high)
        else:  # it started on an arrival, or on time alone: no duration moves it
            at = now
            start = Spread.fixed(now)
        st = _Started(at, slots, after, _freed(slots, self.nodes), list(preempts) + self.preempting.pop(unit, []),
                      start)
        self.started[unit] = st
        d = self._duration(unit)
        runs = self._draw(unit, d)
        self.ends[unit] = Spread(start.low + d.low, at + runs, start.high + d.high)
        self._push(at + runs, 0, unit)

    def play(self, targets: set[str], horizon: float, eps: float, min_step: float, max_cycles: int,
             budget: float = float("inf")) -> None:
        """The exact forward run, until every target started, the horizon, or the budget; then the tail."""
        now0 = self.inp.now
        self.recover(now0)
        self.cycle(now0)
        while self.events and not targets <= set(self.started) and self.cycles < max_cycles:
            if self.pod_cycles >= budget:
                self.play_tail(targets, horizon, eps, min_step)
                return
            last = self._next_batch(horizon, eps, min_step)
            if last is None:
                break
            if self.waiting:
                self.cycle(last)

    def _next_batch(self, horizon: float, eps: float, min_step: float) -> float | None:
        """Apply the next events (those within `eps` of their distance from now of the first); their last time."""
        now0 = self.inp.now
        at = self.events[0][0]
        if at > now0 + horizon:
            return None
        until = at + max(min_step, (at - now0) * eps)
        last = at
        self.ended_now = []
        while self.events and self.events[0][0] <= until:
            t, _, kind, unit = heapq.heappop(self.events)
            last = t
            if kind == 0:
                if unit in self.members and unit not in self.waiting:
                    self.ended_now.append((unit, self._remove(unit)))
            else:
                self._arrive(unit, t)
        return last

    # -- the tail: beyond the budget ----------------------------------------------------------------
    def play_tail(self, targets: set[str], horizon: float, eps: float, min_step: float) -> None:
        """Estimate the starts of the units still waiting without the scheduler: on the fit rule's own
        accounting (`ClusterState`) of what the exact run left placed and reserved, take waiting units in
        queue order (priority, then age) at each batch of events and start each one whose pods all fit now
        (most-allocated node first, as packing policies do). No head is held, nothing is preempted, fair
        share is not weighed; units of one shape that failed are not tried again until room frees.
        Cheap (a few vectorised fit checks per unit), and marked: `Estimate.method` is "tail"."""
        tail = _Tail(self)
        while self.events and not targets <= set(self.started):
            last = self._next_batch(horizon, eps, min_step)
            if last is None:
                return
            for unit, _ in self.ended_now:
                tail.release(unit)
            tail.arrived()
            line = tail.order()
            shapes = {tail.pods_of(u)[1] for u in line}
            for unit in line:
                if shapes <= tail.failed:
                    break  # every shape still waiting failed: room only shrinks until the next events
                slots = tail.place(unit)
                if slots is not None:
                    self.waiting.discard(unit)
                    self.tail.add(unit)
                    self._started(unit, last, slots, [])


@dataclass(frozen=True)
class _Need:
    """A pod a waiting unit needs placed to start (a pending pod, or an executor its gang will create)."""

    key: str
    request: PodRequest
    selector: dict[str, str]
    tolerations: tuple[Toleration, ...]
    constraints: PodConstraints | None


class _Tail:
    """The accounting of `_Run.play_tail`: what each live unit holds, on a `ClusterState` of its own."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.held: dict[str, list[str]] = {}  # unit -> allocation keys
        self.failed: set[int] = set()  # shapes that did not fit since room last came free
        self.queued: set[str] = set()
        self.needs: dict[str, tuple[list[_Need], int]] = {}
        self.shapes: dict[tuple[object, ...], int] = {}  # what units ask for -> a small number
        owner = {key: unit for unit, keys in run.members.items() if unit not in run.waiting
                 for key in keys if run.pods[key].node}
        accounted = run.sched.state
        if accounted is not None:  # a copy of the scheduler's own accounting (bound pods are keyed by pod key)
            self.state = accounted.snapshot()
            for key in list(self.state.allocations):
                unit = owner.pop(key, None)
                if unit is None:  # a reservation (re-taken below under a key of ours), or a pod gone since
                    self.state.release(key)
                else:
                    self.held.setdefault(unit, []).append(key)
        else:
            self.state = ClusterState(run.inp.snapshot.nodes)
        for key, unit in owner.items():  # bound, but not in the scheduler's accounting
            pod = run.pods[key]
            self._take(unit, key, pod.request, pod.node, pod.gpus)
        for gang, slots in run.reserved.items():
            for i, slot in enumerate(slots):
                self._take(gang, f"~res/{gang}/{i}", slot.request, slot.node, slot.gpus)
        self.line: list[str] = []
        self.arrived()

    def _take(self, unit: str, key: str, req: PodRequest, node: str, gpus: tuple[int, ...]) -> bool:
        row = self.state.index.get(node)
        if row is None:
            return False
        try:
            self.state.allocate(key, req, self.state.placement_for(row, req, tuple(gpus)))
        except OvercommitError:  # accounted by the scheduler differently (e.g. a reading): leave it out
            return False
        self.held.setdefault(unit, []).append(key)
        return True

    def release(self, unit: str) -> None:
        for key in self.held.pop(unit, []):
            self.state.release(key)
        self.failed.clear()

    def arrived(self) -> None:
        """Units that joined the queue since (arrivals) take their place in the line."""
        run = self.run
        fresh = [u for u in run.waiting if u not in self.queued]
        if fresh:
            self.queued.update(fresh)
            self.failed.clear()
            self.line = sorted(set(self.line) | set(fresh),
                               key=lambda u: (-run.meta[u][1], run.meta[u][2], u))

    def order(self) -> list[str]:
        run = self.run
        self.line = [u for u in self.line if u in run.waiting]
        return list(self.line)

    def pods_of(self, unit: str) -> tuple[list[_Need], int]:
        """What the unit needs to start (its pending pods, a gang's executors to come), and its shape (units
        of one shape fit or fail alike). Computed once per unit: a waiting unit's needs do not change."""
        got = self.needs.get(unit)
        if got is not None:
            return got
        run = self.run
        out: list[_Need] = []
        gang = run.gangs.get(unit)
        for key in run.members.get(unit, []):
            pod = run.pods[key]
            if not pod.node and pod.role is not Role.EXECUTOR:
                out.append(_Need(key, pod.request, pod.node_selector, tuple(pod.tolerations), pod.constraints))
        if gang is not None:
            for i in range(gang.min_executors):
                out.append(_Need(f"~exec/{unit}/{i}", gang.executor, gang.node_selector, tuple(gang.tolerations),
                                 None))
        asks = tuple((n.request, tuple(sorted(n.selector.items())), n.tolerations, n.constraints) for n in out)
        shape = self.shapes.setdefault(asks, len(self.shapes))
        got = self.needs[unit] = (out, shape)
        return got

    def place(self, unit: str) -> list[tuple[str, tuple[int, ...]]] | None:
        """Place all of the unit's pods (all or nothing); their (node, GPUs), or None."""
        needs, shape = self.pods_of(unit)
        if not needs or shape in self.failed:
            return None
        state = self.state
        done: list[str] = []
        slots: list[tuple[str, tuple[int, ...]]] = []
        for need in needs:
            req = need.request
            mask = state.static_mask(need.selector, need.tolerations, req.gpu_models, need.constraints)
            ok = state.feasible(req, mask)
            rows = np.flatnonzero(ok)
            gpus = None
            if len(rows):
                # most allocated first: the node with the least room left (GPUs, then CPU)
                room = state.gpu_milli_free[rows].sum(axis=1) if req.is_gpu else state.cpu_free[rows]
                row = int(rows[int(np.argmin(room))])
                gpus = state.default_gpus(row, req)
            if gpus is None:
                for k in done:
                    state.release(k)
                self.failed.add(shape)
                return None
            row_name = state.nodes[row].name
            state.allocate(f"~tail/{need.key}", req, state.placement_for(row, req, gpus))
            done.append(f"~tail/{need.key}")
            slots.append((row_name, gpus))
        self.held[unit] = done
        return slots


def _freed(slots: Sequence[tuple[str, tuple[int, ...]]], nodes: dict[str, Node]) -> str:
    """'2 GPUs (A100) free up on gpu-a100-1' for the node holding most of what the unit takes."""
    if not slots:
        return ""
    per_node: dict[str, int] = {}
    for node, gpus in slots:
        per_node[node] = per_node.get(node, 0) + len(gpus)
    node, count = max(per_node.items(), key=lambda kv: (kv[1], kv[0]))
    others = sorted(n for n in per_node if n != node)
    extra = ""
    if others:
        names = ", ".join(others[:2]) + (f" and {len(others) - 2} more" if len(others) > 2 else "")
        extra = f" (and room on {names})"
    if count:
        model = nodes[node].gpu_model if node in nodes else ""
        what = f"{count} GPU{'s' if count > 1 else ''}" + (f" ({model})" if model else "")
        return f"{what} free{'s' if count == 1 else ''} up on {node}{extra}"
    return f"room frees up on {node}{extra}"


def waiting_units(snapshot: Snapshot) -> dict[str, tuple[str, int, float]]:
    """Units of the snapshot that wait to start: unit -> (queue, priority, created)."""
    out: dict[str, tuple[str, int, float]] = {}
    for pod in snapshot.pods:
        if pod.node:
            continue
        if pod.gang and pod.gang in snapshot.gangs and pod.role is not Role.DRIVER:
            continue  # executors of an admitted gang are part of a running unit
        gang = snapshot.gangs.get(pod.gang) if pod.gang else None
        unit = unit_of(pod)
        if unit not in out:
            out[unit] = ((gang.queue, gang.priority, gang.created_at or pod.created_at) if gang else
                         (pod.queue, pod.priority, pod.created_at))
    return out


def forecast(inp: ForecastInput, make_scheduler: Callable[[], Scheduler], *, targets: Iterable[str] | None = None,
             horizon_s: float = DEFAULT_HORIZON_S, eps: float = 0.02, min_step_s: float = 1.0,
             max_cycles: int = 2000, budget_pod_cycles: float = DEFAULT_BUDGET_POD_CYCLES,
             runs: int = 1) -> Forecast:
    """Estimates for `targets` (default: every waiting unit of the snapshot): exact (the scheduler's cycles)
    until `budget_pod_cycles`, then the tail (`_Run.play_tail`).

    With `inp.draws == "spread"` and `runs` > 1, `runs` forward runs, each with every duration drawn from its
    spread (`draw_of`: each unit draws each stratum of its spread once across the runs): a unit's start is
    the median of its starts, its range the lowest to the highest (with 5 runs about p10..p90), widened to the median
    run's own range along its chain of blockers where that reaches further; what
    it waits for, where and whom it preempts come from the run whose start is the median. Each run has
    `budget_pod_cycles / runs`. Otherwise one run, and the range follows the chain of blockers (module doc)."""
    waiting = waiting_units(inp.snapshot)
    wanted = set(waiting) if targets is None else set(targets) & set(waiting)
    k = max(1, runs) if inp.draws == "spread" else 1
    played = []
    for i in range(k):
        run = _Run(inp, make_scheduler(), {n.name: n for n in inp.snapshot.nodes}, run=i, runs=k)
        run.play(wanted, horizon_s, eps, min_step_s, max_cycles, budget_pod_cycles / k)
        played.append(run)
    estimates: dict[str, Estimate] = {}
    for unit in wanted:
        queue, priority, created = waiting[unit]
        got = sorted(((r.started[unit], r) for r in played if unit in r.started), key=lambda sr: sr[0].at)
        if len(got) * 2 <= k - 1 or not got:  # most runs did not start it within the horizon
            estimates[unit] = Estimate(unit, queue, priority, created, None, None, None, state="beyond-horizon")
            continue
        st, run = got[(len(got) - 1) // 2]
        # the spread of the runs' starts, and the median run's own range along its chain of blockers
        low, high = min(st.range.low, got[0][0].at), max(st.range.high, got[-1][0].at)
        state = "now" if st.at <= inp.now else "waiting"
        estimates[unit] = Estimate(unit, queue, priority, created, st.at, min(low, st.at), max(high, st.at),
                                   placement=tuple(st.placement), after=tuple(st.after), freed=st.freed,
                                   preempts=tuple(st.preempts), state=state,
                                   method="tail" if unit in run.tail else "cycle")
    _positions(estimates)
    return Forecast(inp.now, estimates, sum(r.cycles for r in played), tail=len(played[0].tail))


def runs_for(snapshot: Snapshot) -> int:
    """How many forward runs a forecast of this snapshot makes with drawn durations: `DRAWN_RUNS` up to
    `DRAWN_RUNS_MAX_PODS` pods (a range from the spread of their starts), one above (cost)."""
    return DRAWN_RUNS if len(snapshot.pods) <= DRAWN_RUNS_MAX_PODS else 1


def _positions(estimates: dict[str, Estimate]) -> None:
    """Overall position by estimated start; position in the queue by the queue's order (priority, age, name)."""
    never = float("inf")
    overall = sorted(estimates.values(), key=lambda e: (e.start if e.start is not None else never, -e.priority,
                                                        e.created_at, e.key))
    by_queue: dict[str, list[Estimate]] = {}
    for e in estimates.values():
        by_queue.setdefault(e.queue, []).append(e)
    in_queue: dict[str, int] = {}
    for members in by_queue.values():
        for i, e in enumerate(sorted(members, key=lambda e: (-e.priority, e.created_at, e.key)), 1):
            in_queue[e.key] = i
    for i, e in enumerate(overall, 1):
        estimates[e.key] = replace(e, position=i, queue_position=in_queue[e.key])
