"""A run's driver and executor logs and its Spark UI, through the Kubernetes API (`bigk logs`, `bigk ui`).

bigk serve holds the cluster credentials, so users need none: logs come from
`pods/log` and the UI from the API server's `pods/NAME:4040/proxy/`, the same
paths kubectl uses. Endpoints:

- `GET /api/v1/runs/{id}/logs?executor=N&follow=&previous=&tail=&timestamps=`: text, streamed.
- `GET /api/v1/runs/{id}/ui`: where the UI is (pod, phase, the port-forward command, the
  history server link when `BIGK_SPARK_HISTORY_URL` names one).
- `GET /api/v1/runs/{id}/ui/proxy/{path}`: the driver's Spark UI, page by page.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import Response, StreamingResponse

from bigk.cluster import labels as L
from bigk.service.parts import Parts
from bigk.spark.driver_pod import DEFAULT_UI_PORT, ui_port

HISTORY_ENV = "BIGK_SPARK_HISTORY_URL"
RUN_ID = Annotated[str, Path(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


def _kube(parts: Parts, run: Any) -> Any:
    """The API client of the run's cluster (several clusters: the one it was dispatched to)."""
    return parts.runs.api_for(run) or parts.kube


def _core(parts: Parts, run: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(_kube(parts, run))


def _ui_port(parts: Parts, run: Any, pod: Any) -> int:
    """The driver's Spark UI port, from the pod as the API server returned it."""
    return ui_port(_kube(parts, run).sanitize_for_serialization(pod))


def _kube_detail(exc: Any) -> str:
    import json

    try:
        return str(json.loads(exc.body).get("message") or exc.reason)
    except (TypeError, ValueError, AttributeError):
        return str(exc.reason)


def _pod_of(parts: Parts, run: Any, executor: int | None) -> str:
    """The driver pod, or executor N's pod, of a run; HTTPException when there is none."""
    if executor is None:
        if not run.driver_pod:
            raise HTTPException(409, f"run {run.id} has no driver pod yet (state {run.state}); wait for it to be "
                                     "submitted")
        return str(run.driver_pod)
    pods = parts.runs.pods_for(run).run_pods(run.namespace, run.id)
    by_id = {(p.metadata.labels or {}).get(L.SPARK_EXEC_ID): p.metadata.name for p in pods}
    found = by_id.get(str(executor))
    if found is None:
        known = sorted((k for k in by_id if k), key=lambda k: (len(k), k))
        have = f"executors now: {', '.join(known)}" if known else "it has no executor pods now"
        raise HTTPException(404, f"run {run.id} has no executor {executor} ({have}; Spark deletes executor pods "
                                 "when they end unless spark.kubernetes.executor.deleteOnTermination=false)")
    return str(found)


def history_link(app_id: str) -> str | None:
    base = os.environ.get(HISTORY_ENV, "").strip().rstrip("/")
    return f"{base}/history/{app_id}/jobs/" if base and app_id else None


def runio_router(parts: Parts, read: Sequence[Any]) -> APIRouter:
    """Logs and UI endpoints over `parts`; `read` are the API's read dependencies (who may look)."""
    router = APIRouter(tags=["runs"])

    @router.get("/api/v1/runs/{run_id}/logs", dependencies=list(read), response_class=StreamingResponse,
                responses={200: {"content": {"text/plain": {}}}})
    def run_logs(run_id: RUN_ID,
                 executor: Annotated[int | None, Query(ge=0, le=1_000_000, description="Executor id")] = None,
                 follow: bool = False, previous: bool = False, timestamps: bool = False,
                 tail: Annotated[int | None, Query(ge=0, le=1_000_000)] = None) -> StreamingResponse:
        """The driver's log (or executor N's), streamed while `follow` and the pod runs."""
        from kubernetes.client.rest import ApiException

        run = parts.store.get_run(run_id)
        pod = _pod_of(parts, run, executor)
        try:
            resp = _core(parts, run).read_namespaced_pod_log(
                pod, run.namespace, follow=follow, previous=previous, timestamps=timestamps, tail_lines=tail,
                _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                raise HTTPException(404, f"pod {pod} of run {run.id} is gone (deleted when the run ended, or "
                                         "cleaned up)") from None
            raise HTTPException(400 if exc.status == 400 else 502, f"{pod}: {_kube_detail(exc)}") from None

        def chunks() -> Iterator[bytes]:
            try:
                yield from resp.stream(8192, decode_content=True)
            finally:
                resp.release_conn()

        return StreamingResponse(chunks(), media_type="text/plain; charset=utf-8")

    @router.get("/api/v1/runs/{run_id}/ui", dependencies=list(read))
    def run_ui(run_id: RUN_ID) -> dict[str, Any]:
        """Where the run's Spark UI is, and whether it is up (only while the driver runs)."""
        from kubernetes.client.rest import ApiException

        run = parts.store.get_run(run_id)
        phase = ""
        port = DEFAULT_UI_PORT
        if run.driver_pod:
            try:
                pod = _core(parts, run).read_namespaced_pod(run.driver_pod, run.namespace)
                phase = str(pod.status.phase or "") if pod.status is not None else ""
                port = _ui_port(parts, run, pod)
            except ApiException as exc:
                if exc.status != 404:
                    raise HTTPException(502, f"Kubernetes API answered {exc.status} {exc.reason}") from None
                phase = "Gone"
        return {
            "run": run.id,
            "state": str(run.state),
            "namespace": run.namespace,
            "pod": run.driver_pod,
            "phase": phase,
            "running": phase == "Running",
            "port": port,
            "portForward": (f"kubectl -n {run.namespace} port-forward pod/{run.driver_pod} "
                            f"{port}:{port}") if run.driver_pod else "",
            "proxy": f"/api/v1/runs/{run.id}/ui/proxy/",
            "historyServer": history_link(run.spark_app_id),
        }

    @router.get("/api/v1/runs/{run_id}/ui/proxy/{path:path}", dependencies=list(read), include_in_schema=False)
    def run_ui_proxy(run_id: RUN_ID, path: str) -> Response:
        """One page of the driver's Spark UI, through the API server's pod proxy."""
        from kubernetes.client.rest import ApiException

        run = parts.store.get_run(run_id)
        if not run.driver_pod:
            raise HTTPException(409, f"run {run.id} has no driver pod yet (state {run.state})")
        try:
            port = _ui_port(parts, run, _core(parts, run).read_namespaced_pod(run.driver_pod, run.namespace))
            resp = _core(parts, run).connect_get_namespaced_pod_proxy_with_path(
                f"{run.driver_pod}:{port}", run.namespace, path or "/", _preload_content=False)
        except ApiException as exc:
            if exc.status in (404, 503):
                raise HTTPException(503, f"the Spark UI of run {run.id} does not answer: the driver is not running "
                                         f"({_kube_detail(exc)})") from None
            raise HTTPException(502, f"Kubernetes API answered {exc.status} {exc.reason}") from None
        headers = {k: v for k, v in resp.headers.items() if k.lower() in ("location", "cache-control")}
        return Response(content=resp.data, status_code=resp.status, headers=headers,
                        media_type=resp.headers.get("Content-Type"))

    return router
