"""Least privilege, proven on the real kube-apiserver from its audit log.

The chart's ServiceAccounts, ClusterRoles, Roles, bindings and admission policy are rendered by
Helm and applied to the real API server. `bigk serve` then runs as the chart's ServiceAccount
(a token from the TokenRequest API, the chart's own container arguments) through a day's work:
scheduled runs admitted, bound and finished, a run cancelled, a node cordoned, drained and
uncordoned, leadership taken and released. The agent publishes readings as its own
ServiceAccount with a token bound to a pod on its node. Afterwards the API server's audit log
says what each identity did: every request was allowed (nothing it needs is missing), and every
verb on every resource the chart grants was used (nothing granted goes unused). The agent may
patch only the node its pod runs on; the ValidatingAdmissionPolicy refuses any other.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client, dynamic
from kubernetes.client.exceptions import ApiException

from bigk.emulator.remote import SimulatedNodes
from bigk.gpu.agent import AgentError, NodeAnnotationPublisher
from bigk.service.api import create_app
from bigk.service.app import Service, ServiceConfig
from bigk.service.http import HttpServer
from testenv.controlplane import write_kubeconfig
from tests.observability.test_helm_chart import CHART, helm
from tests.realk8s import RealCluster, clean_namespace
from tests.service.conftest import job_yaml, wait_for

pytestmark = [pytest.mark.cluster]

NAMESPACE = "bigk-system"
RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
              "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
Grant = tuple[str, str, str]  # (api group, resource[/subresource], verb)
# Rights bigk uses on paths this test does not walk, each with the test that walks it there.
EXERCISED_ELSEWHERE: dict[Grant, str] = {
    ("", "persistentvolumeclaims", "patch"):
        "WaitForFirstConsumer claims get the selected-node annotation: tests/kube/semantics_scenarios.py",
}


def _render(values: dict[str, Any]) -> list[dict[str, Any]]:
    with helm.Chart.load(str(CHART)) as chart:
        out = chart.render(values=values, name="bigk", namespace=NAMESPACE)
    return [d for path, text in out.items() if not path.endswith(".txt") for d in yaml.safe_load_all(text) if d]


def _apply(dyn: dynamic.DynamicClient, docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        resource = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        ns = doc["metadata"].get("namespace", NAMESPACE) if resource.namespaced else None
        resource.server_side_apply(body=doc, namespace=ns, field_manager="helm", force_conflicts=True)


def grants_of(docs: list[dict[str, Any]], account: str) -> set[Grant]:
    """Every (group, resource, verb) the chart's roles give one ServiceAccount (wildcards are refused)."""
    roles = {(d["kind"], d["metadata"]["name"]): d for d in docs if d["kind"] in ("ClusterRole", "Role")}
    out: set[Grant] = set()
    for binding in (d for d in docs if d["kind"] in ("ClusterRoleBinding", "RoleBinding")):
        if not any(s["kind"] == "ServiceAccount" and s["name"] == account for s in binding["subjects"]):
            continue
        role = roles[(binding["roleRef"]["kind"], binding["roleRef"]["name"])]
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        assert "*" not in (group, resource, verb), f"wildcard grant in {role['metadata']['name']}"
                        out.add((group, resource, verb))
    return out


def used_by(audit_log: Path, username: str) -> tuple[set[Grant], list[str]]:
    """What one identity did according to the audit log, and the requests refused to it."""
    used: set[Grant] = set()
    refused: list[str] = []
    for line in audit_log.read_text().splitlines():
        event = json.loads(line)
        if event.get("user", {}).get("username") != username or "objectRef" not in event:
            continue
        ref = event["objectRef"]
        resource = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        grant = (ref.get("apiGroup", ""), resource, event["verb"])
        code = event.get("responseStatus", {}).get("code", 0)
        # kube-apiserver refuses (403) to proxy to the simulated pods' made-up addresses: not a missing right
        if code == 403 and resource != "pods/proxy":
            refused.append(f"{grant} {ref.get('namespace', '')}/{ref.get('name', '')}: "
                           f"{event.get('responseStatus', {}).get('message', '')}")
        else:
            used.add(grant)
            if event["verb"] == "patch" and code == 201:  # a server-side apply that created the object
                used.add((grant[0], grant[1], "create"))
    return used, refused


@pytest.fixture
def installed(control_plane: RealCluster, real_nodes: SimulatedNodes) -> Iterator[list[dict[str, Any]]]:
    api = control_plane.api()
    core = client.CoreV1Api(api)
    with contextlib.suppress(ApiException):
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    docs = [d for d in _render({}) if d["kind"] in RBAC_KINDS]
    _apply(dynamic.DynamicClient(api), docs)
    yield docs
    clean_namespace(api, "default")


def _token(core: client.CoreV1Api, account: str, pod: client.V1Pod | None = None) -> str:
    bound = None
    if pod is not None:
        bound = client.V1BoundObjectReference(kind="Pod", api_version="v1", name=pod.metadata.name,
                                              uid=pod.metadata.uid)
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600, bound_object_ref=bound))
    return str(core.create_namespaced_service_account_token(account, NAMESPACE, request).status.token)


def _gpu_job(name: str, gpu: str, instances: int, duration: int) -> str:
    return (f"apiVersion: bigk.io/v1\nkind: SparkJob\nmetadata:\n  name: {name}\nspec:\n  type: Python\n"
            f"  image: bigk/spark-apps:0.1\n  mainApplicationFile: local:///opt/app.py\n"
            f"  expectedDurationSeconds: {duration}\n"
            f"  executor:\n    cores: 1\n    memory: 1g\n    instances: {instances}\n    gpu: {gpu}\n")


def _serve(kubeconfig: Path, specs: Path, state: Path, mode: str) -> tuple[Service, HttpServer, str]:
    cfg = ServiceConfig(specs=[specs], kubeconfig=str(kubeconfig), state_dir=state, submit_mode=mode,
                        tick_s=0.2, reload_s=0.3, leader_lease_s=3.0, lease_namespace=NAMESPACE)
    service = Service(cfg).start()
    http = HttpServer("127.0.0.1", 0)
    url = http.start(create_app(service, "t"))
    wait_for(lambda: service.is_leader, 20, "leadership")
    return service, http, url


def _state(c: httpx.Client, run: str) -> str:
    return str(c.get(f"/api/v1/runs/{run}").json()["state"])


def test_bigk_serve_uses_every_right_the_chart_grants_and_needs_no_other(
        control_plane: RealCluster, real_nodes: SimulatedNodes, installed: list[dict[str, Any]],
        tmp_path: Path) -> None:
    assert control_plane.audit_log is not None, "needs the testenv control plane's audit log"
    admin = control_plane.api()
    core = client.CoreV1Api(admin)
    account = next(d["metadata"]["name"] for d in installed if d["kind"] == "ServiceAccount"
                   and d["metadata"].get("namespace") == NAMESPACE
                   and d["metadata"]["name"] not in ("spark",) and not d["metadata"]["name"].endswith("-agent"))
    kubeconfig = write_kubeconfig(tmp_path / "bigk.kubeconfig", str(admin.configuration.host),
                                  Path(str(admin.configuration.ssl_ca_cert)), token=_token(core, account),
                                  user=account)
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "work.yaml").write_text(job_yaml("work", instances=2, duration=20))
    (specs / "long.yaml").write_text(job_yaml("long", instances=1, duration=100_000))
    (specs / "wide.yaml").write_text(_gpu_job("wide", "{count: 8}", 2, 40))  # both A100 nodes, whole
    (specs / "frac.yaml").write_text(_gpu_job("frac", "{fraction: 0.5, memory: 4Gi}", 1, 20))
    service, http, url = _serve(kubeconfig, specs, tmp_path / "state", "direct")
    try:
        with httpx.Client(base_url=url, headers={"Authorization": "Bearer t"}, timeout=30) as c:
            done = c.post("/api/v1/jobs/work/run").json()["id"]
            long = c.post("/api/v1/jobs/long/run").json()["id"]
            wide = [c.post("/api/v1/jobs/wide/run").json()["id"] for _ in range(2)]  # the second waits
            frac = c.post("/api/v1/jobs/frac/run").json()["id"]  # bigk assigns the shared GPU
            for run in (done, frac, *wide):
                wait_for(lambda run=run: _state(c, run) == "Succeeded", 90, f"run {run} to succeed")
            wait_for(lambda: _state(c, long) == "Running", 60, "a long run to start")
            assert c.get(f"/api/v1/runs/{long}/logs").status_code == 200  # the driver log, via pods/log
            c.get(f"/api/v1/runs/{long}/ui/proxy/")  # the Spark UI via pods/proxy (no real pod answers here)
            node = c.get(f"/api/v1/runs/{long}").json()["pods"][0]["node"]
            assert c.post(f"/api/v1/nodes/{node}/drain").status_code < 300
            wait_for(lambda: _state(c, long) != "Running", 30, "the drained run to stop")
            assert c.post(f"/api/v1/nodes/{node}/uncordon").status_code < 300
            again = c.post("/api/v1/jobs/long/run").json()["id"]
            wait_for(lambda: _state(c, again) == "Running", 60, "a rerun to start")
            assert c.post(f"/api/v1/runs/{again}/cancel").status_code < 300
            wait_for(lambda: _state(c, again) == "Cancelled", 30, "the cancel")
        # someone with a Kubernetes identity: bigk asks the API server who it is and what it may do
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {_token(core, account)}"},
                          timeout=30) as c:
            c.get("/api/v1/runs")
    finally:
        http.stop()
        service.stop()
    # spark-submit (the default on real clusters) runs as bigk's own identity too
    (specs / "frac.yaml").unlink()
    (specs / "wide.yaml").unlink()
    service, http, url = _serve(kubeconfig, specs, tmp_path / "state-spark", "spark")
    try:
        with httpx.Client(base_url=url, headers={"Authorization": "Bearer t"}, timeout=30) as c:
            run = c.post("/api/v1/jobs/work/run").json()["id"]
            final = wait_for(lambda: (lambda r: r if r["state"] in ("Succeeded", "Failed") else None)(
                c.get(f"/api/v1/runs/{run}").json()), 120, "the spark-submit run to end")
            assert final["state"] == "Succeeded", final["reason"]
    finally:
        http.stop()
        service.stop()
    used, refused = _wait_for_audit(control_plane.audit_log, f"system:serviceaccount:{NAMESPACE}:{account}")
    assert refused == [], "bigk needed rights the chart does not grant"
    granted = grants_of(installed, account)
    assert granted - used - set(EXERCISED_ELSEWHERE) == set(), "the chart grants rights bigk never used"
    assert set(EXERCISED_ELSEWHERE) <= granted, "a right listed as exercised elsewhere is no longer granted"


def test_the_agent_patches_only_its_own_node(control_plane: RealCluster, real_nodes: SimulatedNodes,
                                            installed: list[dict[str, Any]]) -> None:
    assert control_plane.audit_log is not None
    admin = control_plane.api()
    core = client.CoreV1Api(admin)
    account = next(d["metadata"]["name"] for d in installed if d["kind"] == "ServiceAccount"
                   and d["metadata"]["name"].endswith("-agent"))
    gpu_nodes = sorted(n for n, m in real_nodes.model_nodes.items() if m.gpus)
    mine, other = gpu_nodes[0], gpu_nodes[1]
    pod = core.create_namespaced_pod(NAMESPACE, client.V1Pod(
        metadata=client.V1ObjectMeta(generate_name="bigk-agent-"),
        spec=client.V1PodSpec(node_name=mine, service_account_name=account,
                              containers=[client.V1Container(name="agent", image="bigk/bigk")])))
    try:
        token = _token(core, account, pod)
        cfg = client.Configuration()
        cfg.host = admin.configuration.host
        cfg.ssl_ca_cert = admin.configuration.ssl_ca_cert
        cfg.api_key = {"authorization": f"Bearer {token}"}
        publisher = NodeAnnotationPublisher(client.CoreV1Api(client.ApiClient(cfg)))
        publisher.publish(mine, "[]")
        # kube-apiserver loads a new ValidatingAdmissionPolicy from its informer a moment after it is created;
        # until then the RBAC grant alone decides. The policy must refuse within that moment.
        deadline = time.monotonic() + 20
        while True:
            try:
                publisher.publish(other, "[]")
            except AgentError as exc:
                assert "403" in str(exc), exc
                break
            assert time.monotonic() < deadline, "the admission policy never refused a patch of another node"
            time.sleep(0.5)
        assert (core.read_node(mine).metadata.annotations or {}).get("bigk.io/gpu-readings") is not None
    finally:
        core.delete_namespaced_pod(pod.metadata.name, NAMESPACE, grace_period_seconds=0)
    used, refused = _wait_for_audit(control_plane.audit_log, f"system:serviceaccount:{NAMESPACE}:{account}")
    assert len(refused) == 1 and other in refused[0] and "only the node its pod runs on" in refused[0]
    assert grants_of(installed, account) - used == set(), "the chart grants the agent rights it never used"


def _wait_for_audit(path: Path, username: str) -> tuple[set[Grant], list[str]]:
    """The audit log is written in batches (at most a second behind): read it once it has settled."""
    result: tuple[set[Grant], list[str]] = (set(), [])

    def settled() -> bool:
        nonlocal result
        now = used_by(path, username)
        stable = now == result and bool(now[0])
        result = now
        return stable

    wait_for(settled, 20, "the audit log to settle", interval=1.5)
    return result
