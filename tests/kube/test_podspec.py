"""Pod specs read as kube-scheduler reads them: requests (init containers, sidecars, overhead), host ports,
node affinity, claims, and the filters bigk refuses by name."""

from __future__ import annotations

from typing import Any

import pytest

from bigk.cluster.model import HostPort
from bigk.kube.translate import node_from_v1, pod_from_v1
from tests.kube.objects import node_dict, pod_dict, to_model


def _pod(**spec: Any) -> Any:
    data = pod_dict("p", cpu="1", memory="1Gi")
    data["spec"].update(spec)
    return pod_from_v1(to_model(data, "V1Pod"))


def _c(name: str, cpu: str, memory: str = "0", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "x", "resources": {"requests": {"cpu": cpu, "memory": memory}}, **extra}


def test_sidecars_add_to_the_pod_and_run_beside_later_init_containers() -> None:
    # kube-scheduler: containers 1 CPU + sidecar 0.5 = 1.5; the init container after the sidecar runs beside
    # it: 2 + 0.5 = 2.5 > 1.5, so the pod needs 2.5 CPU; overhead comes on top.
    p = _pod(initContainers=[_c("side", "500m", "256Mi", restartPolicy="Always"), _c("setup", "2", "128Mi")],
             overhead={"cpu": "100m", "memory": "64Mi"})
    assert p.request.cpu_milli == 2500 + 100
    assert p.request.memory_mib == 1024 + 256 + 64  # memory: containers + sidecar dominate the init phase


def test_init_container_before_a_sidecar_does_not_run_beside_it() -> None:
    p = _pod(initContainers=[_c("setup", "2"), _c("side", "500m", restartPolicy="Always")])
    assert p.request.cpu_milli == 2000  # max(1 + 0.5, 2) — the sidecar starts after "setup" ends


def test_pod_level_requests_replace_the_containers_sum() -> None:
    p = _pod(resources={"requests": {"cpu": "3", "memory": "2Gi"}})
    assert (p.request.cpu_milli, p.request.memory_mib) == (3000, 2048)


def test_other_resources_become_scalars_in_base_units() -> None:
    data = pod_dict("p")
    data["spec"]["containers"][0]["resources"]["requests"].update(
        {"ephemeral-storage": "1Gi", "example.com/fpga": "2", "hugepages-2Mi": "4Mi"})
    p = pod_from_v1(to_model(data, "V1Pod"))
    assert p.request.scalars == (("ephemeral-storage", 2**30), ("example.com/fpga", 2), ("hugepages-2Mi", 4 * 2**20))
    n = node_from_v1(to_model(node_dict("n"), "V1Node"))
    assert n.scalars == {}
    data = node_dict("n")
    data["status"]["allocatable"]["ephemeral-storage"] = "100Gi"
    assert node_from_v1(to_model(data, "V1Node")).scalars == {"ephemeral-storage": 100 * 2**30}


def test_host_ports_of_containers_and_sidecars_only() -> None:
    main = _c("main", "1", ports=[{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81},
                                  {"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "10.0.0.1"}])
    p = _pod(containers=[main], initContainers=[_c("side", "0", restartPolicy="Always",
                                                   ports=[{"containerPort": 9, "hostPort": 9000}]),
                                                _c("init", "0", ports=[{"containerPort": 7, "hostPort": 7000}])])
    assert set(p.request.host_ports) == {HostPort(8080), HostPort(53, "UDP", "10.0.0.1"), HostPort(9000)}


def test_plain_pods_carry_no_constraints() -> None:
    p = _pod()
    assert p.constraints is None and p.claims == () and p.request.host_ports == () and p.request.scalars == ()


def test_required_node_affinity_every_operator_and_match_fields() -> None:
    terms = [{"matchExpressions": [
        {"key": "zone", "operator": "In", "values": ["a", "b"]},
        {"key": "tier", "operator": "NotIn", "values": ["spot"]},
        {"key": "ssd", "operator": "Exists"},
        {"key": "broken", "operator": "DoesNotExist"},
        {"key": "cores", "operator": "Gt", "values": ["16"]},
        {"key": "age", "operator": "Lt", "values": ["30"]},
    ]}, {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["special"]}]}]
    p = _pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": terms}}})
    c = p.constraints
    assert c is not None and not c.refusal
    good = {"zone": "a", "ssd": "", "cores": "32", "age": "3"}
    assert c.admits("n1", good)
    assert c.admits("special", {})  # the second term: by name only
    for bad in ({**good, "zone": "c"}, {**good, "tier": "spot"}, {k: v for k, v in good.items() if k != "ssd"},
                {**good, "broken": "yes"}, {**good, "cores": "16"}, {**good, "cores": "x"}, {**good, "age": "30"},
                {k: v for k, v in good.items() if k != "cores"}):
        assert not c.admits("n1", bad), bad


def test_an_empty_node_selector_term_matches_nothing() -> None:
    p = _pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{}]}}})
    assert p.constraints is not None and not p.constraints.admits("n", {"a": "b"})


@pytest.mark.parametrize("spec, plugin", [
    ({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"a": "b"}}, "topologyKey": "kubernetes.io/hostname"}]}}},
     "InterPodAffinity"),
    ({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"a": "b"}}, "topologyKey": "kubernetes.io/hostname"}]}}},
     "InterPodAffinity"),
    ({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                                     "labelSelector": {"matchLabels": {"a": "b"}}}]}, "PodTopologySpread"),
    ({"resourceClaims": [{"name": "gpu", "resourceClaimName": "c"}]}, "DynamicResources"),
    ({"volumes": [{"name": "d", "awsElasticBlockStore": {"volumeID": "vol-1"}}]}, "NodeVolumeLimits"),
])
def test_unimplemented_filters_refuse_the_pod_by_plugin_name(spec: dict[str, Any], plugin: str) -> None:
    p = _pod(**spec)
    assert p.constraints is not None
    assert p.constraints.refusal.startswith(plugin), p.constraints.refusal
    assert not p.constraints.admits("n", {})


def test_score_only_features_are_not_refusals() -> None:
    p = _pod(topologySpreadConstraints=[{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
                                         "labelSelector": {}}],
             affinity={"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                 {"weight": 1, "podAffinityTerm": {"labelSelector": {}, "topologyKey": "zone"}}]}})
    assert p.constraints is None


def test_claims_include_generic_ephemeral_volumes() -> None:
    p = _pod(volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "spark-pvc-1"}},
                      {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
                      {"name": "tmp", "emptyDir": {}}])
    assert p.claims == ("spark-pvc-1", "p-scratch")
