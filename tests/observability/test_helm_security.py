"""The chart's pods meet the restricted Pod Security Standard, and its RBAC never lets bigk create pods everywhere.

Rendered by Helm's own engine (as test_helm_chart does); the pod templates are checked with bigk's own
Pod Security Standards checks (bigk.spec.policy), plus the explicit settings the restricted profile asks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bigk.spec.policy import SpecPolicy, check_template, load_policy

helm = pytest.importorskip("helm_python", reason="helm-python-sdk (Helm's Go SDK for Python) is not installed")

CHART = Path(__file__).resolve().parents[2] / "helm" / "bigk"
VALUES = {"jobspecs": {"gitSync": {"enabled": True, "repo": "https://example.com/specs.git"}}}


@pytest.fixture(scope="module")
def docs() -> Iterator[list[dict[str, Any]]]:
    with helm.Chart.load(str(CHART)) as chart:
        out = chart.render(values=VALUES, name="bigk", namespace="bigk-system")
    yield [d for path, text in out.items() if not path.endswith(".txt") for d in yaml.safe_load_all(text) if d]


def _pods(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d["spec"]["template"] for d in docs if d["kind"] in ("Deployment", "DaemonSet")}


def test_every_pod_meets_the_restricted_profile(docs: list[dict[str, Any]]) -> None:
    pods = _pods(docs)
    assert set(pods) == {"bigk", "bigk-agent"}
    for name, pod in pods.items():
        assert [f for f in check_template(pod, "restricted") if f.severity == "error"] == [], name
        pod_sc = pod["spec"].get("securityContext", {})
        for container in pod["spec"]["containers"]:
            sc = container.get("securityContext", {})
            where = f"{name}/{container['name']}"
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert (sc.get("seccompProfile") or pod_sc.get("seccompProfile")) == {"type": "RuntimeDefault"}, where
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, where
    assert {c["name"] for c in pods["bigk"]["spec"]["containers"]} == {"bigk", "git-sync"}


def test_serve_gets_the_spec_policy_and_its_host_names(docs: list[dict[str, Any]], tmp_path: Path) -> None:
    serve = next(c for c in _pods(docs)["bigk"]["spec"]["containers"] if c["name"] == "bigk")
    assert "--spec-policy=/etc/bigk/spec-policy/policy.yaml" in serve["args"]
    assert "--allowed-host=bigk.bigk-system.svc" in serve["args"]
    policy_map = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "bigk-spec-policy")
    path = tmp_path / "policy.yaml"
    path.write_text(policy_map["data"]["policy.yaml"])
    assert load_policy(path) == SpecPolicy({"default": "restricted"}, {}, source=str(path))


def test_bigk_creates_pods_only_in_job_namespaces_and_may_review_callers(docs: list[dict[str, Any]]) -> None:
    main = next(d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "bigk")
    cluster_wide = {(r, v) for rule in main["rules"] for r in rule["resources"] for v in rule["verbs"]}
    assert ("pods", "create") not in cluster_wide
    submit = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "bigk-submit"]
    assert [d["metadata"]["namespace"] for d in submit] == ["default"]
    assert {(r, v) for rule in submit[0]["rules"] for r in rule["resources"] for v in rule["verbs"]} == {
        ("pods", "create"), ("configmaps", "create"), ("configmaps", "list"), ("configmaps", "delete"),
        ("configmaps", "patch"), ("services", "create"), ("services", "patch"), ("networkpolicies", "create"),
        ("networkpolicies", "patch")}  # exactly what the audit log shows bigk uses (tests/kube/test_least_privilege.py)
    auth = next(d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "bigk-auth")
    assert {(r, v) for rule in auth["rules"] for r in rule["resources"] for v in rule["verbs"]} == {
        ("tokenreviews", "create"), ("subjectaccessreviews", "create")}
    operator = next(d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "bigk-operator")
    verbs = {(r, v) for rule in operator["rules"] for r in rule["resources"] for v in rule["verbs"]}
    assert {("runs", "cancel"), ("nodes", "drain"), ("jobs", "run"), ("audit", "list")} <= verbs
