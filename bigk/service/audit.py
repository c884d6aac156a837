"""The audit trail: every action through the API, who asked, from where, and what came of it.

An action is any request that changes something (POST/PUT/PATCH/DELETE under /api/v1),
allowed or not: a 403 is as much a part of the story as a success. Each one is a row in
`bigk_audit` (same database as the runs, so replicas and `bigk history --audit` see one
trail) and one structured log line `event=audit user=... action=... outcome=...`.
`GET /api/v1/audit` lists the rows (newest first), authorised as `list audit` in bigk.io.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request, Response
from sqlalchemy import Float, Integer, String, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1/"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_FIELD = 253


class _Base(DeclarativeBase):
    pass


class _Audit(_Base):
    __tablename__ = "bigk_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    user: Mapped[str] = mapped_column(String(MAX_FIELD), index=True)
    groups: Mapped[str] = mapped_column(String(1024), default="")
    via: Mapped[str] = mapped_column(String(32), default="")
    verb: Mapped[str] = mapped_column(String(64))
    resource: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(MAX_FIELD), default="")
    source: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(512), default="")


@dataclass(frozen=True)
class AuditRecord:
    """One action: who (user, groups, via), what (verb, resource, name), when (at), from where (source), outcome."""

    at: float
    user: str
    verb: str
    resource: str
    name: str
    source: str
    status: int
    outcome: str  # allowed | denied | unauthenticated | failed
    groups: str = ""
    via: str = ""
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def outcome_of(status: int) -> str:
    if status == 401:
        return "unauthenticated"
    if status == 403:
        return "denied"
    if status >= 400:
        return "failed"
    return "allowed"


class AuditLog:
    """The `bigk_audit` table on the service's database engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        _Base.metadata.create_all(engine)
        self._lock = threading.Lock()

    def add(self, record: AuditRecord) -> None:
        row = _Audit(**{k: (v[:512] if isinstance(v, str) else v) for k, v in record.to_dict().items()})
        with self._lock, Session(self.engine) as session:
            session.add(row)
            session.commit()

    def list(self, limit: int = 100, user: str | None = None, name: str | None = None) -> list[AuditRecord]:
        query = select(_Audit).order_by(_Audit.at.desc(), _Audit.id.desc()).limit(limit)
        if user:
            query = query.where(_Audit.user == user)
        if name:
            query = query.where(_Audit.name == name)
        with Session(self.engine) as session:
            rows = session.scalars(query).all()
            return [AuditRecord(at=r.at, user=r.user, verb=r.verb, resource=r.resource, name=r.name,
                                source=r.source, status=r.status, outcome=r.outcome, groups=r.groups, via=r.via,
                                detail=r.detail) for r in rows]


def _clean(text: str, limit: int = 200) -> str:
    """One short line: audit fields come from requests, which anyone can send."""
    return " ".join(str(text).split())[:limit]


def install(app: FastAPI, audit: AuditLog, clock: Callable[[], float] = time.time) -> None:
    """Record every write request under /api/v1 once its answer is known."""

    @app.middleware("http")
    async def _audit(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if request.method in WRITE_METHODS and request.url.path.startswith(API_PREFIX):
            try:
                _record(audit, request, response.status_code, clock())
            except Exception:  # the trail must not turn a done action into an error; say so loudly
                log.exception("event=audit_write_failed path=%s", _clean(request.url.path))
        return response


def _record(audit: AuditLog, request: Request, status: int, now: float) -> None:
    from bigk.service.authz import action_for

    action = getattr(request.state, "action", None) or action_for(request.method, request.url.path)
    who = getattr(request.state, "identity", None)
    source = request.client.host if request.client else ""
    record = AuditRecord(at=now, user=_clean(who.user if who else "(unauthenticated)"), verb=_clean(action.verb, 64),
                         resource=_clean(action.resource, 64), name=_clean(action.name), source=_clean(source, 64),
                         status=status, outcome=outcome_of(status),
                         groups=_clean(",".join(who.groups) if who else "", 1000), via=who.via if who else "")
    audit.add(record)
    log.info("event=audit user=%s groups=%s via=%s verb=%s resource=%s name=%s source=%s status=%d outcome=%s",
             _q(record.user), _q(record.groups), record.via or "-", record.verb, record.resource, _q(record.name),
             record.source, status, record.outcome)


def _q(text: str) -> str:
    """A logfmt value: quoted when it has spaces, quotes or is empty."""
    if text and all(c not in text for c in ' "=\\'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def audit_router(audit: AuditLog, read: Sequence[Any]) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["audit"])

    @router.get("/audit", dependencies=list(read))
    def list_audit(limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
                   user: Annotated[str | None, Query(max_length=MAX_FIELD)] = None,
                   name: Annotated[str | None, Query(max_length=MAX_FIELD)] = None) -> list[dict[str, Any]]:
        """Actions, newest first: who, what, when, from where and the outcome."""
        return [r.to_dict() for r in audit.list(limit=limit, user=user, name=name)]

    return router


__all__ = ["AuditLog", "AuditRecord", "audit_router", "install", "outcome_of"]
