"""bigk's scheduling loop as a process of its own, so that `bench/e2e.py` measures it as it measures kube-scheduler.

    python3 bench/e2e_bigk.py --kubeconfig K [--scheduler-name bigk] [--policy bigk]

It runs `SchedulerLoop` (informers, the scheduling core, binds) exactly as `bigk serve` does, without the
service around it (no database, no HTTP): the benchmark compares schedulers, not services. SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from bigk.gctune import tune_for_long_lived_state  # noqa: E402
from bigk.kube.client import api_client  # noqa: E402
from bigk.kube.loop import SchedulerLoop  # noqa: E402
from bigk.scheduler import Scheduler  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="e2e_bigk", description="bigk's scheduling loop, alone, for benchmarks")
    parser.add_argument("--kubeconfig", required=True, type=Path)
    parser.add_argument("--scheduler-name", default="bigk")
    parser.add_argument("--policy", default="bigk", help="placement policy (default bigk, `bigk serve`'s default)")
    parser.add_argument("--interval", type=float, default=0.1, help="longest wait between cycles (s)")
    parser.add_argument("--bind-workers", type=int, default=16,
                        help="binds in flight at once (default 16, SchedulerLoop's default, what `bigk serve` runs)")
    parser.add_argument("--log-level", default="WARNING", help="INFO shows one line per cycle that binds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    api = api_client(kubeconfig=str(args.kubeconfig))  # as `bigk serve` builds it (a pool for 16 binds in flight)
    loop = SchedulerLoop(api, Scheduler(args.policy), scheduler_name=args.scheduler_name, leader_election=False,
                         interval_s=args.interval, bind_workers=args.bind_workers)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    loop.start()
    tune_for_long_lived_state()  # as `bigk serve` does
    print("ready", flush=True)
    done.wait()
    loop.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
