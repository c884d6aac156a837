"""The core honours what kube-scheduler's filters enforce: node affinity, taint effects, host ports, other
resources, CSI attach limits, volume topology and refusals — and says which one held a pod back."""

from __future__ import annotations

from dataclasses import replace

from bigk.cluster.affinity import REASON_VOLUME_AFFINITY, Clause, PodConstraints, Requirement, Term, pin_to_node
from bigk.cluster.model import HostPort, Node, Pod, PodRequest, Taint, Toleration
from bigk.cluster.state import ATTACH_PREFIX
from bigk.scheduler import Scheduler, Snapshot


def _node(name: str, labels: dict[str, str] | None = None, taints: list[Taint] | None = None,
          scalars: dict[str, int] | None = None, cpu: int = 8000) -> Node:
    return Node(name, cpu, 32_000, 110, labels=dict(labels or {}), taints=list(taints or []),
                scalars=dict(scalars or {}))


def _pod(name: str, cpu: int = 1000, **kw: object) -> Pod:
    request = kw.pop("request", None) or PodRequest(cpu, 512)
    return Pod(name, request, **kw)  # type: ignore[arg-type]


def _affinity(*reqs: Requirement) -> PodConstraints:
    return PodConstraints((Clause((Term(reqs),)),))


def _cycle(nodes: list[Node], pods: list[Pod]) -> tuple[dict[str, str], dict[str, str]]:
    result = Scheduler("binpack").cycle(Snapshot(nodes, pods), 0.0)
    return {b.pod_key.split("/")[1]: b.node for b in result.binds}, {
        k.split("/")[1]: e.message for k, e in result.waiting.items()}


def test_required_node_affinity_picks_the_matching_node_and_explains_a_miss() -> None:
    nodes = [_node("a", {"zone": "z1"}), _node("b", {"zone": "z2", "cores": "64"})]
    binds, waiting = _cycle(nodes, [
        _pod("in", constraints=_affinity(Requirement("zone", "In", ("z2",)))),
        _pod("gt", constraints=_affinity(Requirement("cores", "Gt", ("32",)))),
        _pod("name", constraints=PodConstraints((pin_to_node("a", "node affinity mismatch"),))),
        _pod("none", constraints=_affinity(Requirement("zone", "In", ("z9",)))),
    ])
    assert binds == {"in": "b", "gt": "b", "name": "a"}
    assert "2 node affinity mismatch" in waiting["none"] and "no node could ever hold it" in waiting["none"]


def test_taint_effects_noschedule_and_noexecute_filter_prefernoschedule_only_scores() -> None:
    nodes = [_node("hard", taints=[Taint("k", "v", "NoSchedule")]), _node("exec", taints=[Taint("x", "", "NoExecute")]),
             _node("soft", taints=[Taint("s", "", "PreferNoSchedule")], cpu=1000)]
    binds, _ = _cycle(nodes, [_pod("a")])
    assert binds == {"a": "soft"}  # the only node it may use, despite the preference
    nodes.append(_node("clean", cpu=1000))
    binds, _ = _cycle(nodes, [_pod("b")])
    assert binds == {"b": "clean"}  # PreferNoSchedule: used last
    tol = [Toleration("x", "Exists", effect="NoExecute")]
    binds, _ = _cycle(nodes[:2], [_pod("c", tolerations=tol)])
    assert binds == {"c": "exec"}  # tolerationSeconds does not matter for scheduling
    binds, waiting = _cycle(nodes[:2], [_pod("d", tolerations=[Toleration("k", "Equal", "other")])])
    assert binds == {} and "2 untolerated taint" in waiting["d"]
    binds, _ = _cycle(nodes[:2], [_pod("e", tolerations=[Toleration(operator="Exists")])])
    assert set(binds) == {"e"}  # empty key + Exists tolerates everything


def test_host_ports_conflict_per_node_protocol_and_address() -> None:
    nodes = [_node("a"), _node("b")]
    web = PodRequest(100, 64, host_ports=(HostPort(8080),))
    binds, waiting = _cycle(nodes, [_pod(f"w{i}", request=web) for i in range(3)])
    assert sorted(binds.values()) == ["a", "b"]
    assert "2 host port conflict" in next(iter(waiting.values()))
    # different protocol, or two specific addresses, do not conflict; 0.0.0.0 conflicts with any address
    bound = [_pod("held", request=PodRequest(100, 64, host_ports=(HostPort(53, "UDP", "10.0.0.1"),)), node="a")]
    ok = [_pod("tcp", request=PodRequest(100, 64, host_ports=(HostPort(53, "TCP"),)),
               constraints=PodConstraints((pin_to_node("a"),))),
          _pod("other-ip", request=PodRequest(100, 64, host_ports=(HostPort(53, "UDP", "10.0.0.2"),)),
               constraints=PodConstraints((pin_to_node("a"),))),
          _pod("any-ip", request=PodRequest(100, 64, host_ports=(HostPort(53, "UDP"),)),
               constraints=PodConstraints((pin_to_node("a"),)))]
    binds, waiting = _cycle(nodes, bound + ok)
    assert set(binds) == {"tcp", "other-ip"} and "any-ip" in waiting


def test_other_resources_and_csi_attach_limits() -> None:
    driver = ATTACH_PREFIX + "ebs.csi.aws.com"
    nodes = [_node("a", scalars={"ephemeral-storage": 10 << 30, driver: 1}), _node("b")]
    disk = PodRequest(100, 64, scalars=(("ephemeral-storage", 6 << 30),))
    binds, waiting = _cycle(nodes, [_pod("d1", request=disk), _pod("d2", request=disk)])
    assert binds == {"d1": "a"}  # b advertises no ephemeral-storage: it has none
    assert "2 insufficient ephemeral-storage" in waiting["d2"]
    vol = PodRequest(100, 64, scalars=((driver, 1),))
    pin_a = PodConstraints((pin_to_node("a"),))
    binds, waiting = _cycle(nodes, [_pod("v1", request=vol, constraints=pin_a),
                                    _pod("v2", request=vol, constraints=pin_a), _pod("v3", request=vol)])
    assert binds["v1"] == "a" and binds["v3"] == "b"  # b publishes no limit for the driver: no limit
    assert "too many volumes" in waiting["v2"]


def test_a_refusal_names_the_plugin_and_no_node_takes_the_pod() -> None:
    refusal = 'VolumeBinding: persistentvolumeclaim "data" not found'
    binds, waiting = _cycle([_node("a")], [_pod("p", constraints=PodConstraints(refusal=refusal))])
    assert binds == {} and refusal in waiting["p"]


def test_volume_clauses_are_counted_under_their_reason() -> None:
    pv = Clause((Term((Requirement("zone", "In", ("z1",)),)),), REASON_VOLUME_AFFINITY)
    nodes = [_node("a", {"zone": "z2"}), _node("b", {"zone": "z2"})]
    _, waiting = _cycle(nodes, [_pod("p", constraints=PodConstraints((pv,)))])
    assert f"2 {REASON_VOLUME_AFFINITY}" in waiting["p"]


def test_pods_with_equal_constraints_share_one_mask() -> None:
    c1 = _affinity(Requirement("zone", "In", ("z1",)))
    c2 = replace(c1)
    assert c1 == c2 and hash(c1) == hash(c2) and c1 is not c2
