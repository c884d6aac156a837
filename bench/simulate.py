"""Benchmark: the FGD paper's reproduction table and bigk, on the default trace and on variant traces.

    python bench/simulate.py --policy random,dotprod,gpuclustering,gpupacking,bestfit,fgd,bigk \\
        --seeds 42-51 --json OUT.json [--variants cpu-only=0.3,share=0.8,multi-gpu=0.5,gpu-spec=0.33]

Writes {"results": [{"trace", "policy", "median_unallocated_gpu_pct_at_100", "per_seed", "published",
"seconds_per_run", "seconds_total"}]}. Every number comes from a run made by this script.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from bigk.sim.report import PUBLISHED
from bigk.sim.runner import parse_seeds, run_inflation_sweep
from bigk.sim.trace import DEFAULT_NODES, DEFAULT_PODS, load_nodes, load_pods
from bigk.sim.variants import make_variant, parse_variant


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", default=str(DEFAULT_NODES))
    parser.add_argument("--pods", default=str(DEFAULT_PODS))
    parser.add_argument("--policy", default="fgd,bigk")
    parser.add_argument("--seeds", default="42-43", help="short by default; the paper uses 42-51")
    parser.add_argument("--variants", default="", help="comma-separated KIND=SHARE variant traces to add")
    parser.add_argument("--variant-seed", type=int, default=7)
    parser.add_argument("--json", required=True)
    args = parser.parse_args(argv)

    nodes, pods = load_nodes(args.nodes), load_pods(args.pods)
    policies = [p for p in args.policy.split(",") if p]
    seeds = parse_seeds(args.seeds)
    traces = [("default", pods)]
    for text in filter(None, args.variants.split(",")):
        kind, share = parse_variant(text)
        traces.append((text, make_variant(pods, kind, share, seed=args.variant_seed, nodes=nodes)))
    results = []
    for name, trace_pods in traces:
        runs = run_inflation_sweep(nodes, trace_pods, policies, seeds)
        for policy, rs in runs.items():
            values = [r.unallocated_gpu_pct_at_100 for r in rs]
            results.append({
                "trace": name, "policy": policy,
                "median_unallocated_gpu_pct_at_100": round(statistics.median(values), 3),
                "per_seed": values,
                "published": PUBLISHED.get(policy) if name == "default" else None,
                "seconds_per_run": round(statistics.fmean(r.seconds for r in rs), 2),
                "seconds_total": round(sum(r.seconds for r in rs), 2),
            })
            print(f"{name:>18} {policy:>14} {results[-1]['median_unallocated_gpu_pct_at_100']:6.2f}% "
                  f"({results[-1]['seconds_total']:.1f} s)", flush=True)
    Path(args.json).write_text(json.dumps({"seeds": seeds, "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
