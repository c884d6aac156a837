"""The emulator's own control endpoints under /emulator/v1 (not Kubernetes API).

They let people driving a standalone `bigk emulator` with curl do what tests do
in-process: make a GPU sick or busy, take a node out, inject API faults.

    PUT    /emulator/v1/nodes/NODE/gpus/INDEX  {"healthy": false, "external_memory_mib": 30000}
    PUT    /emulator/v1/nodes/NODE/ready       {"ready": false}
    POST   /emulator/v1/faults                 {"method": "POST", "path_regex": "/binding$", "status": 500, "count": 3}
    DELETE /emulator/v1/faults
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from aiohttp import web

from bigk.cluster.model import Node
from bigk.emulator.errors import ApiError, EmulatorError, bad_request, not_found
from bigk.emulator.faults import Faults
from bigk.emulator.store import Obj


class Controlled(Protocol):
    """What the endpoints change on the emulated cluster (`EmulatedCluster`, which imports this module)."""

    @property
    def model_nodes(self) -> dict[str, Node]: ...
    @property
    def faults(self) -> Faults: ...
    @property
    def gpus(self) -> Any: ...  # the GpuSim, or None when readings are off
    def set_gpu_health(self, node: str, index: int, healthy: bool) -> None: ...
    def set_node_ready(self, name: str, ready: bool) -> Obj | None: ...

PREFIX = "/emulator/v1"
_GPU = re.compile(r"^/emulator/v1/nodes/([^/]+)/gpus/([0-9]+)$")
_READY = re.compile(r"^/emulator/v1/nodes/([^/]+)/ready$")


def _reply(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body).encode(), status=status, content_type="application/json")


async def handle(cluster: Controlled, request: web.Request) -> web.Response:
    """Serve one control request; errors come back as Kubernetes-style Status objects."""
    try:
        return await _route(cluster, request)
    except ApiError as exc:
        return _reply(exc.status(), exc.code)
    except KeyError as exc:
        return _reply(bad_request(f"missing field {exc}").status(), 400)
    except (EmulatorError, ValueError, TypeError) as exc:
        return _reply(bad_request(str(exc)).status(), 400)


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise bad_request("the body must be JSON") from None
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    return body


async def _route(cluster: Controlled, request: web.Request) -> web.Response:
    path, method = request.path.rstrip("/"), request.method
    if (m := _GPU.match(path)) and method == "PUT":
        node, index = m.group(1), int(m.group(2))
        model = cluster.model_nodes.get(node)
        if model is None or not any(g.index == index for g in model.gpus):
            raise not_found("gpus", f"{node}/{index}")
        body = await _body(request)
        if "healthy" in body:
            cluster.set_gpu_health(node, index, bool(body["healthy"]))
        if "external_memory_mib" in body or "external_utilization_pct" in body:
            if cluster.gpus is None:
                raise EmulatorError("GPU readings are disabled on this emulated cluster")
            cluster.gpus.set_external_use(node, index, int(body.get("external_memory_mib", 0)),
                                          float(body.get("external_utilization_pct", 0.0)))
        return _reply({"node": node, "index": index, **body})
    if (m := _READY.match(path)) and method == "PUT":
        body = await _body(request)
        node_obj = cluster.set_node_ready(m.group(1), bool(body.get("ready", True)))
        if node_obj is None:
            raise not_found("nodes", m.group(1))
        return _reply({"node": m.group(1), "ready": bool(body.get("ready", True))})
    if path == f"{PREFIX}/faults" and method == "POST":
        body = await _body(request)
        fault = cluster.faults.add(str(body.get("method", "*")), str(body["path_regex"]), int(body["status"]),
                                   int(body.get("count", 1)), query_regex=body.get("query_regex"),
                                   after=bool(body.get("after", False)))
        return _reply({"method": fault.method, "path_regex": fault.path.pattern, "status": fault.status,
                       "count": fault.remaining, "after": fault.after}, 201)
    if path == f"{PREFIX}/faults" and method == "DELETE":
        cluster.faults.clear()
        return _reply({"cleared": True})
    raise ApiError(404, "NotFound", f"no emulator control endpoint {method} {path}")
