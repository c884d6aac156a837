"""The Helm chart applied to a real kube-apiserver: server-side apply, real schema validation and admission.

The chart is rendered by Helm's own engine (helm-python-sdk), with default values and with every
optional feature on, and each object is server-side applied (field manager `helm`) in a fresh
namespace. The Prometheus Operator's objects are checked against its published CRDs, taken from
the `github.com/prometheus-operator/prometheus-operator` Go module (testenv/crds.py). An object the
server rejects, or a field it prunes or defaults differently from what the chart wrote, fails.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, dynamic
from kubernetes.client.exceptions import ApiException

from testenv.crds import install_prometheus_operator_crds
from tests.kube.harness import unique
from tests.observability.test_helm_chart import CHART, helm
from tests.realk8s import RealCluster

pytestmark = [pytest.mark.cluster]

EVERYTHING: dict[str, Any] = {
    "serve": {"replicas": 2},
    "state": {"database": {"url": "postgresql+psycopg://bigk:pw@pg:5432/bigk"}},
    "metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True},
                "grafanaDashboards": {"enabled": True}},
    "jobspecs": {"gitSync": {"enabled": True, "repo": "https://git.example/specs.git"}},
    "agent": {"dcgmPrometheusUrl": "http://prometheus:9090"},
}


@pytest.fixture(scope="module")
def chart() -> Iterator[Any]:
    with helm.Chart.load(str(CHART)) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def dyn(control_plane: RealCluster) -> dynamic.DynamicClient:
    api = control_plane.api()
    install_prometheus_operator_crds(api)
    return dynamic.DynamicClient(api)


def _render(chart: Any, values: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    import yaml

    docs: list[dict[str, Any]] = []
    for path, text in chart.render(values=values, name="bigk", namespace=namespace).items():
        if not path.endswith(".txt"):
            docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def _subset_differences(wrote: Any, got: Any, path: str = "") -> list[str]:
    """Where the object the server holds lost or changed something the chart wrote."""
    if isinstance(wrote, dict):
        if not isinstance(got, dict):
            return [f"{path}: wrote a map, server has {type(got).__name__}"]
        out: list[str] = []
        for key, value in wrote.items():
            if value in (None, {}, []) and key not in got:
                continue  # empty values are dropped by the server, as by kubectl
            if key not in got:
                out.append(f"{path}.{key}: pruned by the server")
                continue
            out.extend(_subset_differences(value, got[key], f"{path}.{key}"))
        return out
    if isinstance(wrote, list):
        if not isinstance(got, list) or len(got) != len(wrote):
            return [f"{path}: list changed ({len(wrote)} written)"]
        return [d for i, (w, g) in enumerate(zip(wrote, got, strict=True))
                for d in _subset_differences(w, g, f"{path}[{i}]")]
    if str(wrote) != str(got) and not _same_quantity(wrote, got):
        return [f"{path}: wrote {wrote!r}, server has {got!r}"]
    return []


def _same_quantity(a: Any, b: Any) -> bool:
    from kubernetes.utils import parse_quantity

    try:
        return bool(parse_quantity(str(a)) == parse_quantity(str(b)))
    except (ValueError, TypeError):
        return False


@pytest.mark.parametrize("values", [{}, EVERYTHING], ids=["defaults", "everything-on"])
def test_the_rendered_chart_is_accepted_and_kept_as_written(chart: Any, dyn: dynamic.DynamicClient,
                                                            values: dict[str, Any]) -> None:
    namespace = unique("bigk-helm")
    core = client.CoreV1Api(dyn.client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    docs = _render(chart, values, namespace)
    assert {d["kind"] for d in docs} >= {"Deployment", "DaemonSet", "Service", "ServiceAccount", "ClusterRole"}
    applied: list[tuple[Any, dict[str, Any]]] = []
    try:
        for doc in docs:
            resource = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
            ns = doc["metadata"].get("namespace", namespace) if resource.namespaced else None
            if ns and ns != namespace:  # a namespace the chart serves Spark jobs in
                with contextlib.suppress(ApiException):
                    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
            try:
                resource.server_side_apply(body=doc, namespace=ns, field_manager="helm", force_conflicts=True)
            except ApiException as exc:
                pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} refused by kube-apiserver: {exc.body}")
            applied.append((resource, doc))
        problems: list[str] = []
        for resource, doc in applied:
            ns = doc["metadata"].get("namespace", namespace) if resource.namespaced else None
            got = resource.get(name=doc["metadata"]["name"], namespace=ns).to_dict()
            for part in ("metadata", "spec", "data", "rules", "roleRef", "subjects", "stringData"):
                if part == "metadata":
                    wrote = {k: v for k, v in doc["metadata"].items() if k in ("labels", "annotations")}
                else:
                    wrote = doc.get(part)
                if part == "stringData" or wrote is None:
                    continue
                problems += [f"{doc['kind']}/{doc['metadata']['name']}{d}"
                             for d in _subset_differences(wrote, got.get(part), "")]
        assert problems == []
        if values is EVERYTHING:
            kinds = {d["kind"] for d in docs}
            assert {"ServiceMonitor", "PodMonitor", "PrometheusRule"} <= kinds
    finally:
        for resource, doc in applied:
            if resource.namespaced and doc["metadata"].get("namespace", namespace) != namespace:
                with contextlib.suppress(ApiException):
                    resource.delete(name=doc["metadata"]["name"], namespace=doc["metadata"]["namespace"])
            if not resource.namespaced:
                with contextlib.suppress(ApiException):
                    resource.delete(name=doc["metadata"]["name"])
        core.delete_namespace(namespace)
