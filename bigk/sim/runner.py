"""Run protocols for several policies over several seeds, with an optional progress callback."""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

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


def default_jobs() -> int:
    """One process per CPU this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def run_inflation_sweep(nodes: Sequence[Node], pods: Sequence[TracePod], policies: Sequence[str],
                        seeds: Sequence[int], ratio: float = INFLATION_RATIO,
                        progress: RunProgress | None = None, jobs: int = 1) -> dict[str, list[SeedRun]]:
    """Every policy on every seed (same seeds, so the same node orders and pod sequences).

    With `jobs` > 1 the runs go to that many worker processes (each run is independent and
    deterministic, so the results are those of the serial sweep); progress then moves by
    whole runs.
    """
    requests = [p.request for p in pods]
    pairs = [(policy, seed) for policy in policies for seed in seeds]
    done: dict[tuple[str, int], SeedRun] = {}
    if jobs > 1 and len(pairs) > 1:
        # spawn, not fork: the caller may hold threads (a progress bar) that a forked child would inherit locked
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(jobs, len(pairs)), mp_context=context) as pool:
            futures = {pair: pool.submit(run_inflation, nodes, requests, pair[0], pair[1], ratio) for pair in pairs}
            for pair, future in futures.items():
                advance = None if progress is None else progress(*pair)
                done[pair] = _logged(future.result())
                if advance is not None:
                    advance(1, 1)
    else:
        for policy, seed in pairs:
            advance = None if progress is None else progress(policy, seed)
            done[policy, seed] = _logged(run_inflation(nodes, requests, policy, seed, ratio, advance))
    return {policy: [done[policy, seed] for seed in seeds] for policy in policies}


def _logged(run: SeedRun) -> SeedRun:
    log.info("event=sim-run protocol=inflation policy=%s seed=%d unallocated_pct_at_100=%.2f seconds=%.1f",
             run.policy, run.seed, run.unallocated_gpu_pct_at_100, run.seconds)
    return run
