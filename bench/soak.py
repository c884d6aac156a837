"""Soak: thousands of runs through `bigk serve`, time-scaled; is memory, cycle time and the database flat?

    python bench/soak.py --runs 5000 --concurrency 24 --json soak.json

The emulated cluster (`jobspecs/cluster.yaml`, kubelet and Spark driver simulation on,
`--time-scale` shortening every simulated delay) runs in a process of its own, so the
RSS measured is bigk's alone. `bigk serve` (the `Service` with its HTTP API, direct
submission, scheduler loop, cron, catalog, housekeeping) runs in this process. Runs are
asked for over the HTTP API (`POST /api/v1/jobs/J/run`), keeping `--concurrency` active,
round-robin over `--jobs` jobs (one driver + one executor each, history limit 3).

Every `--sample-s` seconds it records: runs finished, RSS (VmRSS), the scheduler's mean
cycle time over the interval, the SQLite database size (with its WAL), rows of runs,
history and events, and files in submit/. Memory after warm-up is judged by comparing
the RSS of the last fifth of samples with the samples right after the first fifth.
Housekeeping caps can be lowered (`--history-per-job`, `--events-max`) so that a short
soak reaches the plateau a long one would.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import platform
import sys
import tempfile
import textwrap
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _emulator(conn: Connection, time_scale: float) -> None:
    from bigk.cluster.config import load_cluster
    from bigk.emulator import EmulatedCluster

    logging.disable(logging.WARNING)
    cluster = EmulatedCluster(load_cluster(ROOT / "jobspecs" / "cluster.yaml"), time_scale=time_scale)
    conn.send(cluster.start())
    conn.recv()  # until told to stop
    cluster.stop()


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def job_yaml(name: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: bigk.io/v1
        kind: SparkJob
        metadata:
          name: {name}
        spec:
          type: Python
          image: bigk/spark-apps:0.1
          mainApplicationFile: local:///opt/app.py
          expectedDurationSeconds: 20
          schedule:
            cron: "0 3 * * *"
            suspend: true
            successfulRunsHistoryLimit: 3
            failedRunsHistoryLimit: 3
          driver:
            cores: 1
            memory: 1g
          executor:
            cores: 1
            memory: 1g
            instances: 1
        """)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5000)
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--concurrency", type=int, default=24)
    ap.add_argument("--time-scale", type=float, default=0.02)
    ap.add_argument("--sample-s", type=float, default=10.0)
    ap.add_argument("--history-per-job", type=int, default=None)
    ap.add_argument("--events-max", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import httpx

    from bigk.service import housekeeping
    from bigk.service.api import create_app
    from bigk.service.app import Service, ServiceConfig
    from bigk.service.http import HttpServer

    housekeeping.EVERY_S = 5.0
    if args.history_per_job is not None:
        housekeeping.HISTORY_PER_JOB = args.history_per_job
    if args.events_max is not None:
        housekeeping.EVENTS_MAX_ROWS = args.events_max

    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=_emulator, args=(child, args.time_scale), daemon=True)
    proc.start()
    url = parent.recv()
    work = Path(tempfile.mkdtemp(prefix="bigk-soak-"))
    specs = work / "specs"
    specs.mkdir()
    names = [f"soak-{i}" for i in range(args.jobs)]
    for name in names:
        (specs / f"{name}.yaml").write_text(job_yaml(name))
    state = work / "state"
    svc = Service(ServiceConfig(specs=[specs], kube_server=url, state_dir=state, submit_mode="direct",
                                tick_s=0.2, reload_s=5.0)).start()
    http = HttpServer("127.0.0.1", 0)
    base = http.start(create_app(svc, "soak-token"))
    client = httpx.Client(base_url=base, headers={"Authorization": "Bearer soak-token"}, timeout=30)
    db = state / "bigk.db"
    samples: list[dict[str, Any]] = []
    requested = 0
    started = time.monotonic()
    next_sample = started
    last_cycles, last_decide = 0, 0.0
    try:
        deadline = time.monotonic() + 5
        while not svc.is_leader and time.monotonic() < deadline:
            time.sleep(0.1)
        while True:
            store = svc.db()
            active = len(store.active_runs())
            while requested < args.runs and active < args.concurrency:
                name = names[requested % len(names)]
                resp = client.post(f"/api/v1/jobs/{name}/run")
                resp.raise_for_status()
                requested += 1
                active += 1
            now = time.monotonic()
            if now >= next_sample:
                loop = svc.loop
                cycles = loop.stats.cycles
                decide = loop.stats.decide_s_total
                mean_cycle_ms = (decide - last_decide) / max(1, cycles - last_cycles) * 1000
                last_cycles, last_decide = cycles, decide
                size = sum(p.stat().st_size for p in state.glob("bigk.db*") if p.is_file()) if db.exists() else 0
                with store.engine.connect() as conn:
                    from sqlalchemy import text

                    rows = {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()  # noqa: S608
                            for t in ("bigk_runs", "bigk_history", "bigk_events")}
                submit = state / "submit"
                sample = {"t_s": round(now - started, 1), "requested": requested, "active": active,
                          "history_rows": rows["bigk_history"], "run_rows": rows["bigk_runs"],
                          "event_rows": rows["bigk_events"], "rss_mib": round(rss_mib(), 1),
                          "mean_cycle_ms": round(mean_cycle_ms, 2), "cycles": cycles,
                          "db_mib": round(size / 2**20, 2),
                          "submit_files": len(list(submit.iterdir())) if submit.exists() else 0}
                samples.append(sample)
                print(json.dumps(sample), flush=True)
                next_sample = now + args.sample_s
            if requested >= args.runs and active == 0:
                break
            time.sleep(0.05)
    finally:
        client.close()
        http.stop()
        svc.stop()
        parent.send("stop")
        proc.join(10)
    elapsed = time.monotonic() - started
    fifth = max(1, len(samples) // 5)
    warm = samples[fifth: 2 * fifth] or samples[:1]
    tail = samples[-fifth:]
    report = {
        "runs": args.runs, "jobs": args.jobs, "concurrency": args.concurrency, "time_scale": args.time_scale,
        "elapsed_s": round(elapsed, 1), "runs_per_s": round(args.runs / elapsed, 2),
        "rss_after_warmup_mib": round(sum(s["rss_mib"] for s in warm) / len(warm), 1),
        "rss_end_mib": round(sum(s["rss_mib"] for s in tail) / len(tail), 1),
        "rss_max_mib": max(s["rss_mib"] for s in samples),
        "cycle_ms_after_warmup": round(sum(s["mean_cycle_ms"] for s in warm) / len(warm), 2),
        "cycle_ms_end": round(sum(s["mean_cycle_ms"] for s in tail) / len(tail), 2),
        "db_mib_end": samples[-1]["db_mib"], "db_mib_max": max(s["db_mib"] for s in samples),
        "submit_files_max": max(s["submit_files"] for s in samples),
        "python": platform.python_version(), "samples": samples,
    }
    summary = {k: v for k, v in report.items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
