"""Placement throughput of the scheduling core on a synthetic cluster.

    python bench/placement.py --nodes 5000 --pods 50000 --policy bigk,spread --json OUT.json

The cluster has `--nodes` GPU nodes of 8 GPUs (A100 and T4 pools) plus one CPU
node per ten GPU nodes. Pods arrive in batches of `--batch` per cycle: a mix of
whole-GPU pods (1, 2, 4 or 8 GPUs), fractional-GPU pods (a share plus GPU memory),
CPU-only pods, and Spark gangs (a driver and GPU executors; the executors are
created by the "driver" one cycle after it is bound, and bind into the gang's
reservation). Only time spent inside `Scheduler.cycle` counts, as CPU time of
the (single-threaded) process, so that the figure is "pods per second on one
core" even on a machine shared with other work; wall time is reported too.
Each policy runs in its own process so that `peak_rss_mb` is its own.

Writes {"results": [{"policy", "nodes", "pods", "pods_per_second", "peak_rss_mb", ...}]}; with
`--repeat R` each policy runs R times and the median run (by pods_per_second) is reported,
with every run's figure in `runs_pods_per_second`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from dataclasses import replace

from bigk.cluster.model import GPU_MODEL_LABEL, POOL_LABEL, Gang, Gpu, Node, Pod, PodRequest, Role
from bigk.gctune import tune_for_long_lived_state
from bigk.scheduler import Scheduler, Snapshot


def make_nodes(n_gpu_nodes: int) -> list[Node]:
    nodes = []
    for i in range(n_gpu_nodes):
        model, mem = ("A100", 81_920) if i % 4 else ("T4", 16_384)
        pool = "gpu-a100" if model == "A100" else "gpu-t4"
        gpus = [Gpu(g, model, mem, f"gpu-{i}-{g}") for g in range(8)]
        nodes.append(Node(f"gpu-{i:05d}", 128_000, 1_024_000, 110, gpus, {POOL_LABEL: pool, GPU_MODEL_LABEL: model}))
    for i in range(max(1, n_gpu_nodes // 10)):
        nodes.append(Node(f"cpu-{i:05d}", 64_000, 256_000, 110, [], {POOL_LABEL: "cpu"}))
    return nodes


def make_work(n_pods: int, seed: int) -> tuple[list[Pod], dict[str, Gang], dict[str, list[Pod]]]:
    """Batches of arriving pods (drivers, lone pods), gang infos, and executors per gang."""
    rng = random.Random(seed)
    arrivals: list[Pod] = []
    gangs: dict[str, Gang] = {}
    executors: dict[str, list[Pod]] = {}
    count = 0
    t = 0.0
    while count < n_pods:
        t += 0.001
        kind = rng.random()
        name = f"p{count:06d}"
        prio = rng.choice((0, 0, 0, 5))
        k = rng.randint(2, 6)
        if kind < 0.08 and count + 1 + k <= n_pods:  # a Spark gang: driver + 2..6 single-GPU executors
            drv = PodRequest(1000, 4096)
            exe = PodRequest(8000, 32_768, 1, 1000)
            gangs[name] = Gang(name, "spark", prio, drv, exe, k, created_at=t)
            arrivals.append(Pod(f"{name}-driver", drv, queue="spark", priority=prio, gang=name, role=Role.DRIVER,
                                created_at=t))
            executors[name] = [Pod(f"{name}-exec-{j}", exe, queue="spark", priority=prio, gang=name,
                                   role=Role.EXECUTOR, created_at=t) for j in range(k)]
            count += 1 + k
            continue
        if kind < 0.33:
            g = rng.choice((1, 1, 1, 1, 2, 2, 4, 8))
            req = PodRequest(4000 * g, 16_384 * g, g, 1000)
        elif kind < 0.63:
            milli = rng.choice((100, 200, 250, 500, 750))
            req = PodRequest(2000, 8192, 1, milli, int(16_384 * milli / 1000))
        else:
            req = PodRequest(rng.choice((500, 1000, 2000, 4000)), rng.choice((1024, 4096, 8192)))
        arrivals.append(Pod(name, req, queue=rng.choice(("batch", "interactive")), priority=prio, created_at=t))
        count += 1
    return arrivals, gangs, executors


def latency(seconds: list[float]) -> dict[str, float]:
    """p50, p99 and max of per-cycle times, in milliseconds."""
    if not seconds:
        return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    ordered = sorted(seconds)

    def at(q: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": round(1000 * ordered[-1], 2)}


class Run:
    """A scheduler driven like a cluster would: pods arrive, bind, start executors, leave."""

    def __init__(self, policy: str, n_nodes: int, seed: int) -> None:
        self.nodes = make_nodes(n_nodes)
        name, _, mode = policy.partition("+")  # "bigk+tryall": every waiting unit tried every cycle
        self.sched = Scheduler(name, retry_filter=mode != "tryall")
        self.gangs: dict[str, Gang] = {}
        self.executors: dict[str, list[Pod]] = {}
        self.pods: dict[str, Pod] = {}
        self.pending_execs: list[Pod] = []
        self.members: dict[str, set[str]] = {}  # gang -> keys of its driver and executors
        self.now = 0.0
        self.rng = random.Random(seed)
        self.cycle_cpu: list[float] = []
        self.spent = self.wall = 0.0
        self.binds = self.evictions = 0

    def add(self, arrivals: list[Pod], gangs: dict[str, Gang], executors: dict[str, list[Pod]]) -> None:
        self.gangs.update(gangs)
        self.executors.update(executors)
        for p in arrivals:
            self.pods[p.key] = p
        for gang, execs in executors.items():
            namespace = execs[0].namespace if execs else "default"
            self.members[gang] = {f"{namespace}/{gang}-driver"} | {e.key for e in execs}

    def cycle(self) -> int:
        """One cycle (timed) and its effects: binds, evictions, executors created by bound drivers."""
        for p in self.pending_execs:
            self.pods[p.key] = p
        self.pending_execs = []
        snap = Snapshot(self.nodes, list(self.pods.values()), {}, self.gangs)
        w0, t0 = time.perf_counter(), time.process_time()
        result = self.sched.cycle(snap, self.now)
        cpu = time.process_time() - t0
        self.wall += time.perf_counter() - w0
        self.spent += cpu
        self.cycle_cpu.append(cpu)
        self.now += 1.0
        self.binds += len(result.binds)
        self.evictions += len(result.evictions)
        for e in result.evictions:  # victims go at once (a kubelet would take a grace period)
            victim = self.pods.get(e.pod_key)
            if victim is not None:
                self.leave(victim)
        for b in result.binds:
            if b.pod_key not in self.pods:
                continue
            p = replace(self.pods[b.pod_key], node=b.node, gpus=b.gpus)
            self.pods[b.pod_key] = p
            if p.role is Role.DRIVER:
                self.pending_execs.extend(self.executors.pop(p.gang, []))
        return len(result.binds)

    def arrive(self, arrivals: list[Pod], gangs: dict[str, Gang], executors: dict[str, list[Pod]], batch: int) -> None:
        """`arrivals` in batches of `batch`, one cycle each, until they and the executors they start are in."""
        self.add([], gangs, executors)
        i = 0
        while i < len(arrivals) or self.pending_execs:
            self.add(arrivals[i:i + batch], {}, {})
            i += batch
            self.cycle()
            if i >= len(arrivals) and not self.pending_execs:
                break

    def leave(self, pod: Pod) -> int:
        """A pod finishes (or is evicted); a driver takes its gang's executors with it."""
        if pod.gang and pod.role is Role.DRIVER:
            keys = [k for k in self.members.pop(pod.gang, set()) if k in self.pods]
            self.executors.pop(pod.gang, None)
            self.gangs.pop(pod.gang, None)
        else:
            keys = [pod.key]
        for key in keys:
            self.pods.pop(key, None)
        return len(keys)

    def waiting(self) -> int:
        return sum(1 for p in self.pods.values() if not p.node)

    def stats(self) -> dict[str, object]:
        rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"bound": self.binds, "evictions": self.evictions, "waiting": self.waiting(),
                "cycles": len(self.cycle_cpu), "cpu_seconds": round(self.spent, 3),
                "wall_seconds": round(self.wall, 3),
                "pods_per_second": round(self.binds / self.spent, 1) if self.spent else 0.0,
                "wall_pods_per_second": round(self.binds / self.wall, 1) if self.wall else 0.0,
                "cycle": latency(self.cycle_cpu), "peak_rss_mb": round(rss_kb / 1024, 1)}


def run_policy(policy: str, n_nodes: int, n_pods: int, batch: int, seed: int) -> dict[str, object]:
    """Arrivals only: `n_pods` pods in batches of `batch` per cycle; whatever does not fit waits."""
    run = Run(policy, n_nodes, seed)
    run.arrive(*make_work(n_pods, seed), batch)
    return {"policy": policy, "scenario": "arrivals", "nodes": len(run.nodes), "gpu_nodes": n_nodes, "pods": n_pods,
            **run.stats()}


def run_backlog(policy: str, n_nodes: int, backlog: int, cycles: int, churn: int, batch: int,
                seed: int) -> dict[str, object]:
    """A full cluster with about `backlog` pods waiting; each measured cycle `churn` running pods leave and
    as many new pods arrive. Then two probes: a cycle in which nothing changed, and one in which one node
    was emptied. The work is `make_work`'s GPU pods and gangs (no lone CPU-only pods, which would
    otherwise fill every node to its 110-pod limit: a GPU platform's backlog is GPU work)."""
    run = Run(policy, n_nodes, seed)
    stream = Stream(seed, gpu_only=True)
    fill_cycles = 0
    full = False
    while not full or run.waiting() < backlog or run.pending_execs:  # fill the cluster, then the backlog
        wanted = batch if not full else max(0, min(batch, backlog - run.waiting()))
        arrivals, gangs, executors = stream.take(wanted, run.now)
        run.add(arrivals, gangs, executors)
        run.cycle()
        fill_cycles += 1
        full = full or run.waiting() > 0
    fill = {"cycles": fill_cycles, "cpu_seconds": round(run.spent, 3), "waiting": run.waiting()}
    run.cycle_cpu, run.spent, run.wall, run.binds, run.evictions = [], 0.0, 0.0, 0, 0
    for _ in range(cycles):
        bound = [p for p in run.pods.values() if p.node]
        left = 0
        for pod in run.rng.sample(bound, min(churn, len(bound))):
            if pod.key in run.pods:
                left += run.leave(pod)
        arrivals, gangs, executors = stream.take(left, run.now)
        run.add(arrivals, gangs, executors)
        run.cycle()
    steady = run.stats()
    run.cycle_cpu = []
    for _ in range(5):  # nothing changes between these cycles
        run.cycle()
    idle = latency(run.cycle_cpu)
    run.cycle_cpu = []
    busy = [p for p in run.pods.values() if p.node.startswith("gpu-")]
    node = busy[0].node if busy else ""
    for pod in [p for p in run.pods.values() if p.node == node]:
        if pod.key in run.pods:
            run.leave(pod)
    run.cycle()
    freed = latency(run.cycle_cpu)
    return {"policy": policy, "scenario": "backlog", "nodes": len(run.nodes), "gpu_nodes": n_nodes,
            "backlog": backlog, "churn": churn, "fill": fill, **steady, "idle_cycle": idle,
            "one_node_freed_cycle": freed}


class Stream:
    """An endless supply of arriving work, in the mix of `make_work`."""

    def __init__(self, seed: int, gpu_only: bool = False) -> None:
        self.seed = seed
        self.gpu_only = gpu_only  # leave out lone CPU-only pods
        self.block = 0
        self.buffer: list[Pod] = []
        self.gangs: dict[str, Gang] = {}
        self.executors: dict[str, list[Pod]] = {}

    def take(self, n: int, now: float) -> tuple[list[Pod], dict[str, Gang], dict[str, list[Pod]]]:
        """About `n` pods (a gang counts with its executors) created at `now`; names never repeat."""
        out: list[Pod] = []
        gangs: dict[str, Gang] = {}
        executors: dict[str, list[Pod]] = {}
        count = 0
        while count < n:
            if not self.buffer:
                self._refill()
            pod = replace(self.buffer.pop(), created_at=now)
            out.append(pod)
            count += 1
            if pod.role is Role.DRIVER:
                gangs[pod.gang] = replace(self.gangs.pop(pod.gang), created_at=now)
                executors[pod.gang] = [replace(p, created_at=now) for p in self.executors.pop(pod.gang)]
                count += len(executors[pod.gang])
        return out, gangs, executors

    def _refill(self) -> None:
        arrivals, gangs, executors = make_work(10_000, self.seed + 1000 * self.block)
        prefix = f"b{self.block}-"
        self.block += 1
        for name, g in gangs.items():
            self.gangs[prefix + name] = replace(g, name=prefix + name)
            self.executors[prefix + name] = [replace(p, name=prefix + p.name, gang=prefix + name)
                                             for p in executors[name]]
        self.buffer = [replace(p, name=prefix + p.name, gang=prefix + p.gang if p.gang else "")
                       for p in reversed(arrivals) if p.gang or p.request.is_gpu or not self.gpu_only]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", default="500", help="GPU nodes (8 GPUs each; CPU nodes are added); comma-separated "
                    "for several sizes")
    ap.add_argument("--pods", type=int, default=5000, help="arriving pods (arrivals scenario)")
    ap.add_argument("--backlog", default="", help="comma-separated waiting-pod counts: run the backlog scenario "
                    "(a full cluster, that many pods waiting, departures and arrivals continuing)")
    ap.add_argument("--cycles", type=int, default=20, help="measured cycles of the backlog scenario")
    ap.add_argument("--churn", type=int, default=200, help="running pods that leave per backlog cycle (as many "
                    "arrive)")
    ap.add_argument("--policy", default="bigk,spread", help="comma-separated policy names; NAME+tryall turns the "
                    "retry filter off (every waiting unit tried every cycle, as before it existed)")
    ap.add_argument("--batch", type=int, default=1000, help="pods arriving per cycle")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeat", type=int, default=1, help="runs per policy; the median run is reported")
    ap.add_argument("--json", dest="json_out", default="")
    ap.add_argument("--gc", choices=("tuned", "default"), default="tuned",
                    help="tuned: the garbage-collector settings `bigk serve` uses (bigk.gctune); default: CPython's")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        if args.gc == "tuned":
            tune_for_long_lived_state()
        if args.backlog:
            row = run_backlog(args.policy, int(args.nodes), int(args.backlog), args.cycles, args.churn, args.batch,
                              args.seed)
        else:
            row = run_policy(args.policy, int(args.nodes), args.pods, args.batch, args.seed)
        print(json.dumps(row))
        return 0
    results = []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    backlogs = [b for b in args.backlog.split(",") if b] or [""]
    for nodes in [n for n in args.nodes.split(",") if n]:
        for backlog in backlogs:
            for policy in [p for p in args.policy.split(",") if p]:
                cmd = [sys.executable, __file__, "--worker", "--policy", policy, "--nodes", nodes,
                       "--pods", str(args.pods), "--batch", str(args.batch), "--seed", str(args.seed),
                       "--cycles", str(args.cycles), "--churn", str(args.churn), "--gc", args.gc]
                if backlog:
                    cmd += ["--backlog", backlog]
                runs = []
                for _ in range(args.repeat):  # a fresh process per run: peak RSS is that run's own
                    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
                    runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
                runs.sort(key=lambda r: r["pods_per_second"])
                row = dict(runs[len(runs) // 2])  # the median run
                row["runs_pods_per_second"] = [r["pods_per_second"] for r in runs]
                results.append(row)
                print(summary(row), file=sys.stderr, flush=True)
                if args.json_out:  # after each row, so a long run leaves what it measured
                    with open(args.json_out, "w") as fh:
                        json.dump({"results": results}, fh, indent=2)
    if not args.json_out:
        print(json.dumps({"results": results}, indent=2))
    return 0


def summary(row: dict) -> str:  # type: ignore[type-arg]
    """One line per result for the terminal."""
    c = row["cycle"]
    text = (f"{row['policy']:>8} nodes={row['gpu_nodes']} {row['scenario']}"
            + (f" backlog={row['backlog']}" if row["scenario"] == "backlog" else f" pods={row['pods']}")
            + f": {row['pods_per_second']:>8.1f} pods/s bound={row['bound']} waiting={row['waiting']} "
            f"evictions={row['evictions']} cycle p50/p99/max={c['p50_ms']}/{c['p99_ms']}/{c['max_ms']} ms "
            f"rss={row['peak_rss_mb']} MiB")
    if row["scenario"] == "backlog":
        text += (f" idle={row['idle_cycle']['max_ms']} ms one-node-freed={row['one_node_freed_cycle']['max_ms']} ms"
                 f" fill={row['fill']['cpu_seconds']} s")
    return text


if __name__ == "__main__":
    sys.exit(main())
