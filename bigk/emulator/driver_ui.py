"""Simulated Spark UIs that a real kube-apiserver's pod proxy can reach.

kube-apiserver answers `pods/NAME:PORT/proxy/PATH` by dialling the pod's IP, and refuses loopback and
link-local addresses. On a real cluster the Spark driver listens there itself. Simulated pods have no
network, so `SimulatedNodes` gives each simulated driver the host's own (non-loopback) address as its
pod IP, and this module listens, for every running driver, on that address and the driver's `spark-ui`
port, answering with the same pages as the embedded emulator's pod proxy (`podproxy.render_ui`).

All drivers share one address: two running drivers that declare the same UI port cannot both be served;
the second one's UI does not answer (a dial error at the API server, as for a driver whose UI is down),
and a warning says so. Give each job its own `spark.ui.port` when that matters.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

from bigk.emulator.host import ObjectStore
from bigk.emulator.podproxy import render_ui, serves_ui
from bigk.emulator.store import Obj, WatchEvent
from bigk.spark.driver_pod import ui_port

log = logging.getLogger("bigk.emulator")


def host_address() -> str | None:
    """This machine's address on its default route (no packet is sent), or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith(("127.", "169.254.", "0.")) else address


class DriverUiServers:
    """One small HTTP server per running simulated driver at `address`:`spark-ui port`."""

    def __init__(self, store: ObjectStore, address: str) -> None:
        self.store = store
        self.address = address
        self._servers: dict[str, tuple[ThreadingHTTPServer, int]] = {}  # pod uid -> (server, port)
        self._lock = threading.Lock()
        self._stopped = False

    def start(self) -> DriverUiServers:
        self.store.subscribe(self._on_change)
        items, _ = self.store.objects("pods")
        for pod in items:
            self._consider(pod)
        return self

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            servers, self._servers = list(self._servers.values()), {}
        for server, _ in servers:
            server.shutdown()
            server.server_close()

    def ports(self) -> dict[str, int]:
        """The UI port served per driver pod uid (for tests and logs)."""
        with self._lock:
            return {uid: port for uid, (_, port) in self._servers.items()}

    # ---- following the drivers ------------------------------------------------------------------
    def _on_change(self, key: str, event: WatchEvent) -> None:
        if key == "pods":
            self._consider(event.obj, deleted=event.type == "DELETED")

    def _consider(self, pod: Obj, deleted: bool = False) -> None:
        uid = pod["metadata"].get("uid", "")
        running_here = (not deleted and (pod.get("status") or {}).get("podIP") == self.address
                        and serves_ui(pod, str(ui_port(pod))))
        if running_here:
            self._open(uid, pod)
        else:
            self._close(uid)

    def _open(self, uid: str, pod: Obj) -> None:
        port = ui_port(pod)
        with self._lock:
            if self._stopped or uid in self._servers:
                return
            namespace, name = pod["metadata"].get("namespace", ""), pod["metadata"]["name"]
            try:
                server = ThreadingHTTPServer((self.address, port), self._handler(namespace, name))
            except OSError as exc:
                log.warning("event=driver_ui_unavailable pod=%s/%s address=%s port=%d error=%s",
                            namespace, name, self.address, port, exc)
                return
            server.daemon_threads = True
            self._servers[uid] = (server, port)
        threading.Thread(target=server.serve_forever, name=f"bigk-spark-ui-{port}", daemon=True).start()

    def _close(self, uid: str) -> None:
        with self._lock:
            entry = self._servers.pop(uid, None)
        if entry is not None:
            entry[0].shutdown()
            entry[0].server_close()

    def _handler(self, namespace: str, name: str) -> type[BaseHTTPRequestHandler]:
        store = self.store

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: no kept-alive socket outlives the driver

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                pod = store.get("pods", namespace, name)
                if pod is None or not serves_ui(pod, str(ui_port(pod))):
                    status, content_type, body = 503, "text/plain", "the driver is not running\n"
                else:
                    status, content_type, body = render_ui(store, pod, urlparse(self.path).path)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", f"{content_type}; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
                return

        return Handler
