"""Benchmark: FGD, bigk (and any policy) on the default trace and the FGD artifact's variants, resumable.

    python bench/simulate.py --policy fgd,bigk --seeds 42-51 --variants all --jsonl OUT.jsonl \\
        [--offline default,cpu250,gpushare100,multigpu50,gpuspec33]
    python bench/simulate.py --table OUT.jsonl      # the markdown table of docs/simulate.md
    python bench/simulate.py --share-floor --seeds 42-51 [--variants default]   # GPU-share packing floor

`bigk simulate --variant all --offline` computes the same figures in one command; this script
exists for slow or shared machines: it runs seed by seed across all traces (so an interrupted
run still has the same seeds for every trace), appends one JSON line per run as it finishes,
skips runs already in the file (start it again to resume, or start several on disjoint
`--variants` to use more cores), and `--offline` adds the offline best and bound of the
first seed for the traces named. Every number comes from a run made by this script.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from bigk.sim.inflation import run_inflation
from bigk.sim.runner import parse_seeds
from bigk.sim.suite import is_published_trace, variant_traces
from bigk.sim.trace import DEFAULT_NODES, DEFAULT_PODS, load_nodes, load_pods


def _done(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run(args: argparse.Namespace) -> None:
    nodes, pods = load_nodes(args.nodes), load_pods(args.pods)
    policies = [p for p in args.policy.split(",") if p]
    seeds = parse_seeds(args.seeds)
    traces = variant_traces(args.variants, args.pods, pods, nodes, args.variant_seed)
    out = Path(args.jsonl)
    seen = {(r["trace"], r.get("policy"), r.get("seed"), r["kind"]) for r in _done(out)}
    published = is_published_trace(args.nodes, args.pods)

    def emit(row: dict[str, Any]) -> None:
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)

    offline = {t for t in args.offline.split(",") if t}
    for tr in traces:
        if tr.name in offline and (tr.name, None, seeds[0], "offline") not in seen:
            from dataclasses import asdict

            from bigk.sim.offline import offline_best, seed_arrivals

            arrived, _ = seed_arrivals(nodes, [p.request for p in tr.pods], seeds[0])
            emit({"kind": "offline", "trace": tr.name, "seed": seeds[0],
                  **asdict(offline_best(nodes, arrived, args.offline_time))})
    requests = {tr.name: [p.request for p in tr.pods] for tr in traces}
    for seed in seeds:
        for tr in traces:
            for policy in policies:
                if (tr.name, policy, seed, "run") in seen:
                    continue
                r = run_inflation(nodes, requests[tr.name], policy, seed)
                emit({"kind": "run", "trace": tr.name, "source": tr.source, "policy": policy, "seed": seed,
                      "unallocated_gpu_pct_at_100": r.unallocated_gpu_pct_at_100, "seconds": round(r.seconds, 2),
                      "published_trace": published and tr.source == "base"})


def share_floor(args: argparse.Namespace) -> None:
    """Per seed: unallocated GPU % if the GPU shares arrived up to 100% were packed best-fit-decreasing.

    On the default trace every whole GPU is taken by 100% arrived (both fgd and bigk), so what
    is left unallocated is the free remainder of GPUs holding shares. Packing the same shares
    offline, largest first, each into the fullest GPU it fits (one GPU per share kind, as the
    artifact's sharing pods), shows how little an online policy that places every pod that fits
    can still gain there. Not a proof of optimality: best-fit-decreasing is a heuristic.
    """
    import numpy as np

    from bigk.cluster.model import MILLI_GPU
    from bigk.sim.inflation import inflated_workload

    nodes, pods = load_nodes(args.nodes), load_pods(args.pods)
    gpu_nodes = [n for n in nodes if n.gpus]
    capacity = sum(len(n.gpus) for n in gpu_nodes) * MILLI_GPU
    for tr in variant_traces(args.variants, args.pods, pods, nodes, args.variant_seed):
        requests = [p.request for p in tr.pods]
        for seed in parse_seeds(args.seeds):
            rng = np.random.default_rng(seed)
            rng.permutation(len(gpu_nodes))  # the node order draw of run_inflation, so the pods match
            arrived, shares = 0, []
            for r in inflated_workload(requests, capacity, rng):
                arrived += r.total_gpu_milli
                if arrived > capacity:
                    break
                if r.is_fractional:
                    shares.append(r.gpu_milli)
            room: list[int] = []  # free milli-GPU of each GPU holding shares
            for share in sorted(shares, reverse=True):
                fits = [i for i, left in enumerate(room) if left >= share]
                if fits:
                    room[min(fits, key=lambda i: room[i])] -= share
                else:
                    room.append(MILLI_GPU - share)
            print(json.dumps({"kind": "share-floor", "trace": tr.name, "seed": seed, "shares": len(shares),
                              "gpus": len(room), "unallocated_gpu_pct": round(100 * sum(room) / capacity, 2)}))


def table(path: Path) -> str:
    """Median per trace and policy over the seeds every policy has, beside the offline best."""
    from bigk.sim.report import PUBLISHED
    from bigk.sim.variants import ARTIFACT_VARIANTS

    rows = _done(path)
    runs: dict[str, dict[str, dict[int, float]]] = {}
    offline: dict[str, dict[str, Any]] = {}
    published: set[str] = set()
    for r in rows:
        if r["kind"] == "offline":
            offline[r["trace"]] = r
        else:
            runs.setdefault(r["trace"], {}).setdefault(r["policy"], {})[r["seed"]] = r["unallocated_gpu_pct_at_100"]
            if r.get("published_trace"):
                published.add(r["trace"])
    order = ["default", *ARTIFACT_VARIANTS]
    lines = ["| trace | seeds | fgd | bigk | bigk ≤ fgd | offline (seed) | bound (seed) | fgd, bigk (seed) "
             "| published fgd |", "|---|---|---|---|---|---|---|---|---|"]
    for name in sorted(runs, key=lambda n: (order.index(n) if n in order else len(order), n)):
        by = runs[name]
        common = sorted(set.intersection(*(set(v) for v in by.values())))
        if not common or "fgd" not in by or "bigk" not in by:
            continue
        fgd = [by["fgd"][s] for s in common]
        bigk = [by["bigk"][s] for s in common]
        wins = sum(b <= f for b, f in zip(bigk, fgd, strict=True))
        off = offline.get(name)
        if off is not None and off["seed"] in by["fgd"] and off["seed"] in by["bigk"]:
            o = (f"{off['offline_unallocated_pct']:.2f} | {off['bound_unallocated_pct']:.2f}"
                 f"{'' if off['optimal'] else '*'} | {by['fgd'][off['seed']]:.2f}, {by['bigk'][off['seed']]:.2f}")
        else:
            o = " | | "
        pub = f"{PUBLISHED['fgd']:.2f}" if name in published else ""
        lines.append(f"| {name} | {common[0]}-{common[-1]} ({len(common)}) | {statistics.median(fgd):.2f} | "
                     f"**{statistics.median(bigk):.2f}** | {wins}/{len(common)} | {o} | {pub} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", default=str(DEFAULT_NODES))
    parser.add_argument("--pods", default=str(DEFAULT_PODS))
    parser.add_argument("--policy", default="fgd,bigk")
    parser.add_argument("--seeds", default="42-51")
    parser.add_argument("--variants", default="all", help="'all', or variants and 'default', comma-separated")
    parser.add_argument("--variant-seed", type=int, default=7)
    parser.add_argument("--offline", default="", help="traces to compute the offline best for (first seed)")
    parser.add_argument("--offline-time", type=float, default=60.0)
    parser.add_argument("--jsonl", help="append one line per run here (and skip runs already there)")
    parser.add_argument("--table", help="print the markdown table of a JSONL file and exit")
    parser.add_argument("--share-floor", action="store_true",
                        help="print, per seed, the unallocated %% of a best-fit-decreasing packing of the GPU shares")
    args = parser.parse_args(argv)
    if args.share_floor:
        share_floor(args)
        return 0
    if args.table:
        print(table(Path(args.table)))
        return 0
    if not args.jsonl:
        parser.error("--jsonl is required to run")
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
