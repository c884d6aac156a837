"""`GET /leaderz`: whether this replica leads (fires, submits, binds), beside `/readyz` (serves the API).

Every replica serves the API (reads, and actions that are recorded for the leader to carry out), so
the chart's readiness probe uses `/readyz`; `/leaderz` answers 200 only on the leader, for people,
dashboards and anything that must reach the leader itself. Open, like the other probes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from bigk.service.parts import Parts


def leading_router(parts: Parts) -> APIRouter:
    router = APIRouter(tags=["probes"])

    @router.get("/leaderz")
    def leaderz(response: Response) -> dict[str, Any]:
        elector = parts.elector
        leading = bool(elector.is_leader)
        response.status_code = 200 if leading else 503
        return {"leading": leading, "identity": elector.identity, "leader": elector.leader,
                "stable_identity": parts.identity_claim.stable}

    return router
