"""Who is calling and what they may do: Kubernetes identities and RBAC on bigk's own resources.

Every API request (but the probes and /metrics) goes through `Guard`:

1. **Who.** `Authorization: Bearer <token>`. The static token of the install (state dir,
   `--token-file`, `$BIGK_TOKEN`) is bigk's own automation identity and may do everything.
   Any other token is checked with a Kubernetes TokenReview; the API server answers with the
   user and groups (the same credentials `kubectl` uses). Without a token, only a client on
   loopback of an install on the embedded emulated cluster may read; anywhere else: 401.
2. **What.** The request maps to a verb on a resource in the `bigk.io` API group
   (`ACTIONS`): `get`/`list` on `jobs`, `runs`, `queues`, `nodes`, `audit`; `run`, `suspend` on
   `jobs`; `cancel` on `runs`; `cordon`, `drain` on `nodes`. A SubjectAccessReview asks the
   API server whether the caller's RBAC allows it, so teams grant rights with ordinary
   ClusterRoles and bindings (see the chart's `bigk-viewer` / `bigk-operator`); 403 when not.

Answers are cached briefly (tokens 30 s, decisions 10 s) so a busy CLI does not become a
load on the API server; a revoked binding is honoured within 10 s. The identity is left on
`request.state.identity` for the audit trail.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Request

from bigk.service.auth import token_matches

if TYPE_CHECKING:
    from bigk.service.parts import Parts

log = logging.getLogger(__name__)

GROUP = "bigk.io"
STATIC_USER = "bigk:static-token"
LOOPBACK_USER = "system:anonymous(loopback)"
TOKEN_TTL_S = 30.0
DECISION_TTL_S = 10.0
REVIEW_TIMEOUT_S = 5.0
READ_VERBS = frozenset({"get", "list"})
_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}

# POST /api/v1/<collection>/<name>/<action> -> (verb, resource)
ACTIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("jobs", "run"): ("run", "jobs"),
    ("jobs", "suspend"): ("suspend", "jobs"),
    ("jobs", "resume"): ("suspend", "jobs"),
    ("jobs", "clear-suspend"): ("suspend", "jobs"),
    ("runs", "cancel"): ("cancel", "runs"),
    ("nodes", "cordon"): ("cordon", "nodes"),
    ("nodes", "uncordon"): ("cordon", "nodes"),
    ("nodes", "drain"): ("drain", "nodes"),
    ("pools", "cordon"): ("cordon", "nodes"),
    ("pools", "uncordon"): ("cordon", "nodes"),
    ("pools", "drain"): ("drain", "nodes"),
    ("clusters", "cordon"): ("cordon", "clusters"),  # several clusters: stop / resume dispatching to one
    ("clusters", "uncordon"): ("cordon", "clusters"),
    ("whatif", ""): ("get", "jobs"),  # POST /api/v1/whatif reads only: it forecasts a spec, creates nothing
}
# GET /api/v1/<collection>[/<name>...] -> resource in bigk.io
READS: dict[str, str] = {
    "jobs": "jobs", "problems": "jobs", "runs": "runs", "events": "runs", "explanations": "runs",
    "watch": "runs", "queue": "queues", "queues": "queues", "nodes": "nodes", "gpus": "nodes", "pools": "nodes",
    "audit": "audit", "version": "version", "clusters": "clusters",
}


@dataclass(frozen=True)
class Identity:
    """The caller: a Kubernetes user (and groups), bigk's static token, or an anonymous loopback reader."""

    user: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    via: str = "kubernetes"  # kubernetes | static-token | loopback


@dataclass(frozen=True)
class Action:
    """What a request asks: `verb` on `resource` (in bigk.io), optionally one object by `name`."""

    verb: str
    resource: str
    name: str = ""

    def __str__(self) -> str:
        return f"{self.verb} {self.resource}/{self.name}" if self.name else f"{self.verb} {self.resource}"


def action_for(method: str, path: str) -> Action:
    """The bigk.io action a request under /api/v1 asks for (reads: get one / list; POSTs: ACTIONS)."""
    parts = [p for p in path.split("/") if p][2:]  # after api/v1
    collection = parts[0] if parts else ""
    name = parts[1] if len(parts) > 1 else ""
    if method in ("GET", "HEAD"):
        resource = READS.get(collection, collection or "api")
        if collection == "watch":
            return Action("list", resource)
        return Action("get" if name else "list", resource, name if collection not in ("gpus",) else "")
    verb_resource = ACTIONS.get((collection, parts[-1] if len(parts) > 2 else ""))
    if verb_resource is None:  # an action bigk does not name: ask for the verb the path ends with
        return Action(parts[-1] if parts else method.lower(), READS.get(collection, collection), name)
    verb, resource = verb_resource
    return Action(verb, resource, "" if collection == "pools" else name)


def is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ("localhost", "testclient")


class ReviewError(Exception):
    """The API server could not be asked (unreachable, forbidden to bigk itself)."""


class KubeReviews:
    """TokenReview and SubjectAccessReview through bigk's own Kubernetes client."""

    def __init__(self, api: Any) -> None:
        self.api = api

    def token(self, token: str) -> Identity | None:
        from kubernetes import client

        try:
            review = client.AuthenticationV1Api(self.api).create_token_review(
                client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token)), _request_timeout=REVIEW_TIMEOUT_S)
        except Exception as exc:
            raise ReviewError(f"TokenReview failed: {_short(exc)}") from None
        status = review.status
        if status is None or not status.authenticated or status.user is None:
            return None
        user = status.user
        return Identity(user.username or "", tuple(user.groups or ()), user.uid or "", "kubernetes")

    def allowed(self, who: Identity, action: Action) -> tuple[bool, str]:
        from kubernetes import client

        attrs = client.V1ResourceAttributes(group=GROUP, resource=action.resource, verb=action.verb,
                                            name=action.name or None)
        spec = client.V1SubjectAccessReviewSpec(user=who.user, groups=list(who.groups), uid=who.uid or None,
                                                resource_attributes=attrs)
        try:
            review = client.AuthorizationV1Api(self.api).create_subject_access_review(
                client.V1SubjectAccessReview(spec=spec), _request_timeout=REVIEW_TIMEOUT_S)
        except Exception as exc:
            raise ReviewError(f"SubjectAccessReview failed: {_short(exc)}") from None
        status = review.status
        return bool(status and status.allowed), str((status.reason if status else "") or "")


def _short(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    return f"{type(exc).__name__} {status}" if status else type(exc).__name__


class Guard:
    """Authenticates and authorises one request; a FastAPI dependency (`Depends(guard)`)."""

    def __init__(self, static_token: str | None, reviews: KubeReviews | None, loopback_reads: bool,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.static_token = static_token
        self.reviews = reviews
        self.loopback_reads = loopback_reads
        self._clock = clock
        self._tokens: dict[str, tuple[float, Identity | None]] = {}
        self._decisions: dict[tuple[Identity, Action], tuple[float, bool, str]] = {}
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Identity:
        action = action_for(request.method, request.url.path)
        request.state.action = action
        who = self.authenticate(request, action)
        request.state.identity = who
        allowed, reason = self.authorize(who, action)
        if not allowed:
            log.info("event=access_denied user=%s action=%r reason=%r", who.user, str(action), reason)
            raise HTTPException(403, f"{who.user} may not {action.verb} {action.resource} in {GROUP}"
                                     f"{': ' + reason if reason else ''}; ask for an RBAC role that grants it")
        return who

    def authenticate(self, request: Request, action: Action | None = None) -> Identity:
        header = request.headers.get("authorization")
        if not header:
            reading = action is None or action.verb in READ_VERBS
            if reading and self.loopback_reads and is_loopback(request):
                return Identity(LOOPBACK_USER, via="loopback")
            raise HTTPException(401, "this needs a bearer token: the kubeconfig's credentials (the CLI's default), "
                                     "$BIGK_TOKEN, or the token file of the state dir", headers=_UNAUTHORIZED)
        if self.static_token is not None and token_matches(self.static_token, header):
            return Identity(STATIC_USER, ("system:masters",), via="static-token")
        token = header[len("Bearer "):].strip() if header.startswith("Bearer ") else ""
        who = self._review_token(token) if token and self.reviews is not None else None
        if who is None:
            raise HTTPException(401, "the bearer token was not accepted (neither bigk's token nor a Kubernetes "
                                     "credential the API server recognises)", headers=_UNAUTHORIZED)
        return who

    def authorize(self, who: Identity, action: Action) -> tuple[bool, str]:
        if who.via == "static-token":
            return True, "static token"
        if who.via == "loopback":
            return action.verb in READ_VERBS, "token-less loopback callers may only read"
        if action.resource == "version":
            return True, "anyone authenticated may ask the version"
        key = (who, action)
        now = self._clock()
        with self._lock:
            cached = self._decisions.get(key)
        if cached is not None and cached[0] > now:
            return cached[1], cached[2]
        assert self.reviews is not None
        try:
            allowed, reason = self.reviews.allowed(who, action)
        except ReviewError as exc:
            raise HTTPException(503, f"cannot check access with the Kubernetes API: {exc}") from None
        with self._lock:
            if len(self._decisions) > 10_000:
                self._decisions.clear()
            self._decisions[key] = (now + DECISION_TTL_S, allowed, reason)
        return allowed, reason

    def _review_token(self, token: str) -> Identity | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        with self._lock:
            cached = self._tokens.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        assert self.reviews is not None
        try:
            who = self.reviews.token(token)
        except ReviewError as exc:
            raise HTTPException(503, f"cannot check the token with the Kubernetes API: {exc}") from None
        with self._lock:
            if len(self._tokens) > 10_000:
                self._tokens.clear()
            self._tokens[digest] = (now + TOKEN_TTL_S, who)
        return who


def local_cluster(service: Any) -> bool:
    """True for the embedded emulated cluster, or a Kubernetes API on plain-HTTP loopback (an emulator too):
    whoever is on this machine can read that cluster directly, so token-less loopback reads protect nothing."""
    if bool(getattr(getattr(service, "config", None), "embedded", False)):
        return True
    url = str(getattr(service, "kube_url", "") or "")
    if not url.startswith("http://"):
        return False
    host = url[len("http://"):].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def guard_for(parts: Parts, static_token: str | None) -> Guard:
    """The guard of a started service: reviews through its Kubernetes client; token-less loopback reads only on
    a local (embedded or loopback-emulated) cluster."""
    return Guard(static_token, KubeReviews(parts.kube), loopback_reads=local_cluster(parts))


__all__ = ["ACTIONS", "GROUP", "Action", "Guard", "Identity", "KubeReviews", "action_for", "guard_for"]
