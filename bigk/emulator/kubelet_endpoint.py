"""The simulated kubelet's HTTPS endpoint, so a real kube-apiserver can serve `pods/log` for simulated pods.

kube-apiserver answers `GET pods/NAME/log` by calling the node's kubelet at
`https://<node address>:<status.daemonEndpoints.kubeletEndpoint.Port>/containerLogs/NS/POD/CONTAINER`
(it does not verify the kubelet's certificate unless `--kubelet-certificate-authority` is set).
`SimulatedNodes` runs one of these for all its nodes, on loopback, and registers its nodes with
that address and port; the log text is the emulator's simulated log (`bigk.emulator.podlogs`).
Errors are plain text with the kubelet's status codes; the API server passes them on.
"""

from __future__ import annotations

import ssl
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from bigk.emulator.podlogs import FOLLOW_POLL_S, PodLogBook, _container_started, _format, _is_main, _status_of
from bigk.emulator.store import Obj

ADDRESS = "127.0.0.1"


def _self_signed(folder: Path) -> tuple[Path, Path]:
    crt, key = folder / "kubelet.crt", folder / "kubelet.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=bigk-simulated-kubelet", "-addext", f"subjectAltName=IP:{ADDRESS}",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
    return crt, key


class KubeletEndpoint:
    """`/containerLogs/...` over HTTPS for every pod in `store` (a ClientStore or the emulator's Store)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.book = PodLogBook(store)
        self._folder = tempfile.TemporaryDirectory(prefix="bigk-kubelet-")
        crt, key = _self_signed(Path(self._folder.name))
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                endpoint.handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
                return

        self.server = ThreadingHTTPServer((ADDRESS, 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(crt), str(key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="bigk-kubelet-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> KubeletEndpoint:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._folder.cleanup()

    # ---- one request ------------------------------------------------------------------------
    def _pod(self, namespace: str, name: str) -> Obj | None:
        found: Obj | None = self.store.get("pods", namespace, name)
        return found

    @staticmethod
    def _plain(handler: BaseHTTPRequestHandler, status: int, text: str) -> None:
        body = text.encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "text/plain; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlparse(handler.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        if len(parts) != 4 or parts[0] != "containerLogs":
            self._plain(handler, 404, "404 page not found\n")
            return
        _, namespace, name, container = parts
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        flag = lambda key: query.get(key, "").lower() in ("1", "true")  # noqa: E731
        pod = self._pod(namespace, name)
        if pod is None:
            self._plain(handler, 404, f'pod "{name}" not found\n')
            return
        status = _status_of(pod, container)
        if flag("previous") and int(status.get("restartCount", 0)) == 0:
            self._plain(handler, 400, f'previous terminated container "{container}" in pod "{name}" not found\n')
            return
        if not _container_started(pod.get("status") or {}):
            self._plain(handler, 400, f'container "{container}" in pod "{name}" is waiting to start: '
                                      "ContainerCreating\n")
            return
        uid, main, stamps = pod["metadata"]["uid"], _is_main(pod, container), flag("timestamps")
        lines = self.book.lines(uid) if main else []
        tail = query.get("tailLines")
        if tail is not None and tail.isdigit():
            lines = lines[len(lines) - int(tail):] if int(tail) else []
        if not flag("follow"):
            self._plain(handler, 200, _format(lines, stamps).decode())
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain; charset=utf-8")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        sent = len(self.book.lines(uid)) if main else 0
        chunk = _format(lines, stamps)
        try:
            while True:
                if chunk:
                    handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    handler.wfile.flush()
                current = self._pod(namespace, name)
                ended = current is None or current["metadata"]["uid"] != uid or (
                    (current.get("status") or {}).get("phase") in ("Succeeded", "Failed"))
                new = self.book.lines(uid)[sent:] if main else []
                sent += len(new)
                chunk = _format(new, stamps)
                if ended:
                    if chunk:
                        handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    break
                time.sleep(FOLLOW_POLL_S)
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            return
