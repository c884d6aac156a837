"""How good are bigk's start-time estimates? Replay work through the scheduler and compare.

Work arrives at its times and runs through `Scheduler.cycle` exactly as in the
timeline protocol (`bigk.sim.timeline`): one cycle per instant with arrivals or
ends, waiting work retried as room frees, gangs admitted whole, their executors
created once the driver is bound. At the arrival of a sampled unit, before the
cycle, its start is estimated with `bigk.scheduler.forecast` from what bigk
would know then, as `bigk serve` does (`bigk.service.eta`): the cluster, the
work running (remaining time from the durations of finished runs of the same
job, with the runs still going counted as lasting at least as long as they have
so far, conditioned on how long it has run) and waiting, and the scheduled fires
to come; never the true durations. Its actual start is recorded when it binds.

One deviation from the timeline protocol: a unit runs its full duration after
it starts (the trace's deletion minus creation), instead of leaving at its
recorded deletion time, so waits push work later as on a real cluster.

Two workloads: the Alibaba GPU trace (`alibaba_work`: a pod's "job" for the
duration history is its shape, GPU count, GPU share and CPU; no spec durations,
no schedules) compressed with `speedup`, and a synthetic Spark workload
(`spark_work`): gangs of cron jobs firing on their schedules plus ad-hoc runs,
each job with its own log-normal durations and an `expectedDurationSeconds`
that is only roughly right.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from bigk.cluster.model import GPU_MODEL_LABEL, POOL_LABEL, Gang, Gpu, Node, Pod, PodRequest, Role
from bigk.scheduler.calibration import Calibrator
from bigk.scheduler.core import Scheduler
from bigk.scheduler.forecast import (
    Arrival,
    ForecastInput,
    Spread,
    duration_spread,
    forecast,
    remaining_spread,
    runs_for,
)
from bigk.scheduler.types import Snapshot
from bigk.sim.inflation import seeded_policy
from bigk.sim.trace import TracePod

DEFAULT_S = 600.0  # as bigk serve: a job with no history and no expected duration
HISTORY = 200  # the last durations of a job that count
POOLED = 1000  # the last durations of all jobs together (bigk serve: the last 1,000 runs in its history)
START_TOLERANCE_S = 1.0  # one cycle interval of bigk serve
DRAWS = "spread"  # the forecast's durations (ForecastInput.draws), as bigk serve
RUNS: int | None = None  # forward runs per estimate (forecast(runs=...)); None: forecast.runs_for, as bigk serve
FIRES_HORIZON_S = 24 * 3600.0
# The synthetic Spark workload of `bigk simulate --protocol eta` (a busy cluster: runs queue for a while).
SPARK_GPU_NODES, SPARK_CPU_NODES, SPARK_JOBS, SPARK_ADHOC_PER_HOUR = 5, 2, 24, 12.0


@dataclass
class Work:
    """A unit of work: a lone pod or a gang (driver pod plus `gang.min_executors` executors to come)."""

    key: str
    job: str
    at: float
    duration: float
    pods: list[Pod]
    gang: Gang | None = None
    expected: float | None = None
    scheduled: bool = False  # a cron fire: bigk knows it is coming


@dataclass
class Prediction:
    key: str
    job: str
    at: float
    eta: float | None
    low: float | None
    high: float | None
    start: float | None = None
    cpu_s: float = 0.0
    raw: tuple[float | None, float | None, float | None] = (None, None, None)  # the forecast before calibration
    calibrated: bool = False

    @property
    def wait(self) -> float | None:
        return None if self.start is None else self.start - self.at

    def as_forecast(self) -> Prediction:
        """The same prediction as the forecast made it, before calibration."""
        eta, low, high = self.raw
        return replace(self, eta=eta, low=low, high=high, calibrated=False)

    @property
    def width(self) -> float | None:
        return None if self.low is None or self.high is None else self.high - self.low

    @property
    def error(self) -> float | None:
        return None if self.start is None or self.eta is None else abs(self.start - self.eta)

    @property
    def inside(self) -> bool:
        if self.start is None or self.low is None or self.high is None:
            return False
        return self.low - START_TOLERANCE_S <= self.start <= self.high + START_TOLERANCE_S


@dataclass
class AccuracyRun:
    workload: str
    policy: str
    predictions: list[Prediction]
    units: int
    cycles: int = 0
    seconds: float = 0.0
    meta: dict[str, object] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        done = [p for p in self.predictions if p.start is not None]
        waited = [p for p in done if (p.wait or 0.0) > START_TOLERANCE_S]
        return {"workload": self.workload, "policy": self.policy, "units": self.units,
                "predicted": len(self.predictions), "started": len(done),
                "never_started": len(self.predictions) - len(done),
                "all": _stats(done), "waited": _stats(waited),
                "calibrated_share": _r(sum(p.calibrated for p in self.predictions) / len(self.predictions)
                                       if self.predictions else None),
                "forecast_only": {"all": _stats([p.as_forecast() for p in done]),
                                  "waited": _stats([p.as_forecast() for p in waited])},
                "forecast_cpu_s_median": _r(float(np.median([p.cpu_s for p in self.predictions]))
                                            if self.predictions else None),
                "cycles": self.cycles, "seconds": round(self.seconds, 1), **self.meta}


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None or math.isnan(x) else round(x, nd)


def _stats(preds: Sequence[Prediction]) -> dict[str, object]:
    """Share inside the range, median absolute error, median wait, and their ratio (the goals: >= 0.8, < 0.25)."""
    if not preds:
        return {"n": 0, "inside_share": None, "median_abs_error_s": None, "median_wait_s": None,
                "error_over_wait": None, "median_range_width_s": None, "range_width_over_wait": None}
    errors = [p.error for p in preds if p.error is not None]
    waits = [p.wait or 0.0 for p in preds]
    med_err = float(np.median(errors)) if errors else float("nan")
    med_wait = float(np.median(waits))
    widths = [p.width for p in preds if p.width is not None]
    med_width = float(np.median(widths)) if widths else float("nan")
    return {"n": len(preds), "inside_share": _r(sum(p.inside for p in preds) / len(preds)),
            "median_abs_error_s": _r(med_err, 1), "median_wait_s": _r(med_wait, 1),
            "error_over_wait": _r(med_err / med_wait) if med_wait > 0 else None,
            "median_range_width_s": _r(med_width, 1),
            "range_width_over_wait": _r(med_width / med_wait) if med_wait > 0 else None,
            "p90_abs_error_s": _r(float(np.percentile(errors, 90)), 1) if errors else None}


class _History:
    """Durations of finished work per job, what bigk's store holds, and how long the work still running has
    run so far (`begin`), which the duration estimates count as censored (`bigk.scheduler.forecast.Survival`)."""

    def __init__(self) -> None:
        self.by_job: dict[str, list[float]] = {}
        self.pooled: list[float] = []  # every job's, for jobs with too little history of their own
        self.running: dict[str, list[float]] = {}
        self.pooled_running: list[float] = []
        self._cache: dict[tuple[str, float], Spread] = {}

    def add(self, job: str, seconds: float) -> None:
        runs = self.by_job.setdefault(job, [])
        runs.append(seconds)
        if len(runs) > HISTORY:
            del runs[0]
        self.pooled.append(seconds)
        if len(self.pooled) > POOLED:
            del self.pooled[0]

    def begin(self, running: dict[str, list[float]]) -> None:
        """Before an estimate: per job, how long its runs still running have run."""
        self.running = running
        self.pooled_running = [x for xs in running.values() for x in xs][-POOLED:]
        self._cache = {}

    def spread(self, w: Work) -> Spread:
        return self.remaining(w, 0.0)

    def remaining(self, w: Work, elapsed: float) -> Spread:
        key = (w.job, round(elapsed, 3)) if w.expected is None else (f"{w.job}@{w.expected}", round(elapsed, 3))
        got = self._cache.get(key)
        if got is None:
            run = self.running.get(w.job, [])
            if elapsed == 0.0:
                got = duration_spread(self.by_job.get(w.job, []), w.expected, DEFAULT_S, self.pooled, run,
                                      self.pooled_running)
            else:
                got = remaining_spread(self.by_job.get(w.job, []), w.expected, DEFAULT_S, elapsed, self.pooled, run,
                                       self.pooled_running)
            self._cache[key] = got
        return got


def replay(nodes: Sequence[Node], works: Sequence[Work], make_scheduler: Callable[[], Scheduler], *,
           workload: str, policy: str, sample: Callable[[Work], bool],
           progress: Callable[[int, int], None] | None = None, eps: float = 0.02,
           calibrator: Calibrator | None = None, draws: str = DRAWS, runs: int | None = RUNS) -> AccuracyRun:
    """Replay `works`; estimate the start of each sampled one at its arrival; record its actual start.

    Estimates are corrected by `calibrator` (default: a fresh `Calibrator`) from the errors of the
    estimates whose runs started before, as `bigk serve` does with its own; each prediction keeps the
    forecast's own numbers too (`raw`)."""
    cal = Calibrator() if calibrator is None else calibrator
    began = time.perf_counter()
    node_list = list(nodes)
    sched = make_scheduler()
    order = sorted(works, key=lambda w: (w.at, w.key))
    scheduled = [w for w in order if w.scheduled]
    by_key = {w.key: w for w in order}
    live: dict[str, Pod] = {}
    members: dict[str, list[str]] = {}
    gangs: dict[str, Gang] = {}
    started: dict[str, float] = {}
    waiting: set[str] = set()
    ends: list[tuple[float, str]] = []
    history = _History()
    predictions: dict[str, Prediction] = {}
    k = cycles = 0
    fired = 0  # scheduled works already arrived (index into `scheduled`)

    def add(w: Work, t: float) -> None:
        if w.gang is not None:
            gangs[w.gang.name] = replace(w.gang, created_at=t)
        for p in w.pods:
            pod = replace(p, created_at=t, node="", gpus=())
            live[pod.key] = pod
            members.setdefault(w.key, []).append(pod.key)
        waiting.add(w.key)

    def snapshot() -> Snapshot:
        return Snapshot(node_list, list(live.values()), gangs=dict(gangs))

    def estimate(w: Work, t: float) -> Prediction:
        c0 = time.process_time()
        running: dict[str, list[float]] = {}
        for unit, at in started.items():
            running.setdefault(by_key[unit].job, []).append(t - at)
        history.begin(running)
        inp = ForecastInput(snapshot(), t, draws=draws)
        for unit, at in started.items():
            inp.ends[unit] = history.remaining(by_key[unit], t - at)
        for unit in waiting:
            inp.durations[unit] = history.spread(by_key[unit])
        for f in scheduled[fired:]:
            if f.at > t + FIRES_HORIZON_S:
                break
            if f.at > t:
                inp.arrivals.append(Arrival(f.at, f.key, f.pods, f.gang, history.spread(f)))
        fc = forecast(inp, make_scheduler, targets=[w.key], eps=eps,
                      runs=runs_for(inp.snapshot) if runs is None else runs)
        e = fc.estimates.get(w.key)
        raw = (e.start, e.low, e.high) if e is not None else (None, None, None)
        if e is None or e.start is None:
            return Prediction(w.key, w.job, t, *raw, cpu_s=time.process_time() - c0, raw=raw)
        adj = cal.adjust(t, e.start, e.low, e.high)
        cal.open(w.key, t, e.start - t)
        return Prediction(w.key, w.job, t, adj.eta, adj.low, adj.high, cpu_s=time.process_time() - c0, raw=raw,
                          calibrated=adj.calibrated)

    def cycle(t: float) -> None:
        nonlocal cycles
        for _ in range(3):  # executors of a gang just admitted bind into its reservations at once
            result = sched.cycle(snapshot(), t)
            cycles += 1
            new_exec = False
            for b in result.binds:
                pod = live.get(b.pod_key)
                if pod is None:
                    continue
                pod.node, pod.gpus = b.node, b.gpus
                unit = pod.gang or pod.key
                if unit in waiting and (pod.role is not Role.EXECUTOR):
                    waiting.discard(unit)
                    started[unit] = t
                    heapq.heappush(ends, (t + by_key[unit].duration, unit))
                    if unit in predictions:
                        pred = predictions[unit]
                        pred.start = t
                        cal.close(unit, t)
                    g = gangs.get(pod.gang) if pod.gang else None
                    if g is not None and g.min_executors:
                        for i in range(g.min_executors):
                            ex = Pod(f"{g.name}-exec-{i}", g.executor, namespace=g.namespace, priority=g.priority,
                                     queue=g.queue, gang=g.name, role=Role.EXECUTOR,
                                     node_selector=dict(g.node_selector), tolerations=list(g.tolerations),
                                     preferred_pools=g.preferred_pools, created_at=t)
                            live[ex.key] = ex
                            members[unit].append(ex.key)
                        new_exec = True
            for ev in result.evictions:  # the victim unit ends (a preempted Spark driver fails its run)
                pod = live.get(ev.pod_key)
                if pod is not None:
                    finish(pod.gang or pod.key, t, preempted=True)
            if not new_exec and not result.evictions:
                return

    def finish(unit: str, t: float, preempted: bool = False) -> None:
        for key in members.pop(unit, []):
            live.pop(key, None)
        at = started.pop(unit, None)
        waiting.discard(unit)
        if at is not None and not preempted:
            history.add(by_key[unit].job, t - at)

    total = len(order)
    while k < total or ends:
        t = min(order[k].at if k < total else math.inf, ends[0][0] if ends else math.inf)
        while ends and ends[0][0] <= t:
            _, unit = heapq.heappop(ends)
            if unit in started and started[unit] + by_key[unit].duration <= t + 1e-9:
                finish(unit, t)
        arriving = []
        while k < total and order[k].at <= t:
            arriving.append(order[k])
            add(order[k], t)
            k += 1
        while fired < len(scheduled) and scheduled[fired].at <= t:
            fired += 1
        for w in arriving:
            if sample(w):
                predictions[w.key] = estimate(w, t)
        if arriving or waiting:
            cycle(t)
        if progress is not None and k % 200 == 0:
            progress(k, total)
    return AccuracyRun(workload, policy, list(predictions.values()), total, cycles, time.perf_counter() - began)


# ---- workloads -------------------------------------------------------------------------------------


def alibaba_work(pods: Sequence[TracePod], speedup: float) -> list[Work]:
    """Trace pods as lone-pod work, arrivals compressed by `speedup`, durations kept."""
    timed = [p for p in pods if p.created is not None and p.deleted is not None]
    origin = min(float(p.created) for p in timed)  # type: ignore[arg-type]
    out = []
    for i, tp in enumerate(timed):
        at = origin + (float(tp.created) - origin) / speedup  # type: ignore[arg-type]
        r = tp.request
        pod = Pod(f"{tp.name}-{i}", r, created_at=at)
        shape = f"g{r.gpu_count}x{r.gpu_milli}-c{r.cpu_milli}"
        out.append(Work(pod.key, shape, at, max(1.0, float(tp.deleted) - float(tp.created)), [pod]))  # type: ignore[arg-type]
    return out


@dataclass(frozen=True)
class _SparkJob:
    name: str
    queue: str
    priority: int
    executors: int
    gpu: int  # GPUs per executor
    median_s: float
    sigma: float
    expected_s: float
    period_s: float | None  # cron period; None: ad-hoc


def spark_cluster(gpu_nodes: int = 12, cpu_nodes: int = 6) -> list[Node]:
    nodes = [Node(f"gpu-a100-{i}", 64_000, 512_000, 110, [Gpu(g, "A100", 81_920, f"a100-{i}-{g}") for g in range(8)],
                  {POOL_LABEL: "gpu-a100", GPU_MODEL_LABEL: "A100"}) for i in range(gpu_nodes)]
    nodes += [Node(f"cpu-{i}", 32_000, 128_000, 110, [], {POOL_LABEL: "cpu"}) for i in range(cpu_nodes)]
    return nodes


def spark_work(seed: int, hours: float = 24.0, jobs: int = 14, adhoc_per_hour: float = 6.0) -> list[Work]:
    """Cron jobs (every 15-60 min) and ad-hoc runs of Spark gangs with per-job log-normal durations."""
    rng = np.random.default_rng(seed)
    catalog = []
    for j in range(jobs):
        gpu = int(rng.random() < 0.6)
        median = float(rng.choice([300, 600, 900, 1500, 2400]))
        period = float(rng.choice([900, 1200, 1800, 3600])) if j < jobs * 2 // 3 else None
        catalog.append(_SparkJob(f"job-{j:02d}", "ml" if gpu else "etl", int(rng.choice([0, 10, 20])),
                                 int(rng.choice([2, 4, 6, 8])), gpu, median, float(rng.uniform(0.15, 0.5)),
                                 median * float(rng.uniform(0.7, 1.3)), period))
    span = hours * 3600.0
    out: list[Work] = []
    n = 0

    def run_of(job: _SparkJob, at: float, scheduled: bool) -> Work:
        nonlocal n
        n += 1
        app = f"{job.name}-r{n:05d}"
        exe = PodRequest(4000, 16_384, job.gpu, 1000 if job.gpu else 0)
        drv = PodRequest(1000, 4096)
        gang = Gang(app, job.queue, job.priority, drv, exe, job.executors, created_at=at)
        driver = Pod(f"{app}-driver", drv, queue=job.queue, priority=job.priority, gang=app, role=Role.DRIVER,
                     created_at=at)
        duration = float(job.median_s * math.exp(job.sigma * rng.standard_normal()))
        return Work(app, job.name, at, duration, [driver], gang, job.expected_s, scheduled)

    for job in catalog:
        if job.period_s is None:
            continue
        t = float(rng.uniform(0, job.period_s))
        while t < span:
            out.append(run_of(job, t, True))
            t += job.period_s
    adhoc = [j for j in catalog if j.period_s is None]
    t = 0.0
    while adhoc:
        t += float(rng.exponential(3600.0 / adhoc_per_hour))
        if t >= span:
            break
        out.append(run_of(adhoc[int(rng.integers(len(adhoc)))], t, False))
    return out


def policy_factory(name: str, seed: int, requests: Sequence[PodRequest]) -> Callable[[], Scheduler]:
    """Fresh schedulers with the policy seeded and told the workload, as the timeline protocol does."""

    def make() -> Scheduler:
        policy = seeded_policy(name, seed)
        policy.observe_workload(list(requests))
        return Scheduler(policy)

    return make


def sampler(rate: float, seed: int) -> Callable[[Work], bool]:
    """Estimate at the arrival of a `rate` share of the units (seeded)."""
    rng = np.random.default_rng(seed)
    return lambda _w: bool(rng.random() < rate)


# ---- the `bigk simulate --protocol eta` report ------------------------------------------------------


def run_protocol(nodes: Sequence[Node], pods: Sequence[TracePod], policy: str, seed: int, speedup: float,
                 sample_rate: float, workloads: Sequence[str], spark_hours: float = 3.0,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, object]:
    """Both replays (or those named in `workloads`: alibaba, spark) as one JSON-ready report."""
    runs: list[dict[str, object]] = []
    if "alibaba" in workloads:
        works = alibaba_work(pods, speedup)
        run = replay(nodes, works, policy_factory(policy, seed, [p.request for p in pods]), workload="alibaba",
                     policy=policy, sample=sampler(sample_rate, seed), progress=progress)
        run.meta = {"speedup": speedup, "nodes": len(nodes), "sample_rate": sample_rate}
        runs.append(run.summary())
    if "spark" in workloads:
        s_nodes = spark_cluster(SPARK_GPU_NODES, SPARK_CPU_NODES)
        works = spark_work(seed, spark_hours, jobs=SPARK_JOBS, adhoc_per_hour=SPARK_ADHOC_PER_HOUR)
        reqs = [r for w in works if w.gang for r in (w.gang.driver, w.gang.executor)]
        run = replay(s_nodes, works, policy_factory(policy, seed, reqs), workload="spark", policy=policy,
                     sample=sampler(sample_rate, seed), progress=progress)
        run.meta = {"hours": spark_hours, "nodes": len(s_nodes), "jobs": SPARK_JOBS,
                    "cron_runs": sum(w.scheduled for w in works), "sample_rate": sample_rate}
        runs.append(run.summary())
    return {"protocol": "eta", "goals": {"inside_share_min": 0.8, "error_over_wait_max": 0.25},
            "range": "p10..p90", "tolerance_s": START_TOLERANCE_S, "runs": runs}


def print_report(report: dict[str, object]) -> None:
    """One line per workload and population (all sampled arrivals; those that waited), calibrated and as the
    forecast alone made them."""
    print("workload  units  predicted  who     estimate   n     inside  median|err| s  median wait s  err/wait  "
          "width/wait")
    for r in report["runs"]:  # type: ignore[attr-defined]
        for who in ("all", "waited"):
            for label, s in (("shown", r[who]), ("forecast", r["forecast_only"][who])):
                print(f"{r['workload']:<9} {r['units']:>5}  {r['predicted']:>9}  {who:<6}  {label:<9} {s['n']:>5}  "
                      f"{_fmt(s['inside_share'])}  {_fmt(s['median_abs_error_s']):>13}  "
                      f"{_fmt(s['median_wait_s']):>13}  {_fmt(s['error_over_wait'])}  "
                      f"{_fmt(s['range_width_over_wait'])}")


def _fmt(x: object) -> str:
    return "-" if x is None else f"{x}"


# ---- `python -m bigk.sim.eta_accuracy`: the Alibaba replay on a part of the trace ---------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """The Alibaba replay on every `--node-stride`-th node and the first `--first-pods` pods (by creation): the
    whole trace rarely fills its 1,523 nodes even compressed 5,000 times, so nothing waits there to estimate.
    (`bigk simulate --protocol eta` replays whole files.)"""
    import argparse
    import json

    from bigk.sim import trace

    ap = argparse.ArgumentParser(prog="python -m bigk.sim.eta_accuracy", description=main.__doc__)
    ap.add_argument("--nodes", required=True)
    ap.add_argument("--pods", required=True)
    ap.add_argument("--node-stride", type=int, default=1)
    ap.add_argument("--first-pods", type=int, default=0, help="0: all")
    ap.add_argument("--speedup", type=float, default=5000.0)
    ap.add_argument("--sample", type=float, default=1.0)
    ap.add_argument("--policy", default="bigk")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    nodes = trace.load_nodes(args.nodes)[:: args.node_stride]
    pods = sorted((p for p in trace.load_pods(args.pods) if p.created is not None), key=lambda p: float(p.created or 0))
    if args.first_pods:
        pods = pods[: args.first_pods]
    run = replay(nodes, alibaba_work(pods, args.speedup),
                 policy_factory(args.policy, args.seed, [p.request for p in pods]), workload="alibaba",
                 policy=args.policy, sample=sampler(args.sample, args.seed))
    run.meta = {"speedup": args.speedup, "nodes": len(nodes), "node_stride": args.node_stride, "pods": len(pods),
                "sample_rate": args.sample}
    report = {"protocol": "eta", "goals": {"inside_share_min": 0.8, "error_over_wait_max": 0.25},
              "range": "p10..p90", "tolerance_s": START_TOLERANCE_S, "runs": [run.summary()]}
    print_report(report)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
