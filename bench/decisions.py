"""Hashes of the scheduler's decisions, to show that a change leaves them as they were (issue 15).

    BIGK_TRACE_DIR=/work/shared/traces/alibaba-gpu-v2023 python bench/decisions.py --json OUT.json

Two workloads, each hashed with SHA-256 over every decision in the order it was made:

- `bench`: the placement benchmark's arrivals scenario (`bench/placement.py`: its `Run` and
  `make_work`, `--nodes` GPU nodes, `--pods` pods in batches of `--batch`, then `--settle`
  cycles in which nothing arrives), driven through `Scheduler.cycle`; every bind (cycle,
  pod key, node, GPU indices) and every eviction (cycle, pod key, gang it makes room for).
- `inflation`: `bigk simulate`'s inflation protocol on the default trace
  (`bigk.sim.inflation.run_inflation`), one run per policy and `--seeds` seed; every
  placement it accounts (pod key, node name, GPU indices, share per GPU), taken from
  `ClusterState.allocate` as the run calls it.

The script imports the `bigk` it finds first (run it with `PYTHONPATH=<checkout>`) and the
`placement.py` beside itself, so a copy placed in an older checkout's `bench/` hashes that
checkout's decisions. Prints one line per run and, with `--json`, writes them all.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import placement  # noqa: E402  (bench/placement.py, beside this file)

from bigk.cluster.state import ClusterState  # noqa: E402


class Digest:
    """SHA-256 over a sequence of records (one JSON array per record), with a count."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self.count = 0

    def add(self, *fields: object) -> None:
        self._sha.update(json.dumps(fields, separators=(",", ":")).encode())
        self._sha.update(b"\n")
        self.count += 1

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def bench_decisions(policy: str, n_nodes: int, n_pods: int, batch: int, seed: int, settle: int) -> dict[str, Any]:
    """The arrivals scenario of bench/placement.py (its `run_policy` loop, then `settle` cycles in which nothing
    arrives), every cycle's decisions hashed."""
    started = time.perf_counter()
    run = placement.Run(policy, n_nodes, seed)
    binds, evictions = Digest(), Digest()
    cycle_of = run.sched.cycle

    def recorded(snap: Any, now: float) -> Any:
        result = cycle_of(snap, now)
        for b in result.binds:
            binds.add(now, b.pod_key, b.node, list(b.gpus))
        for e in result.evictions:
            evictions.add(now, e.pod_key, e.for_gang)
        return result

    run.sched.cycle = recorded  # type: ignore[method-assign,assignment]
    run.arrive(*placement.make_work(n_pods, seed), batch)
    for _ in range(settle):  # nothing arrives: what waits is retried, preempts, or stays
        run.cycle()
    return {"workload": "bench", "policy": policy, "nodes": n_nodes, "pods": n_pods, "batch": batch, "seed": seed,
            "settle": settle,
            "cycles": len(run.cycle_cpu), "binds": binds.count, "binds_sha256": binds.hexdigest(),
            "evictions": evictions.count, "evictions_sha256": evictions.hexdigest(), "waiting": run.waiting(),
            "seconds": round(time.perf_counter() - started, 1)}


@contextmanager
def recording_allocations(digest: Digest) -> Iterator[None]:
    """Every `ClusterState.allocate` call while inside, added to `digest` (pod key, node, GPUs, share)."""
    allocate = ClusterState.allocate

    def recorded(self: ClusterState, key: str, req: Any, where: Any) -> None:
        allocate(self, key, req, where)
        digest.add(key, self.nodes[where.node].name, list(where.gpus), where.gpu_milli, where.gpu_memory_mib)

    ClusterState.allocate = recorded  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        ClusterState.allocate = allocate  # type: ignore[method-assign]


def inflation_decisions(policy: str, seed: int) -> dict[str, Any]:
    """`bigk simulate` (inflation protocol) on the default trace, one policy and seed, every placement hashed."""
    from bigk.sim import trace
    from bigk.sim.inflation import run_inflation

    started = time.perf_counter()
    nodes = trace.load_nodes(trace.DEFAULT_NODES)
    requests = [p.request for p in trace.load_pods(trace.DEFAULT_PODS)]
    binds = Digest()
    with recording_allocations(binds):
        run = run_inflation(nodes, requests, policy, seed)
    return {"workload": "inflation", "policy": policy, "seed": seed, "pods": run.pods, "failed": run.failed,
            "binds": binds.count, "binds_sha256": binds.hexdigest(),
            "unallocated_gpu_pct_at_100": run.unallocated_gpu_pct_at_100,
            "seconds": round(time.perf_counter() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default="bigk,fgd", help="comma-separated policy names")
    ap.add_argument("--nodes", default="300,100", help="comma-separated GPU node counts of the benchmark (CPU nodes "
                    "are added): 300 GPU nodes hold the 3,000 pods, 100 do not (pods wait and are preempted)")
    ap.add_argument("--pods", type=int, default=3000, help="arriving pods of the benchmark")
    ap.add_argument("--batch", type=int, default=250, help="pods arriving per benchmark cycle")
    ap.add_argument("--settle", type=int, default=5, help="benchmark cycles after the last arrival")
    ap.add_argument("--seed", type=int, default=42, help="the benchmark's seed")
    ap.add_argument("--seeds", default="42", help="comma-separated seeds of the inflation runs")
    ap.add_argument("--only", choices=("bench", "inflation"), default=None, help="one workload only")
    ap.add_argument("--json", dest="json_out", default="")
    args = ap.parse_args(argv)
    policies = [p for p in args.policy.split(",") if p]
    rows: list[dict[str, Any]] = []
    if args.only in (None, "bench"):
        for n_nodes in (int(n) for n in args.nodes.split(",") if n):
            for policy in policies:
                rows.append(bench_decisions(policy, n_nodes, args.pods, args.batch, args.seed, args.settle))
                print(json.dumps(rows[-1]), flush=True)
    if args.only in (None, "inflation"):
        for policy in policies:
            for seed in (int(s) for s in args.seeds.split(",") if s):
                rows.append(inflation_decisions(policy, seed))
                print(json.dumps(rows[-1]), flush=True)
    if args.json_out:
        import bigk

        with open(args.json_out, "w") as f:
            json.dump({"bigk": os.path.dirname(os.path.abspath(bigk.__file__)), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
