"""The Helm chart, rendered by Helm's own Go engine (helm-python-sdk bundles the Helm v4 SDK).

Each rendered object is round-tripped through the official Kubernetes client's
models, so a misspelt or misplaced field (which Kubernetes would reject or
silently drop) fails the test; the container arguments are parsed by bigk's own
CLI, so the chart cannot drift from the commands it runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from kubernetes import client

from bigk.cli.main import app
from bigk.cluster.labels import GPU_READINGS_ANNOTATION  # noqa: F401 (documents what the agent writes)

helm = pytest.importorskip("helm_python", reason="helm-python-sdk (Helm's Go SDK for Python) is not installed; "
                                                 "pip install -e '.[dev]'")

CHART = Path(__file__).resolve().parents[2] / "helm" / "bigk"
ALERTS = CHART.parents[1] / "dashboards" / "alerts.yaml"
MODELS: dict[str, Any] = {
    "Deployment": client.V1Deployment, "DaemonSet": client.V1DaemonSet, "Service": client.V1Service,
    "ServiceAccount": client.V1ServiceAccount, "ClusterRole": client.V1ClusterRole,
    "ClusterRoleBinding": client.V1ClusterRoleBinding, "Role": client.V1Role, "RoleBinding": client.V1RoleBinding,
    "ConfigMap": client.V1ConfigMap, "Secret": client.V1Secret,
    "PersistentVolumeClaim": client.V1PersistentVolumeClaim, "PodDisruptionBudget": client.V1PodDisruptionBudget,
    "ValidatingAdmissionPolicy": client.V1ValidatingAdmissionPolicy,
    "ValidatingAdmissionPolicyBinding": client.V1ValidatingAdmissionPolicyBinding,
}
HA = {"serve": {"replicas": 2}, "state": {"database": {"url": "postgresql+psycopg://bigk:pw@pg:5432/bigk"}}}


@pytest.fixture(scope="module")
def chart() -> Iterator[Any]:
    with helm.Chart.load(str(CHART)) as loaded:
        yield loaded


def render(chart: Any, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    manifests = chart.render(values=values or {}, name="bigk", namespace="bigk-system")
    docs: list[dict[str, Any]] = []
    for path, text in manifests.items():
        if path.endswith(".txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def _diff(src: Any, back: Any, path: str = "") -> list[str]:
    if isinstance(src, dict) and isinstance(back, dict):
        out = []
        for key, value in src.items():
            if key not in back:
                out.append(f"{path}.{key}")
            else:
                out.extend(_diff(value, back[key], f"{path}.{key}"))
        return out
    if isinstance(src, list) and isinstance(back, list) and len(src) == len(back):
        return [d for i, (a, b) in enumerate(zip(src, back, strict=True)) for d in _diff(a, b, f"{path}[{i}]")]
    return [] if src == back else [f"{path}: {src!r} became {back!r}"]


def assert_valid_kubernetes(doc: dict[str, Any]) -> None:
    model = MODELS.get(doc["kind"])
    if model is None:
        assert doc["apiVersion"].startswith("monitoring.coreos.com/"), f"no schema check for {doc['kind']}"
        return
    back = client.ApiClient().sanitize_for_serialization(model.from_dict(doc))
    problems = _diff(doc, back)
    assert not problems, f"{doc['kind']} {doc['metadata']['name']}: fields Kubernetes does not know: {problems}"


def parse_cli(args: list[str]) -> dict[str, Any]:
    """Parse `bigk <args>` with bigk's own Typer/Click definitions, without running anything."""
    group = typer.main.get_command(app)
    command = group.commands[args[0]]  # type: ignore[attr-defined]
    return dict(command.make_context(args[0], list(args[1:]), resilient_parsing=False).params)


@pytest.mark.parametrize("values", [{}, HA, {"metrics": {"serviceMonitor": {"enabled": True},
                                                         "prometheusRule": {"enabled": True},
                                                         "grafanaDashboards": {"enabled": True}},
                                             "jobspecs": {"gitSync": {"enabled": True, "repo": "https://git/x.git"}},
                                             "agent": {"dcgmPrometheusUrl": "http://prometheus:9090"}}],
                         ids=["defaults", "ha", "everything-on"])
def test_every_object_is_valid_kubernetes_and_helm_lint_passes(chart: Any, values: dict[str, Any]) -> None:
    docs = render(chart, values)
    assert {d["kind"] for d in docs} >= {"Deployment", "DaemonSet", "Service", "ClusterRole", "Secret"}
    for doc in docs:
        assert_valid_kubernetes(doc)
    report = helm.lint(str(CHART), values, strict=True)
    assert not report["errors"], report
    assert not [m for m in report["messages"] if m["severity"] >= 2], report["messages"]


def test_serve_and_agent_arguments_are_accepted_by_the_bigk_cli(chart: Any) -> None:
    docs = render(chart, {**HA, "agent": {"interval": 5}})
    serve = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    params = parse_cli(serve)
    assert params["listen"] == "0.0.0.0:8080" and params["kubeconfig"] == "/etc/bigk/kube/kubeconfig"
    agent = one(docs, "DaemonSet")["spec"]["template"]["spec"]["containers"][0]
    params = parse_cli([*agent["args"], "--node", "from-env"])
    assert params["interval"] == 5 and params["metrics_port"] == 9402
    assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in agent["env"]


def test_scheduler_rbac_is_cluster_wide_for_reads_and_namespaced_for_writes(chart: Any) -> None:
    """The exact rights are proven against kube-apiserver's audit log (tests/kube/test_least_privilege.py);
    here: what is cluster-wide and what is confined to a namespace."""
    docs = render(chart)
    role = one(docs, "ClusterRole", "bigk")
    granted = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
               for v in rule["verbs"]}
    for needed in [("", "pods/binding", "create"), ("", "pods/eviction", "create"), ("", "events", "create"),
                   ("", "pods", "watch"), ("", "nodes", "list")]:
        assert needed in granted, needed
    assert not {g for g in granted if g[1] in ("leases", "configmaps", "services", "networkpolicies")
                or (g[1] == "pods" and g[2] == "create")}
    leader = one(docs, "Role", "bigk-leader")
    assert leader["metadata"]["namespace"] == "bigk-system"
    submit = one(docs, "Role", "bigk-submit")
    assert submit["metadata"]["namespace"] == "default"
    assert {"pods", "configmaps", "services", "networkpolicies"} == {r for rule in submit["rules"]
                                                                     for r in rule["resources"]}
    agent_role = one(docs, "ClusterRole", "bigk-agent")
    assert [(r["resources"], r["verbs"]) for r in agent_role["rules"]] == [(["nodes"], ["patch"])]


def test_agent_runs_on_gpu_nodes_with_nvidia_runtime_without_taking_a_gpu(chart: Any) -> None:
    pod = one(render(chart), "DaemonSet")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["runtimeClassName"] == "nvidia"
    container = pod["containers"][0]
    assert "nvidia.com/gpu" not in str(container.get("resources", {}))
    assert {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"} in container["env"]


def test_single_replica_uses_a_pvc_and_ha_uses_the_database_secret(chart: Any) -> None:
    single = render(chart)
    claim = one(single, "PersistentVolumeClaim")["metadata"]["name"]
    deploy = one(single, "Deployment")
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    volumes = {v["name"]: v for v in deploy["spec"]["template"]["spec"]["volumes"]}
    assert volumes["state"]["persistentVolumeClaim"]["claimName"] == claim

    ha = render(chart, HA)
    assert not [d for d in ha if d["kind"] == "PersistentVolumeClaim"]
    deploy = one(ha, "Deployment")
    assert deploy["spec"]["replicas"] == 2 and "strategy" not in deploy["spec"]
    env = deploy["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "BIGK_DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "bigk-database",
                                                                          "key": "database-url"}}} in env
    assert one(ha, "PodDisruptionBudget")["spec"]["minAvailable"] == 1


def test_two_replicas_without_a_database_is_refused_with_a_clear_message(chart: Any) -> None:
    with pytest.raises(helm.HelmError, match="serve.replicas > 1 needs a shared database"):
        render(chart, {"serve": {"replicas": 2}})


def test_token_secret_is_generated_or_taken_from_values(chart: Any) -> None:
    generated = one(render(chart), "Secret", "bigk-token")["data"]["token"]
    assert len(generated) >= 40
    given = one(render(chart, {"auth": {"token": "s3cret"}}), "Secret", "bigk-token")["data"]["token"]
    assert given == "czNjcmV0"  # base64("s3cret")
    docs = render(chart, {"auth": {"existingSecret": "mine"}})
    assert not [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "bigk-token"]
    volumes = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "token", "secret": {"secretName": "mine", "items": [{"key": "token", "path": "token"}]}} in volumes


def test_jobspecs_from_values_become_a_mounted_configmap(chart: Any) -> None:
    spec = "apiVersion: bigk.io/v1\nkind: SparkJob\nmetadata: {name: nightly}\n"
    docs = render(chart, {"jobspecs": {"files": {"nightly.yaml": spec}}})
    assert one(docs, "ConfigMap", "bigk-jobspecs")["data"]["nightly.yaml"] == spec
    volumes = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "jobspecs", "configMap": {"name": "bigk-jobspecs"}} in volumes


def test_git_sync_sidecar_feeds_the_specs_folder(chart: Any) -> None:
    docs = render(chart, {"jobspecs": {"gitSync": {"enabled": True, "repo": "https://git.example/specs.git",
                                                   "path": "teams/etl"}}})
    containers = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["bigk", "git-sync"]
    assert "--specs=/git/current/teams/etl" in containers[0]["args"]
    assert "--repo=https://git.example/specs.git" in containers[1]["args"]


def test_monitoring_objects_carry_bigks_alerts_and_dashboards(chart: Any) -> None:
    docs = render(chart, {"metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True},
                                      "grafanaDashboards": {"enabled": True}}})
    monitor = one(docs, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert one(docs, "PodMonitor")["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    rule = one(docs, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load(ALERTS.read_text())
    dashboards = one(docs, "ConfigMap", "bigk-dashboards")
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert sorted(dashboards["data"]) == ["bigk-gpus.json", "bigk-queues.json", "bigk-runs.json",
                                          "bigk-scheduler.json"]
    assert not [d for d in render(chart) if d["kind"] in ("ServiceMonitor", "PodMonitor", "PrometheusRule")]


def test_spark_drivers_get_an_account_and_role_in_every_namespace_jobs_use(chart: Any) -> None:
    """`bigk render` names spark.kubernetes.authenticate.driver.serviceAccountName=spark; it must exist there."""
    from bigk.spark.submit import DEFAULT_DRIVER_SERVICE_ACCOUNT

    docs = render(chart, {"spark": {"namespaces": ["default", "team-a", "bigk-system"],
                                    "historyServerUrl": "http://history:18080"}})
    for ns in ("default", "team-a", "bigk-system"):
        accounts = [d for d in docs if d["kind"] == "ServiceAccount" and d["metadata"]["namespace"] == ns
                    and d["metadata"]["name"] == DEFAULT_DRIVER_SERVICE_ACCOUNT]
        roles = [d for d in docs if d["kind"] == "Role" and d["metadata"]["namespace"] == ns
                 and d["metadata"]["name"] == DEFAULT_DRIVER_SERVICE_ACCOUNT]
        bindings = [d for d in docs if d["kind"] == "RoleBinding" and d["metadata"]["namespace"] == ns
                    and d["metadata"]["name"] == DEFAULT_DRIVER_SERVICE_ACCOUNT]
        assert len(accounts) == 1 and len(roles) == 1 and len(bindings) == 1, ns
        granted = {(r, v) for rule in roles[0]["rules"] for r in rule["resources"] for v in rule["verbs"]}
        for needed in [("pods", "create"), ("pods", "deletecollection"), ("services", "create"),
                       ("configmaps", "create"), ("persistentvolumeclaims", "create")]:
            assert needed in granted, (ns, needed)
        assert bindings[0]["subjects"] == [{"kind": "ServiceAccount", "name": DEFAULT_DRIVER_SERVICE_ACCOUNT,
                                            "namespace": ns}]
    role = one(docs, "ClusterRole", "bigk")
    granted = {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
    assert ("pods/log", "get") in granted and ("pods/proxy", "get") in granted  # bigk logs, bigk ui
    serve = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in serve["env"]}
    assert env["BIGK_SPARK_HISTORY_URL"] == "http://history:18080"
