"""An imported Spark Operator example runs through `bigk serve`; `bigk logs` and `bigk ui` reach its pods.

The manifest is the corpus's copy of the operator's fenced-restart example: a ConfigMap holding the job's
script and the SparkApplication that mounts it, in one file. The run goes through the production path
(catalog, cron/run-now, submission, gang admission, binds) on the emulated cluster and, marked `cluster`,
on the real API server. Logs and the UI need a kubelet behind the API server: the emulator serves
simulated ones; on the real API server the simulated kubelet's HTTPS endpoint serves `pods/log`, and the pod
proxy (Spark UI) dials the simulated driver's pod IP, this host's address, where the simulated UI listens
(`bigk.emulator.driver_ui`).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client
from typer.testing import CliRunner

from bigk.cli.main import app
from bigk.cli.runio_cmds import UiForwarder, stream_logs
from bigk.errors import BigkError
from bigk.service.client import Client
from tests.service.conftest import ON_BOTH_CLUSTERS, Running, wait_for

pytestmark = ON_BOTH_CLUSTERS

CORPUS = Path(__file__).parents[1] / "spec" / "data" / "operator-corpus"
JOB = "resumable-etl"


def _specs(tmp_path: Path, duration_s: int, conf: dict[str, str] | None = None) -> Path:
    """The corpus file, with the emulator's duration hint on the driver (an ordinary operator annotation)."""
    docs = list(yaml.safe_load_all((CORPUS / "spark-fenced-restart.yaml").read_text(encoding="utf-8")))
    app_doc = docs[1]
    app_doc["spec"]["driver"]["annotations"] = {"bigk.io/expected-duration-seconds": str(duration_s)}
    app_doc["spec"].setdefault("sparkConf", {}).update(conf or {})
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "fenced.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    return specs


def _cli(*args: str) -> tuple[int, str]:
    """`bigk ARGS` as the console script runs it: a BigkError is one line and its exit code (bigk.cli.main.main)."""
    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, BigkError):
        return result.exception.exit_code, f"{result.output}error: {result.exception}"
    return result.exit_code, result.output


def _run_now(svc: Running) -> str:
    with svc.client() as c:
        resp = c.post(f"/api/v1/jobs/{JOB}/run")
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])


def _run(svc: Running, run_id: str) -> dict[str, Any]:
    with svc.client() as c:
        return dict(c.get(f"/api/v1/runs/{run_id}").json())


def test_imported_operator_example_runs_through_bigk_serve(
        tmp_path: Path, serve: Callable[..., Running]) -> None:
    svc = serve(_specs(tmp_path, 20))
    run_id = _run_now(svc)
    done = wait_for(lambda: (r := _run(svc, run_id))["state"] in ("Succeeded", "Failed") and r, 60, "the run")
    assert done["state"] == "Succeeded", done
    assert [p["role"] for p in done["pods"]] == ["driver", "executor"]
    core = client.CoreV1Api(svc.service.api)
    script = core.read_namespaced_config_map("resumable-etl-script", "default")
    assert "SparkSession" in script.data["resumable_etl.py"]  # passed through from the same file
    driver = core.read_namespaced_pod(done["driver_pod"], "default") if done["driver_pod"] else None
    if driver is not None:
        volumes = {v.name: v for v in driver.spec.volumes or []}
        assert volumes["job-script"].config_map.name == "resumable-etl-script"


def _start(tmp_path: Path, serve: Callable[..., Running], conf: dict[str, str] | None = None) -> tuple[Running, str]:
    svc = serve(_specs(tmp_path, 120, conf))  # 6 s at the fixture's time scale
    run_id = _run_now(svc)
    wait_for(lambda: _run(svc, run_id)["state"] == "Running", 30, "the run to start")
    wait_for(lambda: len(client.CoreV1Api(svc.service.api).list_namespaced_pod(
        "default", label_selector=f"bigk.io/run={run_id},spark-role=executor").items) == 1, 10, "the executor")
    return svc, run_id


class _Sink:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    def flush(self) -> None:
        return

    @property
    def text(self) -> str:
        return "".join(self.parts)


def test_logs_of_a_running_then_finished_run(tmp_path: Path, serve: Callable[..., Running],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """On the emulator its own pods/log; on the real API server, through the simulated kubelet's endpoint."""
    svc, run_id = _start(tmp_path, serve)
    monkeypatch.setenv("BIGK_TOKEN", svc.token)
    followed = _Sink()
    reader = threading.Thread(target=stream_logs, args=(svc.url, run_id, None, True, False, None, False, followed),
                              daemon=True)
    reader.start()
    wait_for(lambda: "Registered executor 1" in followed.text, 15, "the executor line in the followed log")
    code, out = _cli("logs", run_id, "--executor", "1", "--server", svc.url)
    assert code == 0 and "Successfully registered with driver" in out, out

    reader.join(timeout=30)
    assert not reader.is_alive(), "bigk logs -f did not end with the driver"
    assert "Submitted application" in followed.text and followed.text.rstrip().endswith("Shutdown hook called")
    wait_for(lambda: _run(svc, run_id)["state"] == "Succeeded", 30, "the run to finish")

    code, out = _cli("logs", run_id, "--tail", "1", "--server", svc.url)
    assert code == 0 and out.rstrip().endswith("Shutdown hook called"), out
    # the executor's pod goes once Spark has deleted it; on kube-apiserver a deletion is graceful (listed until its
    # kubelet confirms), so it can outlive the driver's end by a moment
    wait_for(lambda: _cli("logs", run_id, "--executor", "1", "--server", svc.url)[0] == 3, 15,
             "the executor's pod to be gone")
    code, out = _cli("logs", run_id, "--executor", "1", "--server", svc.url)
    assert code == 3 and "no executor 1" in out, out
    code, out = _cli("logs", run_id, "--previous", "--server", svc.url)
    assert code == 1 and "previous terminated container" in out, out
    code, out = _cli("describe", "run", run_id, "--server", svc.url)
    assert code == 0 and f"bigk logs {run_id}" in out and f"bigk ui {run_id}" in out, out


def test_ui_of_a_running_then_finished_run(tmp_path: Path, serve: Callable[..., Running],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """On the emulator its own pod proxy; on kube-apiserver its pods/NAME:PORT/proxy, which dials the simulated
    driver's UI at the pod IP. The UI port is the job's spark.ui.port, declared on the driver as `spark-ui`."""
    monkeypatch.setenv("BIGK_SPARK_HISTORY_URL", "http://history.example.com:18080")
    with socket.socket() as probe:
        probe.bind(("", 0))
        port = probe.getsockname()[1]
    svc, run_id = _start(tmp_path, serve, {"spark.ui.port": str(port)})
    monkeypatch.setenv("BIGK_TOKEN", svc.token)
    api = Client(svc.url)
    info = api.get(f"/runs/{run_id}/ui")
    assert info["running"] and info["port"] == port
    assert info["portForward"] == f"kubectl -n default port-forward pod/{info['pod']} {port}:{port}"
    forwarder = UiForwarder(api, run_id, port=0).start()
    try:
        apps = httpx.get(f"{forwarder.url}/api/v1/applications", timeout=5).json()
        assert apps[0]["name"] == JOB
        page = httpx.get(f"{forwarder.url}/jobs/", timeout=5)
        assert page.status_code == 200 and "Spark Jobs" in page.text
    finally:
        forwarder.stop()
    wait_for(lambda: _run(svc, run_id)["state"] == "Succeeded", 30, "the run to finish")
    code, out = _cli("ui", run_id, "--server", svc.url)
    assert code == 0 and "Succeeded" in out, out
    app_id = _run(svc, run_id)["spark_app_id"]
    assert f"History server: http://history.example.com:18080/history/{app_id}/jobs/" in out
    with svc.client() as c:
        assert c.get(f"/api/v1/runs/{run_id}/ui/proxy/jobs/").status_code == 503


def test_unknown_run_is_not_found(tmp_path: Path, serve: Callable[..., Running],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    svc = serve(_specs(tmp_path, 20))
    monkeypatch.setenv("BIGK_TOKEN", svc.token)
    code, out = _cli("logs", "no-such-run", "--server", svc.url)
    assert code == 3 and "no run 'no-such-run'" in out, out
    with svc.client() as c:
        body = c.get("/api/v1/runs/no-such-run/ui").json()
    assert "no run" in json.dumps(body)


def test_restart_policy_always_starts_the_job_again_after_success_until_cancelled(
        tmp_path: Path, serve: Callable[..., Running]) -> None:
    """The operator's `restartPolicy: Always` (long-running applications), as bigk runs it."""
    from tests.service.conftest import job_yaml

    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "stream.yaml").write_text(job_yaml("stream", instances=1, duration=20,
                                                extra="restartPolicy: {type: Always, backoffSeconds: 0}\n"))
    svc = serve(specs)
    with svc.client() as c:
        first = c.post("/api/v1/jobs/stream/run").json()["id"]

    def runs() -> list[dict[str, Any]]:
        with svc.client() as c:
            return list(c.get("/api/v1/runs", params={"job": "stream"}).json())

    again = wait_for(lambda: [r for r in runs() if r["trigger"] == "restart"], 60, "a restart after success")[0]
    assert _run(svc, first)["state"] == "Succeeded" and again["attempt"] == 1
    with svc.client() as c:
        assert c.post(f"/api/v1/runs/{again['id']}/cancel").status_code == 200
    wait_for(lambda: _run(svc, again["id"])["state"] == "Cancelled", 10, "the cancel")
    count = len(runs())
    import time

    time.sleep(2)
    assert len(runs()) == count  # a cancelled run is not started again
