"""A real Prometheus (Debian package `prometheus`) scraping bigk's exporters on loopback.

The fixture fills `bigk.metrics` with a cluster in which every alert condition
holds (an unhealthy GPU, idle allocated GPUs, stale readings, failing binds, no
leader, ...), keeps counters and histograms moving while Prometheus scrapes
every second, and also serves a fake dcgm-exporter page for the DCGM reader.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from bigk import metrics
from bigk.cluster.model import Gpu, GpuReading, Node, PodRequest, Queue
from bigk.cluster.state import ClusterState
from bigk.cluster.usage import Usage
from bigk.service import cluster_metrics

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "dashboards" / "alerts.yaml"

_DCGM_VALUES = {  # metric: (GPU 0, GPU 1) on node gpu-node-1, as dcgm-exporter labels them
    "DCGM_FI_DEV_FB_FREE": (80000, 1200),
    "DCGM_FI_DEV_FB_USED": (1559, 80359),
    "DCGM_FI_DEV_GPU_UTIL": (0, 93),
    "DCGM_FI_DEV_GPU_TEMP": (33, 67),
    "DCGM_FI_DEV_XID_ERRORS": (0, 48),
}
DCGM_PAGE = "".join(
    f"# TYPE {name} gauge\n" + "".join(
        f'{name}{{gpu="{g}",UUID="GPU-h1-{g}",device="nvidia{g}",modelName="NVIDIA H100 80GB HBM3",'
        f'Hostname="gpu-node-1"}} {v}\n' for g, v in enumerate(values))
    for name, values in _DCGM_VALUES.items())


@dataclass
class Prom:
    url: str

    def query(self, promql: str) -> list[dict]:
        resp = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        body = resp.json()
        assert body.get("status") == "success", f"{promql!r}: {body.get('error')}"
        return list(body["data"]["result"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fill_sample_cluster(now: float) -> None:
    """A small cluster in which every dashboard panel and alert has something to show."""
    fresh = GpuReading(60000, 1.0, 45.0, True, now)
    busy = GpuReading(20000, 95.0, 70.0, True, now)
    sick = GpuReading(80000, 0.0, 40.0, False, now)
    stale = GpuReading(80000, 0.0, 40.0, True, now - 400)
    nodes = [
        Node("gpu-a", 64000, 512000, gpus=[Gpu(0, "A100", 81920, reading=fresh), Gpu(1, "A100", 81920, reading=busy)],
             labels={"bigk.io/pool": "a100"}),
        Node("gpu-b", 64000, 512000, gpus=[Gpu(0, "A100", 81920, reading=sick), Gpu(1, "A100", 81920, reading=stale)],
             labels={"bigk.io/pool": "a100"}),
        Node("cpu-a", 32000, 128000, labels={"bigk.io/pool": "cpu"}, unschedulable=True),
    ]
    state = ClusterState(nodes)
    whole = PodRequest(4000, 16000, gpu_count=1, gpu_milli=1000)
    half = PodRequest(2000, 8000, gpu_count=1, gpu_milli=500, gpu_memory_mib=20000)
    state.allocate("idle-whole", whole, state.placement_for(0, whole, (0,)))
    state.allocate("busy-half", half, state.placement_for(0, half, (1,)))
    metrics.update_cluster(state, now)
    metrics.update_queues([Queue("etl", guaranteed={"gpu": 1000, "cpu": 8000, "memory": 32000},
                                 maximum={"gpu": 4000, "cpu": 32000, "memory": 128000})],
                          {"etl": {"gpu": 1500, "cpu": 6000, "memory": 24000}})
    metrics.update_queue_models([Queue("etl", guaranteed_models={"A100": 1000}, maximum_models={"A100": 2000})],
                                {"etl": Usage(6000, 24000, 1500, (("NVIDIA-A100-SXM4-80GB", 1000),))})
    metrics.set_pending({"etl": 7}, {"etl": 2}, {"etl": 2000.0})
    metrics.set_gpu_findings({("etl", "nightly"): 2.0}, {"a100": 1.0}, {"a100": 1.0}, {"a100": 1.0})
    metrics.set_leader(False)
    metrics.set_reservations(1)
    metrics.set_runs_current({("nightly", "running"): 1, ("hourly", "pending"): 2})
    metrics.set_agent_readings("gpu-a", [
        {"index": 0, "model": "A100", "utilization_pct": 1.0, "memory_free_mib": 60000, "memory_total_mib": 81920,
         "temperature_c": 45.0, "healthy": True},
    ])


def bump(now: float) -> None:
    """Move every counter and histogram so rate()/increase()/histogram_quantile() have data."""
    metrics.record_bind(True)
    metrics.record_bind(False, "conflict")
    metrics.observe_cycle(0.02, now - 600)  # the loop "finished" 10 minutes ago: BigkSchedulerStalled holds
    metrics.observe_gang_admission("etl", 30.0)
    metrics.record_preemption("etl")
    metrics.record_reservation_expired()
    metrics.record_explanation("insufficient_gpu")
    for state in ("succeeded", "failed"):
        metrics.record_run_state("nightly", state)
        metrics.observe_run_finished("nightly", state, 900.0)
    metrics.observe_queue_wait("etl", 45.0)
    metrics.record_run_missed("nightly")
    metrics.set_spec_load_errors({"jobspecs/broken.yaml": 2})
    metrics.record_agent_publish(False, now)
    cluster_metrics.serve_clusters(lambda: SAMPLE_CLUSTERS)


# `bigk get clusters` rows as bigk serve over two clusters serves them (bigk.service.clusters_api): one lost.
SAMPLE_CLUSTERS = [
    {"name": "default", "reachable": True, "cordoned": False, "capacity": {"gpus": 4}, "allocated": {"gpus": 1.5},
     "waiting_gangs": 2, "runs": {"Running": 1, "Pending": 2}},
    {"name": "cloud", "reachable": False, "cordoned": True, "capacity": {"gpus": 8}, "allocated": {"gpus": 8},
     "waiting_gangs": 0, "runs": {"Unknown": 2}},
]


class _Exporter(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        pages = {"/metrics": metrics.render, "/agent": metrics.render_agent, "/dcgm": lambda: DCGM_PAGE.encode()}
        page = pages.get(self.path)
        body = page() if page else b""
        self.send_response(200 if page else 404)
        self.send_header("Content-Type", metrics.CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


@pytest.fixture(scope="module")  # its bumper thread must stop before other modules read counters
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prom]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus binary is not installed (Debian: apt-get install -y prometheus)")
    tmp = tmp_path_factory.mktemp("prometheus")
    exporter = ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    exporter.daemon_threads = True
    threading.Thread(target=exporter.serve_forever, daemon=True).start()
    target = f"127.0.0.1:{exporter.server_address[1]}"
    fill_sample_cluster(time.time())
    stop = threading.Event()

    def bumper() -> None:
        while not stop.is_set():
            bump(time.time())
            stop.wait(0.1)

    threading.Thread(target=bumper, daemon=True).start()
    config = tmp / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{ALERTS}']\n"
        "scrape_configs:\n"
        f"  - {{job_name: bigk, metrics_path: /metrics, static_configs: [{{targets: ['{target}']}}]}}\n"
        f"  - {{job_name: bigk-agent, metrics_path: /agent, static_configs: [{{targets: ['{target}']}}]}}\n"
        f"  - {{job_name: dcgm, metrics_path: /dcgm, static_configs: [{{targets: ['{target}']}}]}}\n")
    port = _free_port()
    log = (tmp / "prometheus.log").open("w")
    proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=log, stderr=subprocess.STDOUT)
    server = Prom(f"http://127.0.0.1:{port}")
    try:
        _wait_for_data(server, proc, tmp / "prometheus.log")
        yield server
    finally:
        stop.set()
        cluster_metrics.serve_clusters(None)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        exporter.shutdown()
        exporter.server_close()


def _wait_for_data(server: Prom, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Ready, all three targets scraped, and at least 3 samples of a moving counter."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            up = server.query("sum(up)")
            samples = server.query("count_over_time(bigk_scheduler_bind_attempts_total[1m])")
            dcgm = server.query("count_over_time(DCGM_FI_DEV_FB_FREE[1m])")
        except (httpx.HTTPError, ValueError):
            time.sleep(0.3)
            continue
        if (up and float(up[0]["value"][1]) == 3 and samples and float(samples[0]["value"][1]) >= 3
                and dcgm and min(float(s["value"][1]) for s in dcgm) >= 1):
            return
        time.sleep(0.3)
    raise RuntimeError(f"prometheus never had data to query: {log.read_text()[-2000:]}")
