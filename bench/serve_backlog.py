"""`bigk serve` with thousands of queued runs: does its API stay fast, and is a run that fits admitted at once?

    python3 bench/serve_backlog.py --runs 5000 --json bench/results/serve-backlog-5000.json

Issue 20's third goal: with 5,000 queued runs on the emulated cluster, the API answers within 100 ms (p95) and a
run that fits is admitted within one cycle of the capacity appearing. The script starts `bigk serve` in this
process (the `Service` and its HTTP server, as `bigk serve` does) on the embedded emulated cluster of
`jobspecs/cluster.yaml` (4 CPU nodes, 2x8 A100, 2x4 T4), with two jobs written to a temporary specs folder:

- `hog`: two executors of 8 A100 each: takes every A100 for an hour;
- `queued`: one executor of 8 A100: it fits as soon as the hog is gone.

1. `hog` runs; 2. `--runs` runs of `queued` are created through the API (`POST /api/v1/jobs/queued/run`) and
   submitted by the service (direct mode: a driver pod each), so that the scheduler has that many gangs
   waiting; 3. the API is timed while they wait: `--requests` calls of each read an operator makes (`get runs`,
   one run, `explain`, the queue's head as `bigk get queue` asks for it (50 rows), the whole queue (every waiting
   run, each explained), the queues, `/healthz`, `/metrics`), one after another from one client, p50 / p95 / max, and
   the run ticker's ticks meanwhile (`run_tick`); 4. the hog is cancelled; capacity appears when its pods
   leave the scheduler's cache, and
   `cycles_to_admit` counts the scheduling cycles from then until a queued gang leaves the waiting list
   (1: the first cycle to finish admitted it; 2: a cycle was already running and the next one did), beside
   the seconds, the loop's mean cycle time, and the time until the run's own state says so.

The emulated cluster runs in the same process, so its API server competes for the same interpreter as
`bigk serve`'s: the figures are an upper bound of what `bigk serve` alone would show. Writes JSON with
`--json`; prints one summary line per measured read.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bigk.cluster.labels import RUN_LABEL  # noqa: E402
from bigk.gctune import tune_for_long_lived_state  # noqa: E402
from bigk.service.app import Service  # noqa: E402
from bigk.service.config import ServiceConfig  # noqa: E402
from bigk.service.http import HttpServer  # noqa: E402
from bigk.switching import favour_waiting_threads  # noqa: E402

TOKEN = "bench-token"
JOB = """apiVersion: bigk.io/v1
kind: SparkJob
metadata:
  name: {name}
spec:
  type: Python
  image: bigk/spark-apps:0.1
  mainApplicationFile: local:///opt/app.py
  expectedDurationSeconds: {duration}
  executor:
    cores: 4
    memory: 8g
    instances: {executors}
    gpu:
      count: 8
      model: A100-80GB
"""


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50, p95 and max in milliseconds."""
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50_ms": at(0.5), "p95_ms": at(0.95), "max_ms": round(1000 * ordered[-1], 2), "n": len(ordered)}


def wait_until(check: Any, timeout: float, what: str, every: float = 0.5) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if check():
            return time.monotonic() - began
        time.sleep(every)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


def states(c: httpx.Client) -> dict[str, int]:
    out: dict[str, int] = {}
    for run in c.get("/api/v1/runs", params={"job": "queued", "limit": 10_000}).json():
        out[run["state"]] = out.get(run["state"], 0) + 1
    return out


def started(c: httpx.Client) -> bool:
    """Has a queued run been admitted (or started)? Two one-row listings: cheap however long the backlog."""
    return any(c.get("/api/v1/runs", params={"job": "queued", "state": state, "limit": 1}).json()
               for state in ("Admitted", "Running"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5000, help="queued runs")
    ap.add_argument("--requests", type=int, default=100, help="timed calls of each read")
    ap.add_argument("--json", dest="json_out", default="")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bigk-serve-backlog-"))
    specs = tmp / "specs"
    specs.mkdir()
    (specs / "hog.yaml").write_text(JOB.format(name="hog", duration=3600, executors=2))
    (specs / "queued.yaml").write_text(JOB.format(name="queued", duration=60, executors=1))
    cfg = ServiceConfig(specs=[specs], state_dir=tmp / "state", cluster_file=ROOT / "jobspecs" / "cluster.yaml",
                        submit_mode="direct")
    service = Service(cfg).start()
    http = HttpServer("127.0.0.1", 0)
    url = http.start(_app(service))
    tune_for_long_lived_state()  # as `bigk serve` does once it listens (without it, full GC passes of 200-350 ms)
    favour_waiting_threads()  # as `bigk serve` does
    result: dict[str, Any] = {"runs": args.runs, "requests": args.requests}
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as c:
            wait_until(lambda: service.is_leader, 30, "leadership")
            hog = c.post("/api/v1/jobs/hog/run").json()["id"]
            wait_until(lambda: c.get(f"/api/v1/runs/{hog}").json()["state"] == "Running", 120, "the hog running")
            began = time.monotonic()
            for _ in range(args.runs):
                c.post("/api/v1/jobs/queued/run").raise_for_status()
            result["create_s"] = round(time.monotonic() - began, 1)
            submitted = wait_until(lambda: states(c).get("Submitted", 0) >= args.runs, 3600,
                                   f"{args.runs} runs submitted", every=5.0)
            result["submit_s"] = round(submitted + result["create_s"], 1)
            some = c.get("/api/v1/runs", params={"job": "queued", "limit": 10_000}).json()[args.runs // 2]["id"]
            reads = {"get runs": "/api/v1/runs", "get run": f"/api/v1/runs/{some}",
                     "explain": f"/api/v1/runs/{some}/explain", "queue": "/api/v1/queue?limit=50",
                     "queue all": "/api/v1/queue",
                     "queues": "/api/v1/queues", "healthz": "/healthz", "metrics": "/metrics"}
            ticks = _time_ticks(service)
            timings: dict[str, dict[str, float]] = {}
            for name, path in reads.items():
                samples = []
                for _ in range(args.requests):
                    t0 = time.perf_counter()
                    c.get(path).raise_for_status()
                    samples.append(time.perf_counter() - t0)
                timings[name] = percentiles(samples)
                print(f"{name:>10}: p50 {timings[name]['p50_ms']} ms, p95 {timings[name]['p95_ms']} ms, "
                      f"max {timings[name]['max_ms']} ms", file=sys.stderr, flush=True)
            result["api"] = timings
            result["run_tick"] = percentiles(list(ticks))  # the run ticker's ticks while the reads ran
            loop = service.loop
            assert loop is not None
            cycles0, spent0 = loop.stats.cycles, loop.stats.decide_s_total
            time.sleep(10.0)
            cycles1, spent1 = loop.stats.cycles, loop.stats.decide_s_total
            result["cycle_s_mean"] = round((spent1 - spent0) / max(1, cycles1 - cycles0), 3)
            result["cycles_per_s"] = round((cycles1 - cycles0) / 10.0, 2)
            waiting_before = len(service.loop_view().explanations)

            def hog_pods() -> int:
                return sum(1 for e in loop.cache.pod_entries() if e.labels.get(RUN_LABEL) == hog)

            t0 = time.monotonic()
            c.post(f"/api/v1/runs/{hog}/cancel").raise_for_status()
            # Capacity appears when the hog's pods leave the scheduler's cache; the gang admitted then leaves the
            # waiting list in the cycle that admits it (both read in this process, every 10 ms).
            wait_until(lambda: hog_pods() == 0, 60, "the hog's pods gone from the scheduler's cache", every=0.01)
            gone_at, gone_cycles = time.monotonic(), loop.stats.cycles
            wait_until(lambda: len(service.loop_view().explanations) < waiting_before, 60,
                       "a queued gang admitted by the scheduler", every=0.01)
            result["capacity_after_cancel_s"] = round(gone_at - t0, 2)
            result["admitted_after_capacity_s"] = round(time.monotonic() - gone_at, 2)
            result["cycles_to_admit"] = service.loop_view().cycles - gone_cycles
            freed = wait_until(lambda: c.get(f"/api/v1/runs/{hog}").json()["state"] == "Cancelled", 60, "hog gone",
                               every=0.05)
            admitted = wait_until(lambda: started(c), 120, "a queued run admitted", every=0.05)
            result["hog_cancelled_s"] = round(freed, 2)
            result["first_admitted_after_cancel_s"] = round(time.monotonic() - t0, 2)
            result["admitted_after_hog_gone_s"] = round(admitted, 2)
            result["waiting_gangs"] = len(service.loop_view().explanations)
    finally:
        http.stop()
        service.stop()
    print(json.dumps(result, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _time_ticks(service: Service) -> list[float]:
    """From now on, the seconds each run-ticker tick takes (its pass over every active run), in a list."""
    runs = service.runs
    assert runs is not None
    took: list[float] = []
    tick = runs.tick

    def timed() -> None:
        t0 = time.perf_counter()
        try:
            tick()
        finally:
            took.append(time.perf_counter() - t0)

    runs.tick = timed  # type: ignore[method-assign]
    return took


def _app(service: Service) -> Any:
    from bigk.service.api import create_app

    return create_app(service, TOKEN)


if __name__ == "__main__":
    sys.exit(main())
