"""TokenReview and SubjectAccessReview for the emulated API, answered from its own RBAC objects.

Enough of Kubernetes' authentication and authorization review APIs for bigk to
check callers against the emulator the way it does against a real API server:
bearer tokens registered with `EmulatedCluster.add_token` (or `POST
/emulator/v1/tokens`) authenticate as a user and groups; SubjectAccessReviews are
decided by the Roles, ClusterRoles, RoleBindings and ClusterRoleBindings stored in
the emulator (rules with apiGroups, resources, verbs and resourceNames; `*`
wildcards; User, Group and ServiceAccount subjects; the `system:masters` group is allowed
everything). Not modelled: aggregation, non-resource URLs, tokens of real
ServiceAccounts (register one as `system:serviceaccount:NS:NAME`), the API server's
own callers (the emulator authenticates nobody).
"""

from __future__ import annotations

import threading
from typing import Any

from bigk.emulator.resources import lookup

TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
PATHS = (TOKEN_REVIEWS, ACCESS_REVIEWS)
MASTERS = "system:masters"


class Reviews:
    """Registered tokens, and the review answers computed from stored RBAC objects."""

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    def add_token(self, token: str, user: str, groups: list[str] | tuple[str, ...] = ()) -> None:
        with self._lock:
            self._tokens[token] = (user, tuple(groups))

    def handle(self, path: str, body: Any, api: Any) -> dict[str, Any]:
        """The answered review object (status filled in) for a POST to one of PATHS."""
        body = body if isinstance(body, dict) else {}
        spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
        if path == TOKEN_REVIEWS:
            status = self._token_status(str(spec.get("token", "")))
            kind, version = "TokenReview", "authentication.k8s.io/v1"
        else:
            status = _access_status(spec, api)
            kind, version = "SubjectAccessReview", "authorization.k8s.io/v1"
        return {"kind": kind, "apiVersion": version, "metadata": {}, "spec": spec, "status": status}

    def _token_status(self, token: str) -> dict[str, Any]:
        with self._lock:
            found = self._tokens.get(token)
        if found is None:
            return {"authenticated": False, "error": "invalid bearer token"}
        user, groups = found
        return {"authenticated": True, "user": {"username": user, "uid": f"uid-{user}",
                                                  "groups": [*groups, "system:authenticated"]}}


def _items(api: Any, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
    rt = lookup("rbac.authorization.k8s.io", "v1", plural)
    if rt is None:
        return []
    return list(api.list(rt, namespace, None).get("items", []))


def _bound(binding: dict[str, Any], user: str, groups: set[str]) -> bool:
    for subject in binding.get("subjects") or []:
        kind, name = subject.get("kind"), subject.get("name")
        if (kind == "User" and name == user) or (kind == "Group" and name in groups):
            return True
        if kind == "ServiceAccount" and user == f"system:serviceaccount:{subject.get('namespace')}:{name}":
            return True
    return False


def _matches(values: list[str] | None, wanted: str) -> bool:
    return bool(values) and ("*" in values or wanted in values)  # type: ignore[operator]


def _rule_allows(rule: dict[str, Any], attrs: dict[str, Any]) -> bool:
    resource = attrs.get("resource", "")
    if attrs.get("subresource"):
        resource = f"{resource}/{attrs['subresource']}"
    names = rule.get("resourceNames")
    return (_matches(rule.get("apiGroups"), attrs.get("group", ""))
            and _matches(rule.get("resources"), resource)
            and _matches(rule.get("verbs"), attrs.get("verb", ""))
            and (not names or attrs.get("name", "") in names))


def _role_rules(api: Any, ref: dict[str, Any], namespace: str | None) -> list[dict[str, Any]]:
    plural = "clusterroles" if ref.get("kind") == "ClusterRole" else "roles"
    for role in _items(api, plural, None if plural == "clusterroles" else namespace):
        if role.get("metadata", {}).get("name") == ref.get("name"):
            return list(role.get("rules") or [])
    return []


def _access_status(spec: dict[str, Any], api: Any) -> dict[str, Any]:
    user = str(spec.get("user", ""))
    groups = set(spec.get("groups") or [])
    raw = spec.get("resourceAttributes")
    attrs: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if MASTERS in groups:
        return {"allowed": True, "reason": f"group {MASTERS}"}
    namespace = attrs.get("namespace") or None
    bindings = [("ClusterRoleBinding", b, None) for b in _items(api, "clusterrolebindings")]
    if namespace:
        bindings += [("RoleBinding", b, namespace) for b in _items(api, "rolebindings", namespace)]
    for kind, binding, ns in bindings:
        if not _bound(binding, user, groups):
            continue
        for rule in _role_rules(api, binding.get("roleRef") or {}, ns):
            if _rule_allows(rule, attrs):
                name = binding.get("metadata", {}).get("name", "")
                return {"allowed": True, "reason": f"RBAC: allowed by {kind} {name!r}"}
    return {"allowed": False, "reason": "no RBAC rule allows it"}


__all__ = ["PATHS", "Reviews"]
