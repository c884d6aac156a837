"""The chart's `queues` values: a ConfigMap of Queue documents that `bigk serve --queues` reads, and nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bigk.spec.loader import load_specs
from tests.observability.test_helm_chart import CHART, chart, helm, one, parse_cli, render  # noqa: F401

QUEUES = [{"name": "ml", "spec": {"weight": 2, "guarantee": {"cpu": 96, "memory": "512Gi", "gpu": 16}}},
          {"name": "ml.training", "spec": {"guarantee": {"gpu": 10}, "priority": {"default": 20, "max": 100}}},
          {"name": "adhoc", "spec": {"max": {"gpu": 4, "gpuByModel": {"A100": 2}}}}]


def test_queue_values_become_the_only_queue_source_of_serve(chart: Any, tmp_path: Path) -> None:  # noqa: F811
    docs = render(chart, {"queues": QUEUES})
    text = one(docs, "ConfigMap", "bigk-queues")["data"]["queues.yaml"]
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    serve = pod["containers"][0]
    assert parse_cli(serve["args"])["queues"] == Path("/etc/bigk/queues/queues.yaml")
    assert {"name": "queues", "mountPath": "/etc/bigk/queues", "readOnly": True} in serve["volumeMounts"]
    assert {"name": "queues", "configMap": {"name": "bigk-queues"}} in pod["volumes"]
    (tmp_path / "queues.yaml").write_text(text)  # what bigk reads from the mounted file
    (tmp_path / "specs").mkdir()
    result = load_specs([tmp_path / "specs"], queues_from=[tmp_path / "queues.yaml"])
    assert [str(p) for p in result.problems] == []
    core = result.queues.to_core()
    assert sorted(core) == ["adhoc", "ml", "ml.training"] and core["ml.training"].parent == "ml"
    assert core["ml"].guaranteed == {"cpu": 96000, "memory": 512 * 1024, "gpu": 16000}
    assert core["adhoc"].maximum_models == {"A100": 2000}  # per-model quotas pass through the values as written
    report = helm.lint(str(CHART), {"queues": QUEUES}, strict=True)
    assert not report["errors"], report


def test_without_queue_values_the_spec_folder_declares_them(chart: Any) -> None:  # noqa: F811
    docs = render(chart)
    assert not [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "bigk-queues"]
    serve = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert parse_cli(serve["args"])["queues"] is None
