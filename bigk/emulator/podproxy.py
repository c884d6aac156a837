"""`pods/NAME:PORT/proxy/PATH` on the emulator: the simulated Spark driver's UI on its `spark-ui` port.

kube-apiserver proxies HTTP to a pod's port; `bigk ui` reaches a driver's Spark UI
that way (through `bigk serve`, which holds the cluster credentials). No JVM runs
here, so the emulator answers for a running driver with what Spark's UI would
show that matters to a user: the jobs page (application id and name, executors),
and Spark's monitoring REST API (`/api/v1/applications`,
`/api/v1/applications/ID/executors`). A driver that is not running, or a port
nothing listens on, gets the 503 kube-apiserver gives when the dial fails.
"""

from __future__ import annotations

import html
import json
import re

from aiohttp import web

from bigk.emulator.api import Api
from bigk.emulator.errors import ApiError
from bigk.emulator.host import ObjectStore
from bigk.emulator.resources import by_key
from bigk.emulator.store import Obj
from bigk.spark.driver_pod import ui_port

PODS = by_key("pods")
PROXY_PATH = re.compile(
    r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<pod>[^/:]+)(?::(?P<port>[^/]+))?/proxy(?P<rest>/.*)?$"
)


def match_proxy(path: str) -> re.Match[str] | None:
    return PROXY_PATH.match(path)


def _unreachable(pod: Obj, port: str) -> ApiError:
    ip = (pod.get("status") or {}).get("podIP", "")
    return ApiError(503, "ServiceUnavailable",
                    f"error trying to reach service: dial tcp {ip}:{port}: connect: connection refused")


def _executors(store: ObjectStore, driver: Obj) -> list[Obj]:
    labels = driver["metadata"].get("labels") or {}
    app = labels.get("spark-app-selector", "")
    items, _ = store.objects(PODS.key, driver["metadata"].get("namespace", ""))
    return [p for p in items if (p["metadata"].get("labels") or {}).get("spark-role") == "executor"
            and (p["metadata"].get("labels") or {}).get("spark-app-selector") == app
            and (p.get("status") or {}).get("phase") == "Running"]


def _app(driver: Obj) -> tuple[str, str]:
    labels = driver["metadata"].get("labels") or {}
    name = driver["metadata"]["name"]
    return labels.get("spark-app-selector", name), labels.get("spark-app-name", name)


def _page(driver: Obj, executors: list[Obj]) -> str:
    app_id, name = _app(driver)
    rows = "".join(f"<tr><td>{html.escape(p['metadata']['labels'].get('spark-exec-id', '?'))}</td>"
                   f"<td>{html.escape(p['metadata']['name'])}</td>"
                   f"<td>{html.escape(p['spec'].get('nodeName', ''))}</td></tr>" for p in executors)
    return (f"<!DOCTYPE html><html><head><title>{html.escape(name)} - Spark Jobs</title></head><body>"
            f"<h3>Spark Jobs</h3><ul><li><strong>Application:</strong> {html.escape(name)}</li>"
            f"<li><strong>Application ID:</strong> {html.escape(app_id)}</li>"
            f"<li><strong>Active executors:</strong> {len(executors)}</li></ul>"
            f"<table><tr><th>Executor ID</th><th>Pod</th><th>Node</th></tr>{rows}</table>"
            "<p>Simulated by the bigk emulator.</p></body></html>")


def render_ui(store: ObjectStore, pod: Obj, path: str) -> tuple[int, str, str]:
    """(status, content type, body) of one page of a running simulated driver's UI; the embedded emulator's
    pod proxy and the simulated nodes' UI servers on a real API server both answer with it."""
    path = path.rstrip("/") or "/"
    executors = _executors(store, pod)
    app_id, name = _app(pod)
    if path in ("/", "/jobs"):
        return 200, "text/html", _page(pod, executors)
    if path == "/api/v1/applications":
        started = (pod.get("status") or {}).get("startTime", "")
        apps: list[dict[str, object]] = [
            {"id": app_id, "name": name, "attempts": [{"startTime": started, "completed": False}]}]
        return 200, "application/json", json.dumps(apps)
    if path == f"/api/v1/applications/{app_id}/executors":
        execs: list[dict[str, object]] = [
            {"id": "driver", "hostPort": f"{pod['metadata']['name']}:7078", "isActive": True}]
        execs += [{"id": p["metadata"]["labels"].get("spark-exec-id", "?"), "hostPort": p["spec"].get("nodeName", ""),
                   "isActive": True} for p in executors]
        return 200, "application/json", json.dumps(execs)
    return 404, "text/plain", f"no such page in the simulated Spark UI: {path}\n"


def serves_ui(pod: Obj, port: str) -> bool:
    """Whether a simulated driver answers on `port`: a running driver, on its `spark-ui` port."""
    role = (pod["metadata"].get("labels") or {}).get("spark-role")
    return port == str(ui_port(pod)) and role == "driver" and (pod.get("status") or {}).get("phase") == "Running"


async def serve_proxy(request: web.Request, api: Api, found: re.Match[str]) -> web.StreamResponse:
    """Answer GET pods/NAME:PORT/proxy/PATH for a simulated Spark driver."""
    if request.method not in ("GET", "HEAD"):
        raise ApiError(405, "MethodNotAllowed", "the simulated Spark UI only answers GET")
    pod = api.get(PODS, found["ns"], found["pod"])
    port = found["port"] or "80"
    if not serves_ui(pod, port):
        raise _unreachable(pod, port)
    status, content_type, body = render_ui(api.store, pod, found["rest"] or "/")
    return web.Response(status=status, text=body, content_type=content_type)
