"""The HTTP client the `bigk` CLI uses to talk to `bigk serve` (httpx).

Where the server is: `--server`, then `$BIGK_SERVER`, then the `server` file
that `bigk serve` writes into its state dir, then http://127.0.0.1:8080. The
token: `$BIGK_TOKEN`, then the state dir's `token` file, then the kubeconfig's
credentials (`bigk.service.kubecreds`; HTTPS or loopback servers only). Every failure becomes a
`BigkError` with the CLI's exit code and a line that says what to do.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from bigk import errors
from bigk.errors import BigkError
from bigk.service.auth import TOKEN_ENV, TOKEN_FILE

SERVER_ENV = "BIGK_SERVER"
WAITING_HEADER = "X-Bigk-Waiting"  # `GET /queue`: how many runs wait in all (the rows may be only the head)
DEFAULT_SERVER = "http://127.0.0.1:8080"


class ClientError(BigkError):
    """The API refused a call or could not be asked; subclasses say which kind (bigk.errors)."""


class NotFound(ClientError, errors.NotFound):
    pass


class Unauthorized(ClientError, errors.Unauthorized):
    pass


class Forbidden(Unauthorized, errors.Forbidden):
    """The caller is known but their RBAC does not grant the action (exit 4, like 401)."""


class Unreachable(ClientError):
    """No bigk answers at the server address (exit 5)."""

    exit_code = 5


class BadServer(ClientError, errors.UsageError):
    """`--server` / `$BIGK_SERVER` that is not an http(s) URL: a usage error."""


def _state_dir() -> Path:
    return Path(os.environ.get("BIGK_STATE_DIR") or ".bigk")


def _checked(url: str, source: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise BadServer(f"{source} {url!r} is not a URL: give http://HOST:PORT, e.g. {DEFAULT_SERVER}")
    return url.rstrip("/")


def resolve_server(server: str | None) -> str:
    if server:
        return _checked(server.strip(), "--server")
    env = os.environ.get(SERVER_ENV, "").strip()
    if env:
        return _checked(env, f"${SERVER_ENV}")
    try:
        written = (_state_dir() / "server").read_text(encoding="utf-8").strip()
        if written:
            return written.rstrip("/")
    except OSError:
        pass
    return DEFAULT_SERVER


def resolve_token() -> str | None:
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env
    try:
        return (_state_dir() / TOKEN_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


class Client:
    """Thin, typed wrapper over the service's /api/v1."""

    def __init__(self, server: str | None = None, token: str | None = None, timeout: float = 15.0) -> None:
        self.server = resolve_server(server)
        self.token = token if token is not None else resolve_token()
        self.token_from = "bigk" if self.token else ""
        if not self.token:  # like a kubectl plugin: the kubeconfig's credentials (bigk.service.kubecreds)
            from bigk.service.kubecreds import kubeconfig_token

            self.token = kubeconfig_token(self.server)
            self.token_from = "kubeconfig" if self.token else ""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            resp = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach bigk at {self.server} ({type(exc).__name__}); start it with "
                              f"`bigk serve` or set --server / ${SERVER_ENV}") from None
        self.check(resp, path, method)
        return resp

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, **kwargs).json()

    def check(self, resp: httpx.Response, path: str, method: str = "GET") -> None:
        """Raise the CLI's error for a failed response (also used for the watch stream's first answer)."""
        if resp.status_code == 401:
            if not self.token:
                raise Unauthorized(f"{self.server} needs a token for this (401) and none was found in ${TOKEN_ENV} "
                                   f"or {_state_dir() / TOKEN_FILE}: set ${TOKEN_ENV}, or $BIGK_STATE_DIR to the "
                                   "state dir of `bigk serve` (it prints where its token is)")
            if self.token_from == "kubeconfig":
                raise Unauthorized(f"{self.server} did not accept your kubeconfig's credentials (401): it checks them "
                                   f"with its own cluster's API server; set ${TOKEN_ENV} for bigk's static token")
            raise Unauthorized(f"{self.server} refused the token (401): set ${TOKEN_ENV} to the token of that "
                               "`bigk serve` (it prints where its token is)")
        if resp.status_code == 403:  # authenticated, but RBAC on bigk.io does not allow it
            raise Forbidden(_detail(resp))
        if resp.status_code == 404:
            if not _is_bigk_error(resp):
                raise Unreachable(f"{self.server} answered 404 for {path}: it is not a bigk server; point --server "
                                  f"/ ${SERVER_ENV} at `bigk serve` (it prints its URL)")
            raise NotFound(_detail(resp))
        if resp.status_code in (400, 409) and _is_bigk_error(resp):
            raise ClientError(_detail(resp))  # bigk's own one-line refusal says what to do
        if resp.status_code >= 400:
            raise ClientError(f"{method} {path} failed ({resp.status_code}): {_detail(resp)}")

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", f"/api/v1{path}", params={k: v for k, v in params.items() if v is not None})

    def get_with_headers(self, path: str, **params: Any) -> tuple[Any, httpx.Headers]:
        """A GET's body and its headers (a listing of only the head says in a header how long it is)."""
        resp = self._send("GET", f"/api/v1{path}", params={k: v for k, v in params.items() if v is not None})
        return resp.json(), resp.headers

    def post(self, path: str) -> Any:
        return self._call("POST", f"/api/v1{path}")

    def post_json(self, path: str, body: Any) -> Any:
        """POST a JSON body (`bigk whatif` sends a spec to be forecast)."""
        return self._call("POST", f"/api/v1{path}", json=body)


def _is_bigk_error(resp: httpx.Response) -> bool:
    """bigk's 404s are `{"detail": "no run 'x' (...)"}`; anything else (or FastAPI's "Not Found") is another server."""
    try:
        body = resp.json()
    except ValueError:
        return False
    detail = body.get("detail") if isinstance(body, dict) else None
    return isinstance(detail, str) and detail != "Not Found"


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200] or resp.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # FastAPI validation errors
        return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}" for d in detail)
    return str(detail or body)
