"""The request -> bigk.io action table, the loopback rule and the review caches of `bigk.service.authz`."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException, Request
from fastapi.testclient import TestClient

from bigk.service.authz import Action, Guard, Identity, ReviewError, action_for, local_cluster


@pytest.mark.parametrize(("method", "path", "action"), [
    ("GET", "/api/v1/jobs", Action("list", "jobs")),
    ("GET", "/api/v1/jobs/etl", Action("get", "jobs", "etl")),
    ("GET", "/api/v1/jobs/etl/history", Action("get", "jobs", "etl")),
    ("GET", "/api/v1/runs", Action("list", "runs")),
    ("GET", "/api/v1/runs/ab12/explain", Action("get", "runs", "ab12")),
    ("GET", "/api/v1/queue", Action("list", "queues")),
    ("GET", "/api/v1/queues/ml", Action("get", "queues", "ml")),
    ("GET", "/api/v1/nodes", Action("list", "nodes")),
    ("GET", "/api/v1/gpus", Action("list", "nodes")),
    ("GET", "/api/v1/audit", Action("list", "audit")),
    ("GET", "/api/v1/watch", Action("list", "runs")),
    ("POST", "/api/v1/jobs/etl/run", Action("run", "jobs", "etl")),
    ("POST", "/api/v1/jobs/etl/resume", Action("suspend", "jobs", "etl")),
    ("POST", "/api/v1/runs/ab12/cancel", Action("cancel", "runs", "ab12")),
    ("POST", "/api/v1/nodes/gpu-0/uncordon", Action("cordon", "nodes", "gpu-0")),
    ("POST", "/api/v1/nodes/gpu-0/drain", Action("drain", "nodes", "gpu-0")),
    ("POST", "/api/v1/pools/gpu-a100/drain", Action("drain", "nodes")),  # every node of the pool
    ("GET", "/api/v1/clusters", Action("list", "clusters")),
    ("GET", "/api/v1/clusters/onprem", Action("get", "clusters", "onprem")),
    ("POST", "/api/v1/clusters/onprem/uncordon", Action("cordon", "clusters", "onprem")),
])
def test_requests_map_to_bigk_io_actions(method: str, path: str, action: Action) -> None:
    assert action_for(method, path) == action


def test_local_cluster_is_embedded_or_plain_http_loopback() -> None:
    def svc(url: str, embedded: bool = False) -> Any:
        return SimpleNamespace(kube_url=url, config=SimpleNamespace(embedded=embedded))

    assert local_cluster(svc("https://10.0.0.1:6443", embedded=True))
    assert local_cluster(svc("http://127.0.0.1:6443"))
    assert local_cluster(svc("http://[::1]:6443"))
    assert not local_cluster(svc("https://127.0.0.1:6443"))  # a real API server, even on loopback
    assert not local_cluster(svc("http://10.0.0.1:8080"))


class FakeReviews:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.down = False

    def token(self, token: str) -> Identity | None:
        self.calls.append(f"token {token}")
        if self.down:
            raise ReviewError("TokenReview failed: Unreachable")
        return Identity("alice", ("team",)) if token == "alice-token" else None

    def allowed(self, who: Identity, action: Action) -> tuple[bool, str]:
        self.calls.append(f"sar {who.user} {action}")
        return action.verb in ("get", "list"), "test RBAC"


def _app(guard: Guard) -> TestClient:
    app = FastAPI()

    @app.api_route("/api/v1/{rest:path}", methods=["GET", "POST"])
    def anything(request: Request, rest: str) -> dict[str, str]:
        who = guard(request)
        return {"user": who.user}

    return TestClient(app)


def test_decisions_and_tokens_are_cached_then_asked_again() -> None:
    now = [0.0]
    reviews = FakeReviews()
    guard = Guard("static", reviews, loopback_reads=False, clock=lambda: now[0])  # type: ignore[arg-type]
    http = _app(guard)
    alice = {"Authorization": "Bearer alice-token"}
    assert http.get("/api/v1/runs", headers=alice).json() == {"user": "alice"}
    assert http.get("/api/v1/runs", headers=alice).status_code == 200
    assert reviews.calls == ["token alice-token", "sar alice list runs"]
    assert http.post("/api/v1/runs/x/cancel", headers=alice).status_code == 403
    now[0] = 31.0
    http.get("/api/v1/runs", headers=alice)
    assert reviews.calls[-2:] == ["token alice-token", "sar alice list runs"]
    assert http.post("/api/v1/runs/x/cancel", headers={"Authorization": "Bearer static"}).status_code == 200
    assert http.get("/api/v1/runs").status_code == 401  # no loopback reads here
    reviews.down = True
    with pytest.raises(HTTPException) as err:
        guard._review_token("other-token")
    assert err.value.status_code == 503


def test_loopback_reads_only_when_allowed_and_never_actions() -> None:
    guard = Guard("static", FakeReviews(), loopback_reads=True)  # type: ignore[arg-type]
    http = _app(guard)
    assert http.get("/api/v1/jobs").status_code == 200
    assert http.post("/api/v1/jobs/a/run").status_code == 401

