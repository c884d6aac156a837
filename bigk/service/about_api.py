"""`GET /api/v1/version`: which bigk answers, for `bigk version` (client and server, as kubectl shows both)."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from fastapi import APIRouter

from bigk.service.parts import Parts


def bigk_version() -> str:
    """The installed distribution's version ("unknown" when running from a tree that was never installed)."""
    try:
        return metadata.version("bigk")
    except metadata.PackageNotFoundError:
        return "unknown"


def about_router(parts: Parts, read: Sequence[Any]) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["probes"])

    @router.get("/version", dependencies=list(read))
    def version() -> dict[str, Any]:
        """bigk's version, the API version, Python, and what cluster this server schedules."""
        return {"version": bigk_version(), "api": "bigk.io/v1", "python": platform.python_version(),
                "cluster": parts.kube_url, "policy": parts.config.policy, "embedded": parts.config.embedded,
                "started_at": parts.started_at}

    return router
