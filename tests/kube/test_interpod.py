"""Running pods' required anti-affinity keeps bigk's pods out of their topology domains (InterPodAffinity)."""

from __future__ import annotations

from typing import Any

from bigk.cluster.model import Node, Pod, PodRequest
from bigk.kube.interpod import REASON_EXISTING_ANTI_AFFINITY, anti_affinity_terms, avoid_existing
from tests.kube.objects import pod_dict, to_model


def _running(terms: list[dict[str, Any]], namespace: str = "default") -> Any:
    data = pod_dict("holder", namespace=namespace, node="a", phase="Running")
    data["spec"]["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": terms}}
    return anti_affinity_terms(to_model(data, "V1Pod"))


NODES = [Node("a", 1000, 1000, labels={"zone": "z1", "kubernetes.io/hostname": "a"}),
         Node("b", 1000, 1000, labels={"zone": "z1", "kubernetes.io/hostname": "b"}),
         Node("c", 1000, 1000, labels={"zone": "z2", "kubernetes.io/hostname": "c"}),
         Node("d", 1000, 1000, labels={})]


def _clauses(terms: Any, labels: dict[str, str], namespace: str = "default") -> Any:
    holder = Pod("holder", PodRequest(0, 0), node="a")
    pending = Pod("p", PodRequest(0, 0), namespace=namespace)
    return avoid_existing([(pending, labels)], [(holder, terms)], NODES).get(pending.key)


def test_matching_pods_are_kept_out_of_the_running_pods_zone() -> None:
    terms = _running([{"labelSelector": {"matchLabels": {"app": "etl"}}, "topologyKey": "zone"}])
    clause = _clauses(terms, {"app": "etl", "x": "y"})
    assert clause is not None and clause.reason == REASON_EXISTING_ANTI_AFFINITY
    assert [n.name for n in NODES if clause.matches(n.name, n.labels)] == ["c", "d"]  # no zone label: allowed
    assert _clauses(terms, {"app": "web"}) is None


def test_namespaces_and_expressions() -> None:
    terms = _running([{"labelSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["db"]}]},
                       "topologyKey": "kubernetes.io/hostname"}], namespace="prod")
    assert _clauses(terms, {"tier": "db"}, namespace="dev") is None  # the holder's own namespace only
    clause = _clauses(terms, {"tier": "db"}, namespace="prod")
    assert clause is not None and not clause.matches("a", NODES[0].labels) and clause.matches("b", NODES[1].labels)
    everywhere = _running([{"labelSelector": {}, "topologyKey": "zone", "namespaceSelector": {}}])
    assert _clauses(everywhere, {}, namespace="other") is not None  # empty selector: every pod, every namespace
