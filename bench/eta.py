"""CPU cost of estimating start times (bigk.scheduler.forecast) for many waiting runs on many nodes.

    python bench/eta.py --nodes 1000 --waiting 1000 --json bench/results/eta.json

The cluster has `--nodes` GPU nodes of 8 GPUs (A100 and T4), full of running work
at priority 20: gangs (a driver and 1-4 one-GPU executors) and lone whole-GPU
pods, each with a remaining time drawn from a log-normal spread. `--waiting` runs
wait: gangs of 2-4 GPU executors and lone 1-8 GPU pods in two queues, at
priorities 0, 10 and 20 (so they wait rather than preempt).
The goal (issue 21) is under one second of CPU for 1,000 waiting runs on 1,000
nodes. Reported, as CPU seconds of this process (`time.process_time`): the whole
forecast, its number of cycles and the number of runs whose start the
cheap tail estimated (beyond the exact run's budget, `--budget`), and one plain
`Scheduler.cycle` on the same snapshot as the baseline (what the live loop pays
per cycle), with the ratio. Median of `--repeat` runs. `--compare-exact` also
runs the forecast with no budget (every start by the scheduler's cycles, the
cost before the budget existed) in the same process and reports its CPU time and
how far the tail's starts are from it.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

from bigk.cluster.model import GPU_MODEL_LABEL, POOL_LABEL, Gang, Gpu, Node, Pod, PodRequest, Role
from bigk.gctune import tune_for_long_lived_state
from bigk.scheduler import Scheduler, Snapshot
from bigk.scheduler.forecast import (
    DEFAULT_BUDGET_POD_CYCLES,
    Forecast,
    ForecastInput,
    Spread,
    forecast,
    runs_for,
)

RUNNING_PRIORITY = 20  # running work is not below the waiting runs' priorities (0, 10, 20): they wait, not preempt


def make_world(n_nodes: int, n_waiting: int, seed: int) -> ForecastInput:
    rng = random.Random(seed)
    nodes = []
    pods: list[Pod] = []
    gangs: dict[str, Gang] = {}
    ends: dict[str, Spread] = {}
    durations: dict[str, Spread] = {}

    def spread(median: float) -> Spread:
        return Spread(median * 0.5, median, median * 2.5)

    for i in range(n_nodes):
        model = "T4" if i % 4 == 0 else "A100"
        name = f"gpu-{i:05d}"
        nodes.append(Node(name, 128_000, 1_024_000, 110, [Gpu(g, model, 81_920, f"{name}-{g}") for g in range(8)],
                          {POOL_LABEL: f"gpu-{model.lower()}", GPU_MODEL_LABEL: model}))
        free = list(range(8))
        k = 0
        while free:
            k += 1
            remaining = spread(rng.lognormvariate(7.0, 1.0))
            if rng.random() < 0.5 and len(free) >= 2:  # a gang: driver (no GPU) and 1-4 executors
                app = f"run-{i}-{k}"
                n_exec = min(len(free), rng.choice([1, 2, 4]))
                exe = PodRequest(8000, 32_768, 1, 1000)
                gangs[app] = Gang(app, "ml", RUNNING_PRIORITY, PodRequest(2000, 4096), exe, n_exec)
                pods.append(Pod(f"{app}-driver", gangs[app].driver, queue="ml", priority=RUNNING_PRIORITY, gang=app,
                                role=Role.DRIVER, node=name))
                for e in range(n_exec):
                    pods.append(Pod(f"{app}-exec-{e}", exe, queue="ml", priority=RUNNING_PRIORITY, gang=app,
                                    role=Role.EXECUTOR, node=name, gpus=(free.pop(0),)))
                ends[app] = remaining
            else:
                n = min(len(free), rng.choice([1, 2, 4, 8]))
                take = tuple(free[:n])
                del free[:n]
                p = Pod(f"lone-{i}-{k}", PodRequest(4000 * n, 16_384 * n, n, 1000), queue="batch", node=name,
                        gpus=take, priority=RUNNING_PRIORITY)
                pods.append(p)
                ends[p.key] = remaining
    for j in range(n_waiting):
        priority = rng.choice([0, 10, 20])
        created = float(j)
        if rng.random() < 0.5:
            app = f"wait-{j}"
            n_exec = rng.choice([2, 4])
            exe = PodRequest(8000, 32_768, 1, 1000)
            gangs[app] = Gang(app, "ml", priority, PodRequest(2000, 4096), exe, n_exec, created_at=created)
            pods.append(Pod(f"{app}-driver", gangs[app].driver, queue="ml", priority=priority, gang=app,
                            role=Role.DRIVER, created_at=created))
            durations[app] = spread(rng.lognormvariate(7.0, 1.0))
        else:
            n = rng.choice([1, 2, 4, 8])
            p = Pod(f"wait-{j}", PodRequest(4000 * n, 16_384 * n, n, 1000), queue="batch", priority=priority,
                    created_at=created)
            pods.append(p)
            durations[p.key] = spread(rng.lognormvariate(7.0, 1.0))
    return ForecastInput(Snapshot(nodes, pods, gangs=gangs), now=float(n_waiting), ends=ends, durations=durations)


def measure(n_nodes: int, n_waiting: int, seed: int, policy: str, budget: float,
            compare_exact: bool) -> dict[str, float | None]:
    inp = make_world(n_nodes, n_waiting, seed)
    t0 = time.process_time()
    Scheduler(policy).cycle(inp.snapshot, inp.now)
    baseline = time.process_time() - t0
    t0 = time.process_time()
    inp.draws = "spread"  # as bigk serve: drawn durations, several runs on a small snapshot (forecast.runs_for)
    fc = forecast(inp, lambda: Scheduler(policy), budget_pod_cycles=budget, runs=runs_for(inp.snapshot))
    cost = time.process_time() - t0
    started = sum(1 for e in fc.estimates.values() if e.start is not None)
    out: dict[str, float | None] = {"forecast_cpu_s": cost, "cycle_cpu_s": baseline, "cycles": fc.cycles,
                                    "runs": runs_for(inp.snapshot), "pods": len(inp.snapshot.pods),
                                    "estimated": len(fc.estimates), "with_start": started, "tail": fc.tail}
    if compare_exact and fc.tail:
        t0 = time.process_time()
        exact = forecast(inp, lambda: Scheduler(policy), budget_pod_cycles=float("inf"), runs=runs_for(inp.snapshot))
        out["exact_cpu_s"] = time.process_time() - t0
        out.update(tail_vs_exact(fc, exact, inp.now))
    return out


def tail_vs_exact(fc: Forecast, exact: Forecast, now: float) -> dict[str, float | None]:
    """How far the tail's starts are from those of the exact forward run (every unit by the scheduler's
    cycles), relative to the exact wait: median and p90 of |tail - exact| / (exact - now), and the median
    signed difference (positive: the tail says later)."""
    rel, signed = [], []
    for key, e in fc.estimates.items():
        x = exact.estimates.get(key)
        if e.method != "tail" or e.start is None or x is None or x.start is None or x.start <= now:
            continue
        rel.append(abs(e.start - x.start) / (x.start - now))
        signed.append((e.start - x.start) / (x.start - now))
    if not rel:
        return {"tail_compared": 0}
    return {"tail_compared": len(rel), "tail_rel_error_median": round(statistics.median(rel), 3),
            "tail_rel_error_p90": round(sorted(rel)[int(0.9 * (len(rel) - 1))], 3),
            "tail_rel_bias_median": round(statistics.median(signed), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--waiting", type=int, default=1000)
    ap.add_argument("--policy", default="bigk")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--budget", type=float, default=DEFAULT_BUDGET_POD_CYCLES,
                    help="the forecast's exact-run budget in pod-cycles (inf: every start by the scheduler's cycles)")
    ap.add_argument("--compare-exact", action="store_true",
                    help="also run the exact forecast (no budget) and report how far the tail's starts are from it")
    ap.add_argument("--gc", choices=("tuned", "default"), default="tuned",
                    help="tuned: the garbage-collector settings `bigk serve` uses (bigk.gctune); default: CPython's")
    args = ap.parse_args()
    if args.gc == "tuned":
        tune_for_long_lived_state()
    runs = [measure(args.nodes, args.waiting, args.seed + r, args.policy, args.budget, args.compare_exact)
            for r in range(args.repeat)]
    med = statistics.median(float(r["forecast_cpu_s"] or 0.0) for r in runs)
    base = statistics.median(float(r["cycle_cpu_s"] or 0.0) for r in runs)
    exact = [float(r["exact_cpu_s"]) for r in runs if r.get("exact_cpu_s") is not None]
    out = {"nodes": args.nodes, "waiting": args.waiting, "policy": args.policy, "repeat": args.repeat,
           "budget_pod_cycles": args.budget,
           "exact_cpu_s_median": round(statistics.median(exact), 3) if exact else None,
           "forecast_cpu_s_median": round(med, 3), "cycle_cpu_s_median": round(base, 4),
           "forecast_over_one_cycle": round(med / base, 1) if base else None,
           "goal_cpu_s": 1.0, "goal_met": med < 1.0, "runs": runs}
    print(json.dumps(out, indent=2))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
