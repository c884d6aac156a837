"""`bigk agent` against a tiny local fake of the Kubernetes node PATCH endpoint."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from bigk import metrics
from bigk.cli.main import app
from bigk.cluster.labels import GPU_READINGS_ANNOTATION
from bigk.cluster.readings import ReadingRecord, decode
from bigk.gpu.agent import Agent, AgentError, NodeAnnotationPublisher, make_core_api, serve_metrics
from tests.gpu.fake_nvml import FakeNvml, healthy_gpu


class FakeApi:
    """Records PATCH /api/v1/nodes/NAME calls; answers with queued status codes (default 200)."""

    def __init__(self) -> None:
        self.patches: list[tuple[str, str, dict[str, Any]]] = []  # (node, content type, body)
        self.statuses: list[int] = []
        self.nodes = {"gpu-1"}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_PATCH(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                name = self.path.split("?")[0].rsplit("/", 1)[-1]
                status = fake.statuses.pop(0) if fake.statuses else 200
                if name not in fake.nodes:
                    status = 404
                if status == 200:
                    fake.patches.append((name, self.headers.get("Content-Type", ""), body))
                reply = json.dumps({"kind": "Node", "metadata": {"name": name}} if status == 200 else
                                   {"kind": "Status", "code": status}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def _records() -> list[ReadingRecord]:
    return [ReadingRecord(0, "GPU-a", "T4", 15360, 15000, 0.0, 40.0, True, 100.0),
            ReadingRecord(1, "GPU-b", "T4", 15360, 1000, 99.0, 70.0, False, 100.0, ("xid_79",))]


def test_publish_merge_patches_only_the_readings_annotation(api: FakeApi) -> None:
    publisher = NodeAnnotationPublisher(make_core_api(kube_server=api.url))
    Agent("gpu-1", _records, publisher).run_once()
    (node, content_type, body), = api.patches
    assert node == "gpu-1"
    assert content_type.startswith("application/merge-patch+json")
    assert list(body) == ["metadata"] and list(body["metadata"]) == ["annotations"]
    annotation = body["metadata"]["annotations"][GPU_READINGS_ANNOTATION]
    assert decode(annotation) == _records()


def test_unknown_node_is_a_clear_error(api: FakeApi) -> None:
    publisher = NodeAnnotationPublisher(make_core_api(kube_server=api.url))
    with pytest.raises(AgentError, match="node 'gpu-9' does not exist"):
        Agent("gpu-9", _records, publisher).run_once()


def test_loop_backs_off_on_api_errors_and_recovers(api: FakeApi) -> None:
    api.statuses = [500, 503]
    publisher = NodeAnnotationPublisher(make_core_api(kube_server=api.url))
    agent = Agent("gpu-1", _records, publisher, interval_s=0.01, max_backoff_s=0.05)
    before = metrics.AGENT_REGISTRY.get_sample_value("bigk_agent_publishes_total", {"result": "error"}) or 0
    stop = threading.Event()
    thread = threading.Thread(target=agent.run_forever, args=(stop,))
    thread.start()
    try:
        for _ in range(200):
            if api.patches:
                break
            stop.wait(0.02)
    finally:
        stop.set()
        thread.join(5)
    assert api.patches, "the agent never recovered after two API errors"
    assert metrics.AGENT_REGISTRY.get_sample_value("bigk_agent_publishes_total", {"result": "error"}) == before + 2


def test_backoff_grows_and_is_capped() -> None:
    agent = Agent("n", _records, None, interval_s=10, max_backoff_s=300)
    assert agent.next_delay(0) == 10
    assert 16 <= agent.next_delay(1) <= 24
    assert 240 <= agent.next_delay(12) <= 360


def test_agent_metrics_endpoint_serves_per_gpu_gauges() -> None:
    Agent("gpu-1", _records, None, echo=lambda _: None).run_once()
    server = serve_metrics(0, "127.0.0.1")
    try:
        text = httpx.get(f"http://127.0.0.1:{server.server_address[1]}/metrics").text
    finally:
        server.shutdown()
        server.server_close()
    assert 'bigk_agent_gpu_healthy{gpu="1",model="T4",node="gpu-1"} 0.0' in text
    assert 'bigk_agent_gpu_utilization_percent{gpu="1",model="T4",node="gpu-1"} 99.0' in text


def test_cli_once_dry_run_prints_the_json_it_would_write(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeNvml([healthy_gpu(0, util=12), healthy_gpu(1)]).install(monkeypatch)
    result = CliRunner().invoke(app, ["agent", "--node", "gpu-1", "--once", "--dry-run"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert [g["index"] for g in printed] == [0, 1]
    assert printed[0]["utilization_pct"] == 12.0 and printed[0]["healthy"] is True


def test_cli_once_patches_the_node(monkeypatch: pytest.MonkeyPatch, api: FakeApi) -> None:
    FakeNvml([healthy_gpu(0)]).install(monkeypatch)
    result = CliRunner().invoke(app, ["agent", "--node", "gpu-1", "--once", "--kube-server", api.url])
    assert result.exit_code == 0, result.output
    assert decode(api.patches[0][2]["metadata"]["annotations"][GPU_READINGS_ANNOTATION])[0].uuid == "GPU-0000-0"
