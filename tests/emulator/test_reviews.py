"""The emulator answers TokenReview and SubjectAccessReview from registered tokens and its stored RBAC objects."""

from __future__ import annotations

from kubernetes import client

from bigk.emulator import EmulatedCluster
from bigk.kube.client import api_client

RBAC = "rbac.authorization.k8s.io"


def _allowed(api: client.ApiClient, user: str, groups: list[str], verb: str, resource: str, name: str = "",
             namespace: str = "") -> bool:
    attrs = client.V1ResourceAttributes(group="bigk.io", resource=resource, verb=verb, name=name or None,
                                        namespace=namespace or None)
    review = client.AuthorizationV1Api(api).create_subject_access_review(client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(user=user, groups=groups, resource_attributes=attrs)))
    return bool(review.status.allowed)


def test_tokens_and_rbac_decide_like_an_api_server() -> None:
    with EmulatedCluster([]) as emu:
        emu.add_token("t-alice", "alice", ["team-a"])
        api = api_client(server=emu.url)
        review = client.AuthenticationV1Api(api).create_token_review(
            client.V1TokenReview(spec=client.V1TokenReviewSpec(token="t-alice")))
        assert review.status.authenticated and review.status.user.username == "alice"
        assert "team-a" in review.status.user.groups
        unknown = client.AuthenticationV1Api(api).create_token_review(
            client.V1TokenReview(spec=client.V1TokenReviewSpec(token="nope")))
        assert not unknown.status.authenticated
        rbac = client.RbacAuthorizationV1Api(api)
        rbac.create_cluster_role({"metadata": {"name": "runs-view"}, "rules": [
            {"apiGroups": ["bigk.io"], "resources": ["runs"], "verbs": ["get", "list"]},
            {"apiGroups": ["bigk.io"], "resources": ["nodes"], "verbs": ["drain"], "resourceNames": ["gpu-0"]}]})
        rbac.create_cluster_role_binding({"metadata": {"name": "team-a-view"}, "roleRef": {
            "apiGroup": RBAC, "kind": "ClusterRole", "name": "runs-view"},
            "subjects": [{"kind": "Group", "name": "team-a", "apiGroup": RBAC}]})
        rbac.create_namespaced_role("ml", {"metadata": {"name": "cancel"}, "rules": [
            {"apiGroups": ["bigk.io"], "resources": ["runs"], "verbs": ["cancel"]}]})
        rbac.create_namespaced_role_binding("ml", {"metadata": {"name": "robot-cancel"}, "roleRef": {
            "apiGroup": RBAC, "kind": "Role", "name": "cancel"},
            "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "ml"}]})
        assert _allowed(api, "alice", ["team-a"], "list", "runs")
        assert not _allowed(api, "alice", ["team-a"], "cancel", "runs")
        assert not _allowed(api, "bob", [], "list", "runs")
        assert _allowed(api, "alice", ["team-a"], "drain", "nodes", name="gpu-0")
        assert not _allowed(api, "alice", ["team-a"], "drain", "nodes", name="gpu-1")
        robot = "system:serviceaccount:ml:robot"
        assert _allowed(api, robot, [], "cancel", "runs", namespace="ml")
        assert not _allowed(api, robot, [], "cancel", "runs")  # a Role binds in its namespace only
        assert _allowed(api, "root", ["system:masters"], "drain", "nodes")
