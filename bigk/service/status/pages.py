"""`/status` pages: server-rendered HTML (Jinja2) plus one small script that follows the watch stream.

Every page is a plain link (`/status`, `/status/queues`, `/status/gpus`, `/status/runs/ID`) that works
without JavaScript; with it, the page re-renders its main part (`?partial=1`) whenever the API's watch
stream reports a change. Nothing here acts on the cluster: the pages are read-only, and who may read
them is decided by the same rule as the API's reads.

Over several clusters (issue 18) the runs carry a CLUSTER column, the overview has a summary row per
cluster (the rows of `bigk get clusters`), the GPU map is grouped by cluster, for every cluster that
answers (one judged unreachable, or whose listing fails, is named instead), and the queue tree shows
the API's sums with a BY CLUSTER column (`/status/queues?cluster=NAME`: one cluster's figures). With
one cluster the pages are as they were.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from bigk.errors import BigkError
from bigk.service.clusters_api import cluster_rows
from bigk.service.node_clusters import members
from bigk.service.parts import Parts
from bigk.service.queue_views import queue_rows, queue_scope
from bigk.service.runtime import short_error
from bigk.service.status import model

TEMPLATES = Path(__file__).parent / "templates"
RUNS_SHOWN = 100


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda x: f"{100 * x:.0f}%"
    env.filters["gpus"] = lambda milli: f"{milli / 1000:g}"
    env.filters["resources"] = model.resources
    env.filters["clock"] = model.clock
    return env


def status_router(parts: Parts, read: Sequence[Any]) -> APIRouter:
    """The status pages over `parts`; `read` are the API's read dependencies."""
    env = _env()
    views, cluster = parts.views, parts.cluster
    router = APIRouter(prefix="/status", tags=["status page"], dependencies=list(read))

    def page(request: Request, template: str, title: str, watch: str, names: str = "", **context: Any) -> Response:
        partial = request.query_params.get("partial") == "1"
        html = env.get_template(template).render(title=title, now=time.time(), partial=partial, watch=watch,
                                                  **context)
        if not partial:
            html = env.get_template("base.html").render(title=title, body=html, watch=watch, names=names,
                                                        active=template)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    def runs() -> list[dict[str, Any]]:
        now = time.time()
        rows = views.with_eta([r.to_dict() for r in parts.store.list_runs(limit=RUNS_SHOWN)])
        return [model.run_row(r, now) for r in rows]

    def waiting() -> list[dict[str, Any]]:
        now = time.time()
        return [{**q, "eta_shown": model.eta_view(q.get("eta"), now)} for q in views.queue()[0]]

    several = len(parts.clusters) > 1

    def gpu_maps(with_nodes: bool) -> list[dict[str, Any]]:
        """Per cluster (one: `default`), its GPU map; a cluster that does not answer is named, with no nodes."""
        if not several:
            return [{"cluster": "", "reachable": True, "error": "",
                     "nodes": model.gpu_map(cluster.gpus(), cluster.nodes() if with_nodes else [])}]
        out = []
        for member in members(parts):
            group: dict[str, Any] = {"cluster": member.name, "reachable": member.reachable, "error": "", "nodes": []}
            out.append(group)
            if not member.reachable:
                continue
            try:
                group["nodes"] = model.gpu_map(member.view.gpus(), member.view.nodes() if with_nodes else [])
            except Exception as exc:  # answering no more: say so, show the others
                group["error"] = short_error(exc)
        return out

    def clusters() -> list[dict[str, Any]]:
        return [model.cluster_summary(row) for row in cluster_rows(parts.clusters, parts.store)] if several else []

    @router.get("", response_class=HTMLResponse, summary="Runs, waiting runs and a GPU summary")
    def overview(request: Request) -> Response:
        maps = gpu_maps(False)
        counts, total = model.gpu_counts(maps)
        return page(request, "overview.html", "bigk status", "runs,queue,gpus", runs=runs(),
                    waiting=waiting(), gpu_counts=counts, gpu_total=total, maps=maps, several=several,
                    clusters=clusters())

    @router.get("/", include_in_schema=False)
    def slash() -> RedirectResponse:
        return RedirectResponse("/status")

    @router.get("/queues", response_class=HTMLResponse, summary="The queue tree with GPU shares")
    def queues(request: Request, cluster: str | None = None) -> Response:
        try:
            scope = queue_scope(parts, cluster)
        except BigkError as exc:
            return _not_found(env, str(exc))
        rows = queue_rows(parts.catalog, parts.store, scope)
        capacity: dict[str, Any] = next((r["cluster"] for r in rows if r.get("cluster")), {})
        shown = [c.name for c in scope.clusters] if several else []
        return page(request, "queues.html", "queues", "runs,queue,gpus", roots=model.queue_tree(rows),
                    cluster=capacity, waiting=waiting(), several=several, shown=shown,
                    names_all=list(parts.clusters), only=cluster or "")

    @router.get("/gpus", response_class=HTMLResponse, summary="Every node's GPUs")
    def gpus(request: Request) -> Response:
        return page(request, "gpus.html", "GPUs", "gpus,nodes", maps=gpu_maps(True), several=several)

    @router.get("/runs/{run_id}", response_class=HTMLResponse, summary="One run: gang, explanation, events")
    def run(request: Request, run_id: str = PathParam(min_length=1, max_length=64,
                                                         pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"),
            ) -> Response:
        try:
            detail = views.run_detail(run_id)
            why = views.explain_run(run_id)
        except BigkError as exc:
            return _not_found(env, str(exc))
        gang = next((g for g in views.explanations() if g["gang"] == detail.get("spark_app_id")), None)
        if several:  # the gang waits in its own cluster's scheduler
            gang = _gang_on(parts, detail.get("cluster") or "", detail.get("spark_app_id") or "")
        return page(request, "run.html", f"run {run_id}", "runs,queue", names=run_id,
                    run=model.run_row(detail, time.time()), why=why, gang=gang, run_id=run_id, several=several)

    return router


GANG_FIELDS = ("queue", "priority", "state", "drivers", "executors", "executors_fit", "gpus", "nodes_total",
               "nodes_fit", "reasons", "victims")


def _gang_on(parts: Parts, cluster: str, gang: str) -> dict[str, Any] | None:
    """The gang's record in its cluster's scheduler (None: not dispatched yet, or not waiting there)."""
    runtime = parts.clusters.get(cluster)
    found = runtime.view().explanations.get(gang) if runtime is not None and gang else None
    if found is None:
        return None
    return {"gang": gang, "message": found.message, **{key: getattr(found, key, None) for key in GANG_FIELDS}}


def _not_found(env: Environment, message: str) -> HTMLResponse:
    html = env.get_template("base.html").render(title="not found", watch="", names="", active="",
                                                body=f"<main><p class=err>{_escape(message)}</p></main>")
    return HTMLResponse(html, status_code=404)


def _escape(text: str) -> str:
    from html import escape

    return escape(text)
