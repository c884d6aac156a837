"""People with Kubernetes credentials and RBAC on bigk.io, on the emulator or the real control plane.

On the emulator a user is a token registered with it (`EmulatedCluster.add_token`); on the real
kube-apiserver it is a ServiceAccount with a token from the TokenRequest API. Either way a
ClusterRole on bigk.io and a binding give it exactly the verbs a test names, and `kubeconfig()`
writes the file a CLI user would have (the token is its only credential).
"""

from __future__ import annotations

import contextlib
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.realk8s import ClusterUnderTest

RBAC = "rbac.authorization.k8s.io"
READ_ALL = [{"apiGroups": ["bigk.io"], "resources": ["jobs", "runs", "queues", "nodes", "audit"],
             "verbs": ["get", "list"]}]


@dataclass
class User:
    token: str
    username: str  # what TokenReview answers: alice-1a2b3c, or system:serviceaccount:default:alice-1a2b3c

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:1"}}],
            "users": [{"name": "u", "user": {"token": self.token}}],
            "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))
        return path


@dataclass
class Users:
    """Makes users on one cluster; `cleanup()` removes what it made (the real control plane is shared)."""

    cluster: ClusterUnderTest
    made: list[tuple[str, str]] = field(default_factory=list)

    def make(self, name: str, rules: list[dict[str, list[str]]]) -> User:
        api = self.cluster.api()
        rbac, core = client.RbacAuthorizationV1Api(api), client.CoreV1Api(api)
        name = f"{name}-{secrets.token_hex(3)}"
        if self.cluster.kind == "emulated":
            token, username = f"tok-{secrets.token_hex(8)}", name
            self.cluster.emulator.add_token(token, name, ["bigk-users"])  # type: ignore[attr-defined]
            subject = {"kind": "User", "name": name, "apiGroup": RBAC}
        else:
            core.create_namespaced_service_account("default", client.V1ServiceAccount(
                metadata=client.V1ObjectMeta(name=name)))
            self.made.append(("sa", name))
            request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[],
                                                                                           expiration_seconds=3600))
            token = str(core.create_namespaced_service_account_token(name, "default", request).status.token)
            username = f"system:serviceaccount:default:{name}"
            subject = {"kind": "ServiceAccount", "name": name, "namespace": "default"}
        rbac.create_cluster_role({"metadata": {"name": name}, "rules": rules})
        rbac.create_cluster_role_binding({"metadata": {"name": name}, "subjects": [subject],
                                          "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": name}})
        self.made.append(("rbac", name))
        return User(token, username)

    def cleanup(self) -> None:
        api = self.cluster.api()
        rbac, core = client.RbacAuthorizationV1Api(api), client.CoreV1Api(api)
        for kind, name in self.made:
            with contextlib.suppress(ApiException):
                if kind == "sa":
                    core.delete_namespaced_service_account(name, "default")
                else:
                    rbac.delete_cluster_role_binding(name)
                    rbac.delete_cluster_role(name)
        self.made.clear()
