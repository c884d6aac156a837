"""Cost of bigk's cluster metrics at the Alibaba-trace scale: `update_cluster` and a `/metrics` scrape.

    python bench/metrics_scale.py --nodes 1213 --runs 5 --json OUT.json

Builds a cluster of `--nodes` GPU nodes (2, 4 or 8 GPUs each, three pools, a fresh
live reading on every GPU), allocates about 60 % of the GPUs, then times
`bigk.metrics.update_cluster` (what the scheduler calls to refresh per-GPU and
per-pool figures) and `bigk.metrics.render()` (one Prometheus scrape) right after
an update and again cached. Figures are medians over `--runs`.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time

from bigk import metrics
from bigk.cluster.model import Gpu, GpuReading, Node, PodRequest
from bigk.cluster.state import ClusterState


def build(nodes: int, seed: int, now: float) -> ClusterState:
    rng = random.Random(seed)
    cluster = []
    for i in range(nodes):
        gpus = [Gpu(g, "V100", 32768, reading=GpuReading(20000, rng.random() * 100, 50.0, True, now))
                for g in range(rng.choice([2, 4, 8]))]
        cluster.append(Node(f"node-{i}", 96000, 768000, gpus=gpus, labels={"bigk.io/pool": rng.choice("abc")}))
    state = ClusterState(cluster)
    req = PodRequest(1000, 1000, gpu_count=1, gpu_milli=1000)
    placed = 0
    for i in range(nodes):
        for _ in range(len(cluster[i].gpus)):
            slots = state.default_gpus(i, req)
            if slots and rng.random() < 0.6:
                state.allocate(f"pod-{placed}", req, state.placement_for(i, req, slots))
                placed += 1
    return state


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1213)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    now = time.time()
    state = build(args.nodes, args.seed, now)
    metrics.update_cluster(state, now)  # warm-up
    update, first, cached = [], [], []
    size = 0
    for _ in range(args.runs):
        t0 = time.perf_counter()
        metrics.update_cluster(state, now)
        t1 = time.perf_counter()
        size = len(metrics.render())
        t2 = time.perf_counter()
        metrics.render()
        t3 = time.perf_counter()
        update.append((t1 - t0) * 1000)
        first.append((t2 - t1) * 1000)
        cached.append((t3 - t2) * 1000)
    result = {
        "nodes": args.nodes, "gpus": int(state.gpu_count.sum()), "allocated_gpus": len(state.allocations),
        "update_cluster_ms": round(statistics.median(update), 2),
        "render_after_update_ms": round(statistics.median(first), 2),
        "render_cached_ms": round(statistics.median(cached), 2),
        "exposition_bytes": size, "runs": args.runs, "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
