"""HTTP hardening of the API: Host header, request size, and how much of bad input is echoed back.

- **Host header (DNS rebinding).** A web page in the operator's browser can point its own
  domain at 127.0.0.1 and then talk to a loopback `bigk serve`; the browser sends that domain
  as `Host`. So the API answers only requests whose Host is an IP address, `localhost`, or a
  name configured with `--allowed-host` (the chart adds its Service names); anything else is a
  400 before any handler runs.
- **Size.** The API takes no request bodies larger than `MAX_BODY_BYTES` (64 KiB; 413), and
  uvicorn refuses header blocks over 16 KiB and idle keep-alive connections after 5 s
  (`bigk.service.http`).
- **Echo.** Validation errors say which field is wrong and show at most `MAX_ECHO` characters
  of what was sent, never a whole hostile input.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

MAX_BODY_BYTES = 64 * 1024
MAX_ECHO = 64
EXEMPT_PATHS = ("/healthz", "/readyz", "/metrics")  # probes and Prometheus address the pod by IP or any name


def host_allowed(host_header: str, allowed: frozenset[str]) -> bool:
    """True when `Host` (with or without port) is an IP literal, localhost, or one of `allowed` names."""
    if "*" in allowed:
        return True
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:8080
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    if not host:
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    return host == "localhost" or host.rstrip(".") in allowed


def bounded(value: Any, limit: int = MAX_ECHO) -> Any:
    """`value` as the client sent it, cut to `limit` characters."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def install(app: FastAPI, allowed_hosts: Iterable[str] = ()) -> None:
    """Add the Host check, the body size limit and the bounded validation errors to `app`."""
    allowed = frozenset(h.strip().lower().rstrip(".") for h in allowed_hosts if h.strip())

    @app.middleware("http")
    async def _harden(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path not in EXEMPT_PATHS and not host_allowed(request.headers.get("host", ""), allowed):
            return JSONResponse({"detail": f"Host {bounded(request.headers.get('host', ''))!r} is not one of this "
                                           "server's names (start bigk serve with --allowed-host NAME to add it)"},
                                status_code=400)
        length = request.headers.get("content-length", "")
        if (length.isdigit() and int(length) > MAX_BODY_BYTES) or (
                request.headers.get("transfer-encoding", "").lower() == "chunked"):
            return JSONResponse({"detail": f"request body over {MAX_BODY_BYTES} bytes (or chunked): refused"},
                                status_code=413)
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors()[:10]:
            entry = {"loc": [bounded(p, 40) if isinstance(p, str) else p for p in err.get("loc", ())][:6],
                     "msg": bounded(str(err.get("msg", "")), 200), "type": err.get("type", "")}
            if "input" in err:
                entry["input"] = bounded(err["input"])
            errors.append(entry)
        return JSONResponse({"detail": errors}, status_code=422)


__all__ = ["MAX_BODY_BYTES", "MAX_ECHO", "bounded", "host_allowed", "install"]
