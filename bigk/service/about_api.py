"""`GET /api/v1/version`: which bigk answers, for `bigk version` (client and server, as kubectl shows both)."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from fastapi import APIRouter


def bigk_version() -> str:
    """The installed distribution's version ("unknown" when running from a tree that was never installed)."""
    try:
        return metadata.version("bigk")
    except metadata.PackageNotFoundError:
        return "unknown"


def about_router(service: Any, read: Sequence[Any]) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["probes"])

    @router.get("/version", dependencies=list(read))
    def version() -> dict[str, Any]:
        """bigk's version, the API version, Python, and what cluster this server schedules."""
        return {"version": bigk_version(), "api": "bigk.io/v1", "python": platform.python_version(),
                "cluster": getattr(service, "kube_url", ""), "policy": getattr(service.config, "policy", ""),
                "embedded": bool(getattr(service.config, "embedded", False)),
                "started_at": getattr(service, "started_at", None)}

    return router
