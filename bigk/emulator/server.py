"""The HTTP face of the emulated cluster (aiohttp): routing, content negotiation, faults.

One catch-all handler parses Kubernetes REST paths (`/api/v1/namespaces/NS/pods/NAME/binding`,
`/apis/GROUP/VERSION/...`), calls `Api`, and writes JSON; watches are handed to
`bigk.emulator.watch`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bigk.emulator import discovery, reviews, tables
from bigk.emulator.api import Api
from bigk.emulator.errors import ApiError, bad_request, gone
from bigk.emulator.faults import Faults
from bigk.emulator.patches import parse_body
from bigk.emulator.podlogs import PodLogBook, serve_log
from bigk.emulator.podproxy import match_proxy, serve_proxy
from bigk.emulator.resources import ResourceType, lookup, resource_list
from bigk.emulator.selection import Matcher, combine, field_matcher, label_matcher
from bigk.emulator.store import Obj
from bigk.emulator.watch import serve_watch

log = logging.getLogger("bigk.emulator")

_JSON = "application/json"


def _dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=_dumps(body), status=status, content_type=_JSON, headers=headers)


def _error(exc: ApiError) -> web.Response:
    headers = {"Retry-After": "1"} if exc.code == 429 else None
    return _json(exc.status(), exc.code, headers)


def _not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes")


@dataclass
class Target:
    """A parsed resource path."""

    rt: ResourceType
    namespace: str | None  # None: all namespaces (or cluster-scoped)
    name: str
    subresource: str
    watch: bool


def parse_path(path: str) -> Target | None:
    """Map a REST path onto a resource type, namespace, name and subresource; None if not a resource path."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    watch = False
    if rest and rest[0] == "watch":
        watch, rest = True, rest[1:]
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    if group == "" and rest[0] == "bindings" and namespace is not None and len(rest) == 1:
        rt = lookup("", "v1", "pods")
        return Target(rt, namespace, "", "bindings", False) if rt else None
    rt = lookup(group, version, rest[0])
    if rt is None:
        return None
    if rt.namespaced is False and namespace is not None:
        return None
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if sub and sub not in rt.subresources:
        return None
    return Target(rt, namespace, name, sub, watch)


class ApiServer:
    """The aiohttp application serving one `Api`."""

    def __init__(
        self, api: Api, faults: Faults, *, bookmark_interval: float = 1.0, server_address: str = "127.0.0.1:0"
    ) -> None:
        self.api = api
        self.faults = faults
        self.bookmark_interval = bookmark_interval
        self.server_address = server_address
        self._watches: dict[int, web.Request] = {}
        self.app = self._application()
        self.requests = 0
        self.logs = PodLogBook(api.store)  # simulated container logs for pods/log
        self.reviews = reviews.Reviews()  # bearer tokens and RBAC decisions for bigk's own callers
        # the emulator's own /emulator/v1 endpoints (set by EmulatedCluster); never subject to faults
        self.control: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None

    def _application(self) -> web.Application:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def renew(self) -> None:
        """A new aiohttp application for serving again after a stop (one is set up once); the same store."""
        self._watches.clear()
        self.app = self._application()

    # ---- entry point ------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("event=request method=%s path=%s query=%s", request.method, request.path, request.query_string)
        if self.control is not None and request.path.startswith("/emulator/"):
            return await self.control(request)
        fault = self.faults.take(request.method, request.path, request.query_string)
        if fault is not None:
            log.info("event=fault method=%s path=%s status=%s after=%s", request.method, request.path, fault.status,
                     fault.after)
            if fault.after:
                await self._serve(request)
            if fault.status == 0:
                self._drop(request)
                return web.Response(status=500)  # never reaches the client: the socket is gone
            return _error(ApiError(fault.status, fault.reason, f"injected fault: {fault.reason}"))
        return await self._serve(request)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._route(request)
        except ApiError as exc:
            return _error(exc)
        except ConnectionResetError:
            raise
        except Exception as exc:  # a bug: answer like the real server would, keep serving
            log.exception("event=internal_error method=%s path=%s", request.method, request.path)
            return _error(ApiError(500, "InternalError", f"Internal error occurred: {exc}"))

    @staticmethod
    def _drop(request: web.Request) -> None:
        transport = request.transport
        if transport is not None:
            transport.abort()

    @property
    def open_watches(self) -> int:
        """How many watch streams are open now."""
        return len(self._watches)

    def drop_watches(self) -> int:
        """Abort every open watch connection (must run on the server loop); returns how many."""
        dropped = list(self._watches.values())
        for request in dropped:
            self._drop(request)
        return len(dropped)

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        method = request.method
        if method == "GET":
            static = self._static(path)
            if static is not None:
                return static
        if method == "POST" and path in reviews.PATHS:  # TokenReview / SubjectAccessReview: answered, not stored
            return _json(self.reviews.handle(path, await self._body(request), self.api), 201)
        proxied = match_proxy(path)
        if proxied is not None:  # pods/NAME:PORT/proxy/...: the simulated Spark UI
            return await serve_proxy(request, self.api, proxied)
        target = parse_path(path)
        if target is not None and target.subresource == "log" and target.name and method == "GET":
            return await serve_log(request, self.api, self.logs, target.namespace or "", target.name)
        if target is None:
            if path.startswith("/api") and method == "GET":
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({method} {path})")
        q = request.query
        if target.subresource in ("binding", "eviction", "bindings") and method != "POST":
            raise _not_allowed()
        if method == "GET":
            if target.watch or (not target.name and _truthy(q.get("watch"))):
                return await self._watch(request, target)
            if target.name:
                obj = self.api.get(target.rt, target.namespace or "", target.name)
                return self._answer(request, target.rt, obj)
            self._check_list_version(q.get("resourceVersion", ""), q.get("resourceVersionMatch", ""))
            try:
                limit = int(q.get("limit", 0) or 0)
            except ValueError:
                raise bad_request(f"invalid limit {q.get('limit')!r}") from None
            doc = self.api.list(target.rt, target.namespace, self._matcher(request), limit, q.get("continue", ""))
            if "as=Table" in request.headers.get("Accept", ""):
                return _json(tables.table(target.rt.kind, doc["items"], doc["metadata"]))
            return _json(doc)
        body = await self._body(request) if method in ("POST", "PUT", "PATCH") else None
        if method == "POST":
            return self._post(request, target, body)
        if method == "PUT":
            if not target.name:
                raise _not_allowed()
            obj = self.api.replace(target.rt, target.namespace or "", target.name, body, target.subresource)
            return _json(obj)
        if method == "PATCH":
            if not target.name:
                raise _not_allowed()
            ctype = request.headers.get("Content-Type", _JSON)
            code, obj = self.api.patch(target.rt, target.namespace or "", target.name, body, ctype, target.subresource)
            return _json(obj, code)
        if method == "DELETE":
            options = await self._delete_options(request)
            if not target.name:
                return _json(self.api.delete_collection(target.rt, target.namespace, self._matcher(request), options))
            code, obj = self.api.delete(target.rt, target.namespace or "", target.name, options)
            return _json(obj, code)
        raise _not_allowed()

    def _check_list_version(self, rv: str, match: str) -> None:
        """Lists serve the latest state: fine for any/NotOlderThan, except a version from the future;
        an Exact older version is gone (there is no history to read it from)."""
        if rv in ("", "0"):
            return
        try:
            wanted = int(rv)
        except ValueError:
            raise bad_request(f"invalid resource version {rv!r}") from None
        current = self.api.store.resource_version
        if wanted > current:
            raise ApiError(504, "Timeout", f"Too large resource version: {wanted}, current: {current}")
        if match == "Exact" and wanted != current:
            raise gone(f"too old resource version: {wanted} ({current})")

    def _static(self, path: str) -> web.Response | None:
        path = path.rstrip("/") or "/"
        if path == "/version":
            return _json(discovery.version())
        if path in ("/healthz", "/readyz", "/livez"):
            return web.Response(text="ok", content_type="text/plain")
        if path == "/api":
            return _json(discovery.core_versions(self.server_address))
        if path == "/apis":
            return _json(discovery.group_list())
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["openapi", "v3"]:
            return self._openapi(parts[2:])
        if parts == ["api", "v1"]:
            return _json(resource_list("", "v1"))
        if len(parts) == 2 and parts[0] == "apis":
            group = discovery.api_group(parts[1])
            if group is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return _json(group)
        if len(parts) == 3 and parts[0] == "apis":
            doc = resource_list(parts[1], parts[2])
            if doc is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return _json(doc)
        return None

    @staticmethod
    def _openapi(rest: list[str]) -> web.Response:
        if not rest:
            return _json(discovery.openapi_v3_root())
        doc = None
        if rest[0] == "api" and len(rest) == 2:
            doc = discovery.openapi_v3_group_version("", rest[1])
        elif rest[0] == "apis" and len(rest) == 3:
            doc = discovery.openapi_v3_group_version(rest[1], rest[2])
        if doc is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return _json(doc)

    def _answer(self, request: web.Request, rt: ResourceType, obj: Obj, status: int = 200) -> web.Response:
        if "as=Table" in request.headers.get("Accept", ""):
            return _json(tables.table(rt.kind, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]}), status)
        return _json(obj, status)

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        return parse_body(raw, request.headers.get("Content-Type", _JSON))

    async def _delete_options(self, request: web.Request) -> Obj:
        options: Obj = {}
        if request.can_read_body:
            raw = await request.read()
            if raw.strip():
                parsed = parse_body(raw, _JSON)
                if isinstance(parsed, dict):
                    options = parsed
        q = request.query
        if "gracePeriodSeconds" in q:
            try:
                options["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
            except ValueError:
                raise bad_request("gracePeriodSeconds must be an integer") from None
        if "propagationPolicy" in q:
            options["propagationPolicy"] = q["propagationPolicy"]
        return options

    def _post(self, request: web.Request, target: Target, body: Any) -> web.Response:
        ns = target.namespace or ""
        if target.subresource == "bindings":  # legacy POST /api/v1/namespaces/NS/bindings
            name = (body.get("metadata") or {}).get("name", "") if isinstance(body, dict) else ""
            return _json(self.api.bind(ns, name, body), 201)
        if target.subresource == "binding":
            return _json(self.api.bind(ns, target.name, body), 201)
        if target.subresource == "eviction":
            return _json(self.api.evict(ns, target.name, body), 201)
        if target.name or target.subresource:
            raise _not_allowed()
        if target.rt.namespaced and target.namespace is None:
            raise _not_allowed()
        if request.query.get("dryRun"):
            from bigk.emulator.admission import prepare_create

            return _json(prepare_create(target.rt, ns, body), 201)
        obj = self.api.create(target.rt, ns, body)
        return self._answer(request, target.rt, obj, 201)

    @staticmethod
    def _matcher(request: web.Request) -> Matcher | None:
        q = request.query
        return combine(label_matcher(q.get("labelSelector")), field_matcher(q.get("fieldSelector")))

    # ---- watch ----------------------------------------------------------------
    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        rt, ns = target.rt, target.namespace
        match = self._matcher(request)
        if target.name:
            name = target.name
            match = combine(match, lambda o: o["metadata"]["name"] == name)
        if rt.namespaced and ns is not None:
            match = combine(match, lambda o: o["metadata"].get("namespace") == ns)
        return await serve_watch(request, self.api.store, rt, ns, match, self.bookmark_interval, self._watches)


__all__ = ["ApiServer", "parse_path"]
