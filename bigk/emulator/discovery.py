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
