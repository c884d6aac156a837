"""Every dashboard panel and every alert expression against a real Prometheus scraping a running `bigk serve`.

No synthetic data: `bigk serve` runs as a process on its embedded emulated cluster
with the example queue tree, and the test drives it as operators and users would:
a GPU goes bad, one bind fails, runs finish, a queue that borrowed every A100 loses
them to a queue under its guarantee, a gang is left waiting, a spec file is broken.
Two `bigk agent`s read GPUs through DCGM (a dcgm-exporter page scraped by the same
Prometheus): one publishes to its node, the other names a node that does not exist.
Prometheus scrapes serve, both agents and the DCGM page every second and loads the
alert rules.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.observability.conftest import Prom, _free_port
from tests.observability.test_prometheus import GRAFANA_VARS, _alert_exprs, _grafana, _panel_exprs

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
TIME_SCALE = 0.05  # a 20 s expected duration runs 1 s

DCGM_HOSTS = ("gpu-a100-0", "gpu-ghost")  # a real node of the cluster, and one that does not exist
DCGM_PAGE = "".join(
    f"# TYPE {name} gauge\n" + "".join(
        f'{name}{{gpu="{g}",UUID="GPU-{h}-{g}",device="nvidia{g}",modelName="NVIDIA A100-SXM4-80GB",'
        f'Hostname="{h}"}} {value}\n' for h in DCGM_HOSTS for g in range(8))
    for name, value in (("DCGM_FI_DEV_FB_FREE", 80000), ("DCGM_FI_DEV_FB_USED", 1559), ("DCGM_FI_DEV_GPU_UTIL", 3),
                        ("DCGM_FI_DEV_GPU_TEMP", 41), ("DCGM_FI_DEV_XID_ERRORS", 0)))

BATCH_QUEUE = """
---
# No guarantee: it only borrows, and gives back to a queue under its guarantee.
apiVersion: bigk.io/v1
kind: Queue
metadata: {name: batch}
"""


def _job(name: str, queue: str, executors: int, duration: int, gpu: bool, idle: bool = False,
         cron: str = "") -> str:
    gpu_block = "    gpu: {count: 1}\n" if gpu else ""
    idle_block = "    annotations: {bigk.io/sim-gpu-utilization: \"1\"}\n" if idle else ""
    schedule = f"  schedule: {{cron: \"{cron}\"}}\n" if cron else ""
    return (f"apiVersion: bigk.io/v1\nkind: SparkJob\nmetadata:\n  name: {name}\nspec:\n  type: Python\n"
            f"  image: bigk/spark-apps:0.1\n  mainApplicationFile: local:///opt/app.py\n  queue: {queue}\n"
            f"  expectedDurationSeconds: {duration}\n{schedule}"
            f"  executor:\n    cores: 1\n    memory: 1g\n    instances: {executors}\n{gpu_block}{idle_block}")


class _Dcgm(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = DCGM_PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


class Live:
    """The running system: serve's URL and token, the emulator's URL, Prometheus."""

    def __init__(self, serve_url: str, token: str, emulator_url: str, prom: Prom) -> None:
        self.serve_url, self.token, self.emulator_url, self.prom = serve_url, token, emulator_url, prom
        self.http = httpx.Client(base_url=serve_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    def run(self, job: str) -> str:
        resp = self.http.post(f"/api/v1/jobs/{job}/run")
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    def state(self, run_id: str) -> str:
        return str(self.http.get(f"/api/v1/runs/{run_id}").json()["state"])


def _wait(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus binary is not installed (Debian: apt-get install -y prometheus)")
    tmp = tmp_path_factory.mktemp("live")
    specs, state = tmp / "specs", tmp / "state"
    specs.mkdir()
    (specs / "queues.yaml").write_text((ROOT / "jobspecs" / "queues.yaml").read_text() + BATCH_QUEUE)
    jobs = [_job("hog", "batch", 16, 20_000, gpu=True, idle=True),
            _job("train", "ml.training", 4, 20_000, gpu=True, idle=True),
            _job("hog2", "batch", 16, 20_000, gpu=True), _job("smoke", "etl", 1, 20, gpu=False, cron="0 0 1 1 *")]
    (specs / "live.yaml").write_text("---\n".join(jobs))
    (specs / "broken.yaml").write_text(_job("broken", "etl", 1, 20, gpu=False).replace("  queue:", "  qeueu:"))
    procs: list[subprocess.Popen[bytes]] = []
    logs = []

    def start(name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (tmp / f"{name}.log").open("w")
        logs.append(log)
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        procs.append(proc)
        return proc

    dcgm = ThreadingHTTPServer(("127.0.0.1", 0), _Dcgm)
    dcgm.daemon_threads = True
    threading.Thread(target=dcgm.serve_forever, daemon=True).start()
    serve_port, agent_ports, prom_port = _free_port(), (_free_port(), _free_port()), _free_port()
    try:
        serve = start("serve", [sys.executable, "-m", "bigk.cli.main", "serve", "--specs", str(specs),
                                "--cluster", str(ROOT / "jobspecs" / "cluster.yaml"), "--state-dir", str(state),
                                "--listen", f"127.0.0.1:{serve_port}", "--time-scale", str(TIME_SCALE),
                                "--no-kickoff", "--lease-seconds", "3", "--log-level", "WARNING"])
        serve_url = f"http://127.0.0.1:{serve_port}"
        _wait(lambda: serve.poll() is None and _ready(serve_url), 60, f"bigk serve ({tmp / 'serve.log'})")
        kubeconfig = state / "kubeconfig"
        emulator_url = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        config = tmp / "prometheus.yml"
        targets = {"bigk": f"127.0.0.1:{serve_port}", "bigk-agent": [f"127.0.0.1:{p}" for p in agent_ports],
                   "dcgm": f"127.0.0.1:{dcgm.server_address[1]}"}
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ROOT / "dashboards" / "alerts.yaml")],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": t if isinstance(t, list) else [t]}]}
                               for job, t in targets.items()]}))
        proc = start("prometheus", [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
                                    f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"])
        prom = Prom(f"http://127.0.0.1:{prom_port}")
        _wait(lambda: proc.poll() is None and _prom_up(prom), 60, "prometheus")
        for host, port in zip(DCGM_HOSTS, agent_ports, strict=True):
            start(f"agent-{host}", [sys.executable, "-m", "bigk.cli.main", "agent", "--node", host,
                                    "--kubeconfig", str(kubeconfig), "--dcgm-prometheus-url", prom.url,
                                    "--interval", "1", "--metrics-port", str(port), "--metrics-addr", "127.0.0.1"])
        system = Live(serve_url, (state / "token").read_text().strip(), emulator_url, prom)
        _drive(system)
        yield system
    finally:
        for proc in reversed(procs):
            _stop(proc)
        for log in logs:
            log.close()
        dcgm.shutdown()
        dcgm.server_close()


def _bind_failures(s: Live) -> float:
    """Serve's own count of failed binds, read from its /metrics as Prometheus would."""
    text = s.http.get("/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("bigk_scheduler_bind_failures_total{"))


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _prom_up(prom: Prom) -> bool:
    try:
        return bool(prom.query("up"))
    except (httpx.HTTPError, ValueError, AssertionError):
        return False


def _drive(s: Live) -> None:
    """What happens on the cluster while Prometheus watches."""
    emu = httpx.Client(base_url=s.emulator_url, timeout=10)
    assert emu.put("/emulator/v1/nodes/gpu-t4-1/gpus/3", json={"healthy": False}).status_code < 300
    assert emu.post("/emulator/v1/faults", json={"method": "POST", "path_regex": "/binding$", "status": 403,
                                                 "count": 1000}).status_code < 300
    smoke = s.run("smoke")
    # Its binds fail on purpose until the ETA board has estimated its start, so that its start is scored (the
    # bigk_eta_* outcome series); without the wait that depended on the board refreshing in a short window.
    _wait(lambda: (s.http.get(f"/api/v1/runs/{smoke}/explain").json()["eta"] or {}).get("eta"), 30,
          "an estimated start for smoke")
    _wait(lambda: _bind_failures(s) > 0, 30, "a failed bind of smoke (serve's /metrics)")
    assert emu.delete("/emulator/v1/faults").status_code < 300
    _wait(lambda: s.state(smoke) == "Succeeded", 60, "smoke to succeed (its first binds failed on purpose)")
    hog = s.run("hog")  # batch borrows all 16 A100s, and leaves them idle
    _wait(lambda: s.state(hog) == "Running", 60, "hog running")
    train = s.run("train")  # ml.training is under its guarantee: it takes 4 GPUs back (and leaves them idle)
    _wait(lambda: s.state(train) == "Running" and s.state(hog) == "Failed", 60, "train reclaiming from hog")
    hog2 = s.run("hog2")  # 16 GPUs again: only 12 are free, so this gang waits
    _wait(lambda: "gang needs" in s.http.get(f"/api/v1/runs/{hog2}/explain").json()["explanation"], 30,
          "hog2 waiting with an explanation")
    # Every series the dashboards read has been scraped a few times since the last change.
    _wait(lambda: _scraped(s.prom, 'bigk_scheduler_pending_gangs{queue="batch"}', 3), 30, "pending gangs scraped")
    _wait(lambda: _scraped(s.prom, 'bigk_agent_publishes_total{result="error"}', 3), 30, "agent errors scraped")
    _wait(lambda: _scraped(s.prom, "bigk_scheduler_unschedulable_explanations_total", 3), 30, "explanations")
    # The GPU watch samples every 10 s: its per-job series exist once a sample found train holding GPUs (CI once
    # ended the drive before any sample after train started).
    _wait(lambda: _scraped(s.prom, 'bigk_gpus_idle{job_name="train"}', 3), 60, "the GPU watch's findings on train")


def _scraped(prom: Prom, selector: str, samples: int) -> bool:
    try:
        found = prom.query(f"count_over_time({selector}[1m])")
    except (httpx.HTTPError, AssertionError):
        return False
    return bool(found) and min(float(r["value"][1]) for r in found) >= samples


@pytest.mark.parametrize(("where", "expr"), _panel_exprs(), ids=[w for w, _ in _panel_exprs()])
def test_every_panel_query_returns_live_series_from_serve(live: Live, where: str, expr: str) -> None:
    assert live.prom.query(_grafana(expr)), f"{where}: no live data for {expr!r}"


_SELECTOR = re.compile(r"\b(bigk_[a-z0-9_]+)(\{[^}]*\})?")


@pytest.mark.parametrize(("alert", "expr"), _alert_exprs(), ids=[a for a, _ in _alert_exprs()])
def test_every_alert_expression_reads_live_series(live: Live, alert: str, expr: str) -> None:
    """Each series an alert watches is exported by the running system (the alert itself need not fire)."""
    selectors = {m.group(0) for m in _SELECTOR.finditer(expr)}
    assert selectors, alert
    for selector in sorted(selectors):
        assert live.prom.query(selector), f"{alert}: {selector} has no live series (expr {expr!r})"
    assert live.prom.query(f"({expr}) or vector(0)") is not None  # and the whole expression evaluates


def test_the_queue_dashboard_shows_the_example_tree_live(live: Live) -> None:
    queues = {r["metric"]["queue"] for r in live.prom.query("bigk_queue_guaranteed")}
    assert {"etl", "ml", "ml.training", "ml.scoring"} <= queues
    used = {r["metric"]["queue"]: float(r["value"][1]) for r in live.prom.query('bigk_queue_allocated{resource="gpu"}')}
    assert used["ml.training"] == 4 and used["ml"] == 4  # the reclaimed GPUs, counted at both levels
    values = {s["metric"].get("queue") for s in live.prom.query("bigk_queue_allocated")}
    assert {"batch", "ml.training"} <= values  # what the $queue drop-down offers
    assert {r["metric"]["queue"] for r in live.prom.query("bigk_scheduler_preemptions_total")} == {"batch"}


def test_missed_fires_and_the_agent_are_charted(live: Live) -> None:
    exprs = " ".join(expr for _, expr in _panel_exprs())
    assert "bigk_runs_missed_total" in exprs
    assert {"bigk_agent_gpu_utilization_percent", "bigk_agent_publishes_total"} <= set(re.findall(r"bigk_agent_\w+",
                                                                                                   exprs))
    results = {r["metric"]["result"] for r in live.prom.query("bigk_agent_publishes_total")}
    assert results == {"ok", "error"}  # the real node's agent publishes; the other one cannot
    assert [r["metric"]["job_name"] for r in live.prom.query("bigk_runs_missed_total")] == ["smoke"]  # scheduled
    assert GRAFANA_VARS and json.loads(DASHBOARDS[0].read_text())["panels"]


def _serve_series() -> list[str]:
    """Every metric `bigk serve` defines (its registry), as the series name Prometheus stores."""
    from bigk import metrics

    suffix = {"counter": "_total", "histogram": "_count", "info": "_info"}
    return sorted({f.name + suffix.get(f.type, "") for f in metrics.REGISTRY.collect()})


@pytest.mark.parametrize("series", _serve_series())
def test_serve_itself_emits_every_metric_it_defines(live: Live, series: str) -> None:
    assert live.prom.query(f'{series}{{job="bigk"}}'), f"{series}: bigk serve never emitted it"
