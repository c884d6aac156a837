"""Discovery documents: /version, /api, /apis and per-group documents.

kubectl asks for the aggregated discovery format first and falls back to these
legacy documents when the answer's content type is plain `application/json`.
"""

from __future__ import annotations

from typing import Any

from bigk.emulator.resources import groups

EMULATOR_GIT_VERSION = "v1.30.0-bigk-emulator"


def version() -> dict[str, Any]:
    return {
        "major": "1",
        "minor": "30",
        "gitVersion": EMULATOR_GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.22.0",
        "compiler": "gc",
        "platform": "linux/amd64",
        "emulator": "bigk emulated cluster (a test fixture, not Kubernetes)",
    }


def core_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def api_group(group: str) -> dict[str, Any] | None:
    versions = [v for g, v in groups() if g == group]
    if not versions:
        return None
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": entries, "preferredVersion": entries[0]}


def group_list() -> dict[str, Any]:
    names: list[str] = []
    for g, _ in groups():
        if g not in names:
            names.append(g)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [api_group(g) for g in names]}


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_v3_root() -> dict[str, Any]:
    """The OpenAPI v3 index kubectl reads before create/apply (to learn that fieldValidation is supported)."""
    gvs = [("", "v1"), *groups()]
    return {"paths": {_gv_path(g, v): {"serverRelativeURL": f"/openapi/v3/{_gv_path(g, v)}?hash=emulated"}
                      for g, v in gvs}}


def openapi_v3_group_version(group: str, version: str) -> dict[str, Any] | None:
    """A minimal OpenAPI v3 document for one group version: one PATCH operation per kind, no schemas.

    It only tells kubectl that the server validates fields itself, so kubectl skips its
    client-side schema validation (the emulator has no schemas and accepts unknown fields).
    """
    from bigk.emulator.resources import RESOURCES

    items = [r for r in RESOURCES if r.group == group and r.version == version]
    if not items:
        return None
    paths: dict[str, Any] = {}
    for r in items:
        prefix = f"/{_gv_path(group, version)}"
        scope = f"{prefix}/namespaces/{{namespace}}" if r.namespaced else prefix
        path = f"{scope}/{r.plural}/{{name}}"
        paths[path] = {
            "patch": {
                "operationId": f"patch{r.kind}",
                "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": r.kind},
                "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                               {"name": "fieldManager", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": {"description": "OK"}},
            }
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "bigk emulated cluster (no schemas)", "version": EMULATOR_GIT_VERSION},
        "paths": paths,
        "components": {"schemas": {}},
    }
