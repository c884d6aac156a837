"""Pure pieces of the emulator: selectors, patches, Java properties, Spark time strings, path parsing."""

from __future__ import annotations

import pytest

from bigk.emulator.errors import ApiError
from bigk.emulator.patches import apply_patch, json_patch, merge_patch, strategic_merge_patch
from bigk.emulator.selection import field_matcher, label_matcher
from bigk.emulator.server import parse_path
from bigk.emulator.sparkconf import executor_memory_mib, parse_properties, parse_time_seconds


def obj(labels: dict[str, str], **fields: object) -> dict:
    return {"metadata": {"name": "x", "labels": labels}, **fields}


def test_label_selector_operators() -> None:
    match = label_matcher("env in (prod, staging),tier!=db,!canary,team")
    assert match is not None
    assert match(obj({"env": "prod", "tier": "web", "team": "a"}))
    assert not match(obj({"env": "dev", "tier": "web", "team": "a"}))
    assert not match(obj({"env": "prod", "tier": "db", "team": "a"}))
    assert not match(obj({"env": "prod", "team": "a", "canary": "1"}))
    assert not match(obj({"env": "prod"}))
    assert label_matcher("") is None
    with pytest.raises(ApiError):
        label_matcher("a b c")


def test_field_selector_compares_missing_fields_as_empty() -> None:
    unbound = field_matcher("spec.nodeName=")
    assert unbound is not None
    assert unbound(obj({}, spec={}))
    assert not unbound(obj({}, spec={"nodeName": "n1"}))
    flag = field_matcher("spec.unschedulable!=true")
    assert flag is not None and flag(obj({}, spec={})) and not flag(obj({}, spec={"unschedulable": True}))


def test_merge_patch_deletes_with_null() -> None:
    assert merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": None}, "e": [1]}) == {"a": 1, "b": {"d": 3},
                                                                                        "e": [1]}


def test_strategic_merge_merges_keyed_lists_and_honours_directives() -> None:
    current = {"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled",
                                                                               "status": "True"}]},
               "spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}],
                        "tolerations": [{"key": "x"}]}}
    patch = {"status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]},
             "spec": {"containers": [{"name": "b", "image": "2"}, {"name": "a", "$patch": "delete"}],
                      "tolerations": [{"key": "y"}], "$setElementOrder/containers": [{"name": "b"}]}}
    result = strategic_merge_patch(current, patch)
    assert result["status"]["conditions"] == [{"type": "Ready", "status": "True"},
                                              {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]
    assert result["spec"]["containers"] == [{"name": "b", "image": "2"}]
    assert result["spec"]["tolerations"] == [{"key": "y"}]  # lists without a merge key are replaced
    assert current["spec"]["containers"][1]["image"] == "1"  # the input is never modified


def test_json_patch_operations() -> None:
    doc = {"spec": {"gates": [{"name": "a"}, {"name": "b"}]}, "metadata": {"labels": {"x": "1"}}}
    result = json_patch(doc, [
        {"op": "remove", "path": "/spec/gates/0"},
        {"op": "add", "path": "/metadata/labels/a~1b", "value": "2"},
        {"op": "replace", "path": "/metadata/labels/x", "value": "3"},
        {"op": "test", "path": "/metadata/labels/x", "value": "3"},
        {"op": "copy", "from": "/metadata/labels/x", "path": "/metadata/labels/y"},
    ])
    assert result == {"spec": {"gates": [{"name": "b"}]}, "metadata": {"labels": {"x": "3", "a/b": "2", "y": "3"}}}
    with pytest.raises(ApiError) as err:
        json_patch(doc, [{"op": "test", "path": "/metadata/labels/x", "value": "nope"}])
    assert err.value.code == 422
    with pytest.raises(ApiError) as err:
        apply_patch(doc, {"a": 1}, "text/plain")
    assert err.value.code == 415


def test_java_properties_as_spark_writes_them() -> None:
    text = ("#Java properties built from Kubernetes config map\n#Wed Nov 25 16:38:21 UTC 2026\n"
            "spark.master=k8s\\://http\\://127.0.0.1\\:6443\nspark.submit.pyFiles=\n"
            "spark.app.name=caf\\u00e9 report\nspaced = value with spaces\ncontinued=one\\\n    two\n")
    assert parse_properties(text) == {
        "spark.master": "k8s://http://127.0.0.1:6443",
        "spark.submit.pyFiles": "",
        "spark.app.name": "café report",
        "spaced": "value with spaces",
        "continued": "onetwo",
    }


def test_spark_time_and_memory() -> None:
    assert parse_time_seconds("1s") == 1.0
    assert parse_time_seconds("250ms") == 0.25
    assert parse_time_seconds("2min") == 120.0
    assert parse_time_seconds("500") == 0.5  # a bare number is milliseconds for batch.delay
    assert executor_memory_mib({"spark.executor.memory": "8g"}) == 8192 + 819
    assert executor_memory_mib({"spark.executor.memory": "1g"}) == 1024 + 384
    assert executor_memory_mib({"spark.executor.memory": "1g", "spark.kubernetes.memoryOverheadFactor": "0.4"}) == 1433
    assert executor_memory_mib({"spark.executor.memory": "2g", "spark.executor.memoryOverhead": "1g"}) == 3072


def test_rest_paths() -> None:
    t = parse_path("/api/v1/namespaces/ns1/pods/p/binding")
    assert t is not None and (t.rt.plural, t.namespace, t.name, t.subresource) == ("pods", "ns1", "p", "binding")
    t = parse_path("/api/v1/namespaces/ns1")
    assert t is not None and (t.rt.plural, t.namespace, t.name) == ("namespaces", None, "ns1")
    t = parse_path("/api/v1/namespaces/ns1/status")
    assert t is not None and (t.rt.plural, t.name, t.subresource) == ("namespaces", "ns1", "status")
    t = parse_path("/apis/coordination.k8s.io/v1/watch/namespaces/kube-system/leases")
    assert t is not None and t.watch and t.rt.kind == "Lease" and t.namespace == "kube-system"
    assert parse_path("/api/v1/namespaces/ns1/widgets") is None
    assert parse_path("/api/v1/nodes/n1/binding") is None
    assert parse_path("/api/v1/namespaces/ns1/nodes") is None
