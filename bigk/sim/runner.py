"""Run protocols for several policies over several seeds, with an optional progress callback."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from bigk.cluster.model import Node
from bigk.sim.inflation import INFLATION_RATIO, SeedRun, run_inflation
from bigk.sim.trace import TracePod

log = logging.getLogger(__name__)

# (policy, seed) -> a callback taking (pods done, pods in the run)
RunProgress = Callable[[str, int], Callable[[int, int], None]]


def parse_seeds(text: str) -> list[int]:
    """"42-51" or "1,2,5-7" -> a list of seeds (non-negative integers)."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"bad seed {part!r}: use N, N-M or a comma-separated list of those")
        first, last = int(lo), int(hi) if sep else int(lo)
        if last < first:
            raise ValueError(f"seed range {part!r} runs backwards")
        seeds.extend(range(first, last + 1))
    if not seeds:
        raise ValueError("no seeds given")
    return seeds


def run_inflation_sweep(nodes: Sequence[Node], pods: Sequence[TracePod], policies: Sequence[str],
                        seeds: Sequence[int], ratio: float = INFLATION_RATIO,
                        progress: RunProgress | None = None) -> dict[str, list[SeedRun]]:
    """Every policy on every seed (same seeds, so the same node orders and pod sequences)."""
    requests = [p.request for p in pods]
    runs: dict[str, list[SeedRun]] = {}
    for policy in policies:
        runs[policy] = []
        for seed in seeds:
            advance = None if progress is None else progress(policy, seed)
            run = run_inflation(nodes, requests, policy, seed, ratio, advance)
            log.info("event=sim-run protocol=inflation policy=%s seed=%d unallocated_pct_at_100=%.2f seconds=%.1f",
                     policy, seed, run.unallocated_gpu_pct_at_100, run.seconds)
            runs[policy].append(run)
    return runs
