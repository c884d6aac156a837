"""Run the API with uvicorn in a background thread on a socket bound up front.

Binding first turns "address in use" into a one-line error before anything else
starts, makes port 0 (pick a free port) work, and leaves signal handling to the
caller: uvicorn re-raises SIGTERM after its own shutdown, which would kill the
process before the service has written its final state.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

from bigk.errors import BigkError, Conflict, Forbidden, Invalid, NotFound, Unauthorized, UsageError


class ListenError(BigkError):
    """The API cannot listen where it was told (address in use, no permission)."""


# The API's one mapping of bigk's error kinds (bigk.errors) to HTTP statuses; the first match wins.
HTTP_STATUS: tuple[tuple[type[BigkError], int], ...] = (
    (NotFound, 404), (Conflict, 409), (Forbidden, 403), (Unauthorized, 401), (Invalid, 400),
)


def status_for(exc: BigkError) -> int:
    """The HTTP status of an error a user can act on (400 for a plain `BigkError`)."""
    for kind, status in HTTP_STATUS:
        if isinstance(exc, kind):
            return status
    return 400


def parse_listen(text: str) -> tuple[str, int]:
    """'HOST:PORT' (IPv6 as '[::1]:8080') -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen {text!r}: expected HOST:PORT such as 127.0.0.1:8080")
    return host.strip("[]") or "127.0.0.1", int(port)


class HttpServer:
    """uvicorn serving `app` on (host, port) in a daemon thread."""

    def __init__(self, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it: without it every response after the first on a kept-alive connection
        # waited ~40 ms (uvicorn writes headers and body apart; Nagle held the body for the client's delayed ACK).
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror}; pick another with --listen") from None
        self.sock.listen(128)
        self.host = host
        self.port = int(self.sock.getsockname()[1])
        self.server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, app: Any, timeout: float = 15.0) -> str:
        """Serve `app` (an ASGI app); returns the base URL once uvicorn accepts connections."""
        # Limits (documented in bigk.service.hardening): 16 KiB of headers, 5 s idle keep-alive, 512 connections.
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5,
                                h11_max_incomplete_event_size=16 * 1024, timeout_keep_alive=5, limit_concurrency=512)
        server = self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [self.sock]},
                                        name="bigk-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ListenError(f"the HTTP server did not start on {self.url}")
            time.sleep(0.02)
        return self.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sock.close()
