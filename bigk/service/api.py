"""The HTTP API of `bigk serve` (FastAPI; OpenAPI document at /openapi.json).

Every read and action is authenticated and authorised by `bigk.service.authz`: the
caller's Kubernetes credentials (TokenReview) and RBAC on bigk.io resources
(SubjectAccessReview), or the install's static token; token-less reads only from
loopback on a local cluster. Actions are recorded in the audit trail
(`bigk.service.audit`); Host header, sizes and echo are bounded by
`bigk.service.hardening`. `/healthz`, `/readyz` and `/metrics` are open, for probes and
Prometheus. Errors are JSON `{"detail": "..."}` with one line that says what to do.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from bigk import metrics
from bigk.errors import BigkError
from bigk.service import audit as audit_trail
from bigk.service import hardening
from bigk.service.about_api import about_router
from bigk.service.authz import guard_for
from bigk.service.client import WAITING_HEADER
from bigk.service.clusters_api import clusters_router
from bigk.service.drain_api import drain_router
from bigk.service.gpus_api import gpus_router
from bigk.service.http import status_for
from bigk.service.leading_api import leading_router
from bigk.service.node_clusters import UNANSWERED_HEADER, listing, locate_node, locate_pool
from bigk.service.parts import Served
from bigk.service.queues_api import queues_router
from bigk.service.runio_api import runio_router
from bigk.service.runstate import RunState
from bigk.service.status import status_router
from bigk.service.watch_api import watch_router

log = logging.getLogger(__name__)

API = "/api/v1"
NAME = Annotated[str, Path(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
# several clusters (issue 18): which one a node listing or action means (bigk.service.node_clusters)
CLUSTER = Annotated[str | None, Query(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                                      description="Only this cluster (`bigk get clusters`); default: every cluster")]


def create_app(service: Served, token: str | None) -> FastAPI:
    """The FastAPI app over a started service (`bigk.service.app.Service`): it works through `service.parts`."""
    app = FastAPI(title="bigk", version="1", description="GPU-aware gang scheduler for Spark: service API.")
    parts = service.parts
    views, actions = parts.views, parts.actions

    guard = guard_for(parts, token)  # who is calling (TokenReview) and may they (SubjectAccessReview)
    read = [Depends(guard)]
    act = [Depends(guard)]
    audit = audit_trail.AuditLog(parts.store.engine)
    audit_trail.install(app, audit, clock=parts.clock)
    hardening.install(app, parts.config.allowed_hosts)  # last added: runs first

    @app.exception_handler(BigkError)
    async def _bigk_error(_: Request, exc: BigkError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status_for(exc))  # the one mapping (bigk.errors)

    @app.exception_handler(Exception)
    async def _any_error(_: Request, exc: Exception) -> JSONResponse:
        from kubernetes.client.rest import ApiException

        if isinstance(exc, ApiException):
            return JSONResponse({"detail": f"Kubernetes API answered {exc.status} {exc.reason}"}, status_code=502)
        log.exception("event=api_error")
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)

    # ---- probes ------------------------------------------------------------------------------

    @app.get("/healthz", tags=["probes"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"])
    def readyz(response: Response) -> dict[str, Any]:
        ok, checks = service.ready()
        response.status_code = 200 if ok else 503
        return {"ready": ok, "checks": checks}

    @app.get("/metrics", tags=["probes"], response_class=Response)
    def metrics_endpoint() -> Response:
        return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)

    # ---- reads -------------------------------------------------------------------------------

    @app.get(f"{API}/jobs", dependencies=read, tags=["jobs"])
    def list_jobs() -> list[dict[str, Any]]:
        return [views.job_summary(name) for name in views.job_names()]

    @app.get(f"{API}/jobs/{{name}}", dependencies=read, tags=["jobs"])
    def get_job(name: NAME) -> dict[str, Any]:
        return dict(views.job_detail(name))

    @app.get(f"{API}/jobs/{{name}}/history", dependencies=read, tags=["jobs"])
    def job_history(name: NAME, limit: Annotated[int, Query(ge=1, le=100_000)] = 1000) -> dict[str, Any]:
        return dict(views.job_history(name, limit=limit))

    @app.get(f"{API}/runs", dependencies=read, tags=["runs"])
    def list_runs(job: Annotated[str | None, Query(max_length=253)] = None,
                  state: Annotated[RunState | None, Query()] = None,
                  limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> list[dict[str, Any]]:
        runs = parts.store.list_runs(job, [state] if state else None, limit=limit)
        return list(views.with_eta([r.to_dict() for r in runs]))

    @app.get(f"{API}/runs/{{run_id}}", dependencies=read, tags=["runs"])
    def get_run(run_id: NAME) -> dict[str, Any]:
        return dict(views.run_detail(run_id))

    @app.get(f"{API}/runs/{{run_id}}/explain", dependencies=read, tags=["runs"])
    def explain_run(run_id: NAME) -> dict[str, Any]:
        return dict(views.explain_run(run_id))

    @app.get(f"{API}/eta", dependencies=read, tags=["scheduling"])
    def eta_board() -> dict[str, Any]:
        """Every waiting run's queue position and estimated start (p50, range p10..p90), newest computation; with
        several clusters every cluster's board (each row's `cluster`, its position in that cluster's line)."""
        eta = parts.eta
        if eta is None:
            return {"computed_at": None, "runs": [], "cpu_s": None}
        return eta.listing()

    @app.get(f"{API}/jobs/{{name}}/whatif", dependencies=read, tags=["jobs"])
    def job_whatif(name: NAME) -> dict[str, Any]:
        """`bigk run JOB --dry-run`: when a run of the job would start if run now. Creates nothing."""
        return dict(views.whatif(parts.catalog.loaded(name).spec))

    @app.post(f"{API}/whatif", dependencies=read, tags=["scheduling"])
    def whatif(spec: dict[str, Any]) -> dict[str, Any]:
        """`bigk whatif SPEC.yaml`: when a run of this (not yet submitted) SparkJob would start. Creates nothing."""
        from pydantic import ValidationError

        from bigk.spec.model import JobSpec

        try:
            job = JobSpec.model_validate(spec)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise BigkError(f"not a valid SparkJob: {where}: {first.get('msg', '')}") from None
        return dict(views.whatif(job))

    @app.get(f"{API}/queue", dependencies=read, tags=["scheduling"])
    def queue(response: Response, limit: Annotated[int | None, Query(ge=1, le=100_000, description=(
            "Only the first this many, in queue order (the head of a long backlog at the cost of a short one); "
            "the X-Bigk-Waiting header says how many wait in all"))] = None) -> list[dict[str, Any]]:
        rows, total = views.queue(limit)
        response.headers[WAITING_HEADER] = str(total)
        return rows

    @app.get(f"{API}/explanations", dependencies=read, tags=["scheduling"])
    def explanations() -> list[dict[str, Any]]:
        return list(views.explanations())

    @app.get(f"{API}/nodes", dependencies=read, tags=["cluster"])
    def nodes(response: Response, cluster: CLUSTER = None) -> list[dict[str, Any]]:
        """Every cluster's nodes (each row's `cluster`); a cluster that does not answer is left out and named in
        the X-Bigk-Unanswered-Clusters header."""
        rows, skipped = listing(parts, "nodes", cluster)
        if skipped:
            response.headers[UNANSWERED_HEADER] = ",".join(skipped)
        return rows

    @app.get(f"{API}/gpus", dependencies=read, tags=["cluster"])
    def gpus(response: Response, cluster: CLUSTER = None) -> list[dict[str, Any]]:
        """Every cluster's GPUs (each row's `cluster`; the GPU watch's notes are home's)."""
        rows, skipped = listing(parts, "gpus", cluster)
        if skipped:
            response.headers[UNANSWERED_HEADER] = ",".join(skipped)
        return rows

    @app.get(f"{API}/problems", dependencies=read, tags=["jobs"])
    def problems() -> dict[str, Any]:
        return dict(views.problems())

    @app.get(f"{API}/events", dependencies=read, tags=["runs"])
    def events(job: Annotated[str | None, Query(max_length=253)] = None,
               run: Annotated[str | None, Query(max_length=32)] = None,
               limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> list[dict[str, Any]]:
        return [e.__dict__ for e in parts.store.events(job=job, run_id=run, limit=limit)]

    # ---- actions -----------------------------------------------------------------------------

    @app.post(f"{API}/jobs/{{name}}/run", dependencies=act, tags=["actions"], status_code=201)
    def run_now(name: NAME) -> dict[str, Any]:
        return dict(actions.run_now(name).to_dict())

    @app.post(f"{API}/jobs/{{name}}/suspend", dependencies=act, tags=["actions"])
    def suspend(name: NAME) -> dict[str, Any]:
        return dict(actions.set_suspended(name, True))

    @app.post(f"{API}/jobs/{{name}}/resume", dependencies=act, tags=["actions"])
    def resume(name: NAME) -> dict[str, Any]:
        return dict(actions.set_suspended(name, False))

    @app.post(f"{API}/jobs/{{name}}/clear-suspend", dependencies=act, tags=["actions"])
    def clear_suspend(name: NAME) -> dict[str, Any]:
        """Drop the operator's suspend/resume override: the spec's `schedule.suspend` applies again."""
        return dict(actions.clear_suspended(name))

    @app.post(f"{API}/runs/{{run_id}}/cancel", dependencies=act, tags=["actions"])
    def cancel(run_id: NAME) -> dict[str, Any]:
        return dict(actions.cancel(run_id).to_dict())

    # node and pool actions: `?cluster=NAME`, else the one cluster that has the node or pool (several: 409)

    def _cordon_node(name: str, cluster: str | None, unschedulable: bool) -> dict[str, Any]:
        member = locate_node(parts, cluster, name)
        actions.cordon(name, unschedulable, on=member.view, where=member.where())
        return {"node": name, "unschedulable": unschedulable, "cluster": member.name}

    @app.post(f"{API}/nodes/{{name}}/cordon", dependencies=act, tags=["actions"])
    def cordon(name: NAME, cluster: CLUSTER = None) -> dict[str, Any]:
        return _cordon_node(name, cluster, True)

    @app.post(f"{API}/nodes/{{name}}/uncordon", dependencies=act, tags=["actions"])
    def uncordon(name: NAME, cluster: CLUSTER = None) -> dict[str, Any]:
        return _cordon_node(name, cluster, False)

    @app.post(f"{API}/nodes/{{name}}/drain", dependencies=act, tags=["actions"])
    def drain(name: NAME, cluster: CLUSTER = None) -> dict[str, Any]:
        member = locate_node(parts, cluster, name)
        return {"nodes": [name], "evicted": actions.drain(name, on=member.view, where=member.where()),
                "cluster": member.name}

    def _cordon_pool(pool: str, cluster: str | None, unschedulable: bool) -> dict[str, Any]:
        """Cordon or uncordon every node of a pool (on one cluster)."""
        member = locate_pool(parts, cluster, pool)
        names = actions.pool_nodes(pool, on=member.view)
        for name in names:
            actions.cordon(name, unschedulable, on=member.view, where=member.where())
        return {"nodes": names, "unschedulable": unschedulable, "cluster": member.name}

    @app.post(f"{API}/pools/{{pool}}/cordon", dependencies=act, tags=["actions"])
    def cordon_pool(pool: NAME, cluster: CLUSTER = None) -> dict[str, Any]:
        return _cordon_pool(pool, cluster, True)

    @app.post(f"{API}/pools/{{pool}}/uncordon", dependencies=act, tags=["actions"])
    def uncordon_pool(pool: NAME, cluster: CLUSTER = None) -> dict[str, Any]:
        return _cordon_pool(pool, cluster, False)

    @app.post(f"{API}/pools/{{pool}}/drain", dependencies=act, tags=["actions"])
    def drain_pool(pool: NAME, cluster: CLUSTER = None) -> dict[str, Any]:
        done = _cordon_pool(pool, cluster, True)  # every node first, so evicted pods cannot land on the pool's next
        member = locate_pool(parts, done["cluster"], pool)
        evicted: list[str] = []
        for name in done["nodes"]:
            evicted += actions.drain(name, on=member.view, where=member.where())
        return {"nodes": done["nodes"], "evicted": evicted, "cluster": member.name}

    app.include_router(watch_router(parts, read))  # GET /api/v1/watch: server-sent events
    app.include_router(about_router(parts, read))  # GET /api/v1/version
    app.include_router(gpus_router(parts, read))  # GET /api/v1/gpus/idle, /api/v1/gpus/findings
    app.include_router(leading_router(parts))  # GET /leaderz: 200 only on the leader
    app.include_router(queues_router(parts, read))  # GET /api/v1/queues, /api/v1/queues/{name}
    app.include_router(audit_trail.audit_router(audit, read))  # GET /api/v1/audit
    app.include_router(status_router(parts, read))  # /status: the read-only status page
    app.include_router(drain_router(parts, read))  # GET .../drain-plan: what a drain would evict
    app.include_router(runio_router(parts, read))  # GET /api/v1/runs/{id}/logs, /ui, /ui/proxy/...
    app.include_router(clusters_router(parts.clusters, parts.store, parts.clock, parts.wake, read, act))  # /clusters
    return app
