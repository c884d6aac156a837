"""`bigk agent`: publish this node's live GPU readings as a node annotation.

Runs as a DaemonSet on GPU nodes. Every `interval` seconds it reads all GPUs
(NVML, or DCGM through Prometheus), writes the JSON list to the node's
`bigk.io/gpu-readings` annotation with a JSON merge patch, and keeps per-GPU
gauges on its own `/metrics`. API errors back off exponentially (with jitter)
up to `max_backoff_s` and never stop the loop; the scheduler treats readings
older than its staleness limit as unknown, so a quiet agent degrades to
accounting-only scheduling instead of wrong decisions.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from bigk import metrics
from bigk.cluster.labels import GPU_READINGS_ANNOTATION
from bigk.cluster.readings import ReadingRecord, encode
from bigk.errors import BigkError
from bigk.kube.client import api_client, drain

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
DEFAULT_METRICS_PORT = 9402


class AgentError(BigkError):
    """The agent cannot reach the Kubernetes API or update its node."""


class Publisher(Protocol):
    def publish(self, node: str, payload: str) -> None: ...


class NodeAnnotationPublisher:
    """Writes the readings annotation with a JSON merge patch (touches nothing else on the node)."""

    def __init__(self, api: k8s.CoreV1Api, timeout_s: float = 10.0) -> None:
        self.api = api
        self.timeout_s = timeout_s

    def publish(self, node: str, payload: str) -> None:
        body = {"metadata": {"annotations": {GPU_READINGS_ANNOTATION: payload}}}
        try:
            # The generated client would pick json-patch for PATCH; a dict body needs merge-patch.
            # _preload_content=False skips deserialising the whole Node we do not need.
            resp = self.api.patch_node(node, body, _content_type=MERGE_PATCH, _preload_content=False,
                                       _request_timeout=self.timeout_s)
        except ApiException as exc:
            if exc.status == 404:
                raise AgentError(f"node {node!r} does not exist in the cluster (check --node / NODE_NAME)") from exc
            raise AgentError(f"patching node {node!r} failed: HTTP {exc.status} {exc.reason}") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise AgentError(f"Kubernetes API unreachable while patching node {node!r}: {exc}") from exc
        status = getattr(resp, "status", 200)
        drain(resp)  # released unread, the next patch on this connection read the old body as its status line
        if status >= 300:
            raise AgentError(f"patching node {node!r} failed: HTTP {status}")


def make_core_api(kubeconfig: str | None = None, kube_server: str | None = None) -> k8s.CoreV1Api:
    """A CoreV1Api from --kube-server, --kubeconfig, in-cluster config or ~/.kube/config (see bigk.kube.client)."""
    return k8s.CoreV1Api(api_client(kubeconfig=kubeconfig, server=kube_server, pool_size=2))


@dataclass
class Agent:
    """One node's read -> publish loop."""

    node: str
    read: Callable[[], list[ReadingRecord]]
    publisher: Publisher | None  # None = dry run
    interval_s: float = 10.0
    max_backoff_s: float = 300.0
    clock: Callable[[], float] = time.time
    echo: Callable[[str], None] = print

    def run_once(self) -> list[ReadingRecord]:
        """Read and publish once; raises AgentError/BigkError on failure."""
        records = self.read()
        metrics.set_agent_readings(self.node, [r.to_json_obj() for r in records])
        payload = encode(records)
        if self.publisher is None:
            self.echo(json.dumps(json.loads(payload), indent=2))
            return records
        try:
            self.publisher.publish(self.node, payload)
        except BigkError:
            metrics.record_agent_publish(False, self.clock())
            raise
        metrics.record_agent_publish(True, self.clock())
        unhealthy = [r.index for r in records if not r.healthy]
        log.debug("event=published node=%s gpus=%d unhealthy=%s", self.node, len(records), unhealthy)
        return records

    def next_delay(self, failures: int) -> float:
        """Seconds to wait after `failures` consecutive failures (0 = the normal interval)."""
        if failures == 0:
            return self.interval_s
        backoff = min(self.max_backoff_s, self.interval_s * 2 ** min(failures, 16))
        return backoff * random.uniform(0.8, 1.2)

    def run_forever(self, stop: threading.Event) -> None:
        """Loop until `stop` is set; logs one line when failing starts and one when it recovers."""
        failures = 0
        last_unhealthy: Sequence[int] = ()
        while not stop.is_set():
            try:
                records = self.run_once()
            except BigkError as exc:
                failures += 1
                delay = self.next_delay(failures)
                if failures == 1 or failures % 10 == 0:
                    log.warning("event=publish_failed node=%s failures=%d retry_in_s=%.1f error=%r",
                                self.node, failures, delay, str(exc))
            else:
                if failures:
                    log.info("event=publish_recovered node=%s after_failures=%d", self.node, failures)
                failures = 0
                delay = self.interval_s
                unhealthy = [r.index for r in records if not r.healthy]
                if unhealthy != list(last_unhealthy):
                    log.warning("event=gpu_health_changed node=%s unhealthy=%s reasons=%s", self.node, unhealthy,
                                {r.index: list(r.health_reasons) for r in records if not r.healthy})
                    last_unhealthy = unhealthy
            stop.wait(delay)


class _MetricsHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        if self.path.split("?")[0] == "/metrics":
            body, ctype, code = metrics.render_agent(), metrics.CONTENT_TYPE, 200
        elif self.path == "/healthz":
            body, ctype, code = b"ok\n", "text/plain", 200
        else:
            body, ctype, code = b"not found\n", "text/plain", 404
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        return  # scrapes every few seconds would flood the log


def serve_metrics(port: int, addr: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Start the agent's /metrics and /healthz server on a daemon thread; returns the server."""
    server = ThreadingHTTPServer((addr, port), _MetricsHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="bigk-agent-metrics", daemon=True).start()
    return server
