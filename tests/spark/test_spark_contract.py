"""Contract with real spark-submit: the driver pod Spark builds from bigk's argv and templates.

A tiny HTTP server stands in for the Kubernetes API, records the driver pod that
spark-submit POSTs and refuses it, so nothing runs. Slow (a JVM start per job).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bigk.spark.submit import build_submission
from bigk.spec.gang import pod_requests
from bigk.spec.model import JobSpec

from .conftest import make_job


class _Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, bytes]] = []

    def _refuse(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.seen.append((self.command, self.path, self.rfile.read(length) if length else b""))
        body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403}).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _refuse

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    seen: list[tuple[str, str, bytes]] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"k8s://http://127.0.0.1:{server.server_port}", seen
    server.shutdown()


def _driver_pod(job: JobSpec, master: str, seen: list[tuple[str, str, bytes]], workdir: Path) -> dict[str, Any]:
    sub = build_submission(job, "r7", master, workdir)
    proc = subprocess.run(sub.argv, env={**os.environ, **sub.env}, capture_output=True, text=True, timeout=240)
    assert proc.returncode != 0  # the fake API refused the pod
    posts = [json.loads(body) for method, path, body in seen if method == "POST" and path.endswith("/pods")]
    assert posts, proc.stderr[-3000:]
    return posts[0]


@pytest.mark.spark
@pytest.mark.slow
def test_spark_builds_the_driver_pod_bigk_expects(
    examples: dict[str, JobSpec], api: tuple[str, list[tuple[str, str, bytes]]], tmp_path: Path
) -> None:
    master, seen = api
    job = examples["gpu-scoring"]
    pod = _driver_pod(job, master, seen, tmp_path)
    assert pod["metadata"]["name"] == "gpu-scoring-r7-driver"
    assert pod["spec"]["schedulerName"] == "bigk"
    labels, annotations = pod["metadata"]["labels"], pod["metadata"]["annotations"]
    assert (labels["bigk.io/job"], labels["bigk.io/run"], labels["bigk.io/queue"]) == ("gpu-scoring", "r7", "ml")
    assert labels["spark-role"] == "driver"
    assert annotations["bigk.io/min-executors"] == "3" and annotations["bigk.io/priority"] == "50"
    requests = pod["spec"]["containers"][0]["resources"]["requests"]
    driver, _ = pod_requests(job)
    assert requests["memory"] == f"{driver.memory_mib}Mi"  # bigk's overhead rule matches Spark's (Python: 40%)
    assert requests["cpu"] == "1"


@pytest.mark.spark
@pytest.mark.slow
def test_jvm_overhead_matches_spark(api: tuple[str, list[tuple[str, str, bytes]]], tmp_path: Path) -> None:
    master, seen = api
    job = make_job(
        {
            "type": "Scala",
            "mainClass": "org.example.Main",
            "mainApplicationFile": "local:///opt/app.jar",
            "image": "apache/spark:4.0.1",
            "driver": {"memory": "8g", "coreRequest": "500m"},
        }
    )
    pod = _driver_pod(job, master, seen, tmp_path)
    requests = pod["spec"]["containers"][0]["resources"]["requests"]
    driver, _ = pod_requests(job)
    assert requests["memory"] == f"{driver.memory_mib}Mi" == "9011Mi"
    assert requests["cpu"] == "500m"
