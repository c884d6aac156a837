"""`kind: Clusters` / `kind: Cluster` documents and a job's `clusters` / `clusterSelector` (issue 18)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bigk.cluster.config import ClusterFileError
from bigk.spec.clusters import load_clusters
from bigk.spec.loader import load_specs

ROOT = Path(__file__).resolve().parents[2]
SHAPE = "pools:\n  - {name: gpu, count: 2, cpu: '16', memory: 64Gi, gpu: {model: NVIDIA-L4, count: 4}}\n"


def _job(name: str, extra: str = "") -> str:
    return (f"apiVersion: bigk.io/v1\nkind: SparkJob\nmetadata:\n  name: {name}\nspec:\n  type: Python\n"
            f"  mainApplicationFile: local:///opt/app.py\n{textwrap.indent(textwrap.dedent(extra), '  ')}")


def _clusters(body: str) -> str:
    return "apiVersion: bigk.io/v1\nkind: Clusters\nspec:\n  clusters:\n" + textwrap.indent(textwrap.dedent(body),
                                                                                           "    ")


def _repo(tmp_path: Path, **files: str) -> Path:
    (tmp_path / "shape.yaml").write_text(SHAPE)
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    return tmp_path


def test_the_shipped_clusters_file_loads_with_its_shapes() -> None:
    clusters = load_clusters(ROOT / "jobspecs" / "clusters" / "clusters.yaml")
    assert clusters.names() == ["cloud-h100", "cloud-l4", "onprem"]
    onprem, h100, l4 = (clusters.clusters[n] for n in ("onprem", "cloud-h100", "cloud-l4"))
    assert len(onprem.nodes) == 8 and sum(len(n.gpus) for n in onprem.nodes) == 24
    assert {n.gpu_model for n in h100.nodes if n.gpus} == {"NVIDIA-H100-80GB-HBM3"}
    assert {n.gpu_model for n in l4.nodes if n.gpus} == {"NVIDIA-L4"}
    assert (onprem.cost_tier, l4.cost_tier, h100.cost_tier) == (0, 1, 2)
    assert h100.labels == {"region": "eu-west", "cloud": "aws"}
    assert h100.queue_limits() == {"adhoc": {"gpu": 0}}


def test_the_spec_repo_with_its_clusters_still_loads_every_job() -> None:
    result = load_specs([ROOT / "jobspecs"])
    assert result.ok, [str(p) for p in result.problems]
    assert result.clusters.names() == ["cloud-h100", "cloud-l4", "onprem"]
    assert len(result.jobs) >= 5


def test_single_cluster_documents_and_a_real_connection(tmp_path: Path) -> None:
    text = ("apiVersion: bigk.io/v1\nkind: Cluster\nmetadata:\n  name: lab\n  labels: {region: x}\n"
            "spec:\n  embedded: shape.yaml\n---\n"
            "apiVersion: bigk.io/v1\nkind: Cluster\nmetadata:\n  name: prod\nspec:\n  kubeconfig: /k/config\n"
            "  context: prod\n  costTier: 3\n  cordoned: true\n")
    result = load_specs([_repo(tmp_path, clusters=text)])
    assert result.ok, [str(p) for p in result.problems]
    lab, prod = result.clusters.clusters["lab"], result.clusters.clusters["prod"]
    assert len(lab.nodes) == 2 and lab.labels == {"region": "x"}
    assert prod.nodes == [] and prod.body.context == "prod" and prod.body.cordoned and prod.cost_tier == 3


@pytest.mark.parametrize(("body", "where", "message"), [
    ("- name: a\n  embedded: shape.yaml\n  kubeconfig: /k\n", "spec.clusters[0].embedded", "not both"),
    ("- name: a\n  labels: {x: y}\n", "spec.clusters[0]", "needs a connection"),
    ("- name: a\n  embeded: shape.yaml\n", "spec.clusters[0].embeded", "did you mean 'embedded'"),
    ("- name: a\n  embedded: missing.yaml\n", "spec.clusters[0].embedded", "no cluster file 'missing.yaml'"),
    ("- name: A_b\n  embedded: shape.yaml\n", "spec.clusters[0].name", "not a valid name"),
    ("- name: a\n  embedded: shape.yaml\n- name: a\n  server: https://x\n", "spec.clusters[1].name", "twice"),
    ("- name: a\n  server: ftp://x\n", "spec.clusters[0].server", "not an http(s) URL"),
    ("- name: a\n  embedded: shape.yaml\n  costTier: -1\n", "spec.clusters[0].costTier", "greater than or equal"),
    ("- name: a\n  embedded: shape.yaml\n  queues: {ml: {max: {gpus: 2}}}\n", "spec.clusters[0].queues.ml.max.gpus",
     "unknown field 'gpus'"),
])
def test_bad_clusters_name_file_line_and_field(tmp_path: Path, body: str, where: str, message: str) -> None:
    result = load_specs([_repo(tmp_path, clusters=_clusters(body), job=_job("j"))])
    assert not result.ok
    problem = result.problems[0]
    assert problem.file.name == "clusters.yaml" and problem.field == where and message in problem.message
    assert problem.line >= 5  # inside the list, not the document's first line
    assert "j" in result.jobs  # another file's jobs still load
    assert result.clusters_failed and not result.clusters


def test_a_broken_shape_file_is_reported_at_embedded(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("pools:\n  - {name: x, count: 1, cpu: '1', memory: lots}\n")
    result = load_specs([_repo(tmp_path, clusters=_clusters("- name: a\n  embedded: bad.yaml\n"))])
    [problem] = result.problems
    assert (problem.line, problem.field) == (6, "spec.clusters[0].embedded")
    assert "bad.yaml" in problem.message and "invalid quantity 'lots'" in problem.message


def test_a_cluster_declared_in_two_files_is_refused(tmp_path: Path) -> None:
    one = _clusters("- name: a\n  embedded: shape.yaml\n")
    two = "apiVersion: bigk.io/v1\nkind: Cluster\nmetadata:\n  name: a\nspec:\n  server: https://x\n"
    result = load_specs([_repo(tmp_path, one=one, two=two)])
    [problem] = result.problems
    assert problem.file.name == "two.yaml" and problem.field == "metadata.name" and "already declared" in \
        problem.message


def test_job_cluster_fields_are_checked(tmp_path: Path) -> None:
    clusters = _clusters("- name: onprem\n  embedded: shape.yaml\n- name: cloud\n  server: https://x\n")
    good = _job("good", "clusters: [cloud, onprem]\nclusterSelector:\n  matchLabels: {region: eu}\n"
                "  matchExpressions:\n    - {key: cloud, operator: In, values: [aws, gcp]}\n")
    unknown = _job("unknown", "clusters: [onprem, mars]\n")
    result = load_specs([_repo(tmp_path, clusters=clusters, good=good, unknown=unknown)])
    assert sorted(result.jobs) == ["good"]
    spec = result.jobs["good"].spec.spec
    assert spec.clusters == ["cloud", "onprem"]
    assert spec.clusterSelector is not None and spec.clusterSelector.matchLabels == {"region": "eu"}
    [problem] = result.problems
    assert problem.file.name == "unknown.yaml" and problem.field == "spec.clusters[1]"
    assert (problem.line, problem.col) == (8, 22) and "unknown cluster 'mars'; declared: cloud, onprem" in \
        problem.message


@pytest.mark.parametrize(("extra", "where", "message"), [
    ("clusters: [a, a]\n", "spec.clusters", "listed twice"),
    ("clusters: [Not_A_Name]\n", "spec.clusters[0]", "not a valid name"),
    ("clusterSelector: {matchExpressions: [{key: cloud, operator: In}]}\n",
     "spec.clusterSelector.matchExpressions[0].values", "needs values"),
    ("clusterSelector: {matchExpressions: [{key: cloud, operator: Exists, values: [x]}]}\n",
     "spec.clusterSelector.matchExpressions[0].values", "takes no values"),
    ("clusterSelector: {matchLabel: {a: b}}\n", "spec.clusterSelector.matchLabel", "did you mean 'matchLabels'"),
])
def test_bad_job_cluster_fields(tmp_path: Path, extra: str, where: str, message: str) -> None:
    result = load_specs([_repo(tmp_path, job=_job("j", extra))])
    [problem] = result.problems
    assert problem.field == where and message in problem.message


def test_job_cluster_names_are_not_checked_without_declared_clusters(tmp_path: Path) -> None:
    result = load_specs([_repo(tmp_path, job=_job("j", "clusters: [anywhere]\n"))])
    assert result.ok and "j" in result.jobs


def test_load_clusters_alone_raises_one_positioned_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(_clusters("- name: a\n  kubeconfig: /k\n  embedded: shape.yaml\n"))
    with pytest.raises(ClusterFileError, match=r"c\.yaml:\d+:\d+: spec\.clusters\[0\]\.embedded: .*not both"):
        load_clusters(path)
    path.write_text(_job("j"))
    with pytest.raises(ClusterFileError, match="kind: expected"):
        load_clusters(path)


def test_a_jobs_cluster_fields_become_the_dispatchers_rule(tmp_path: Path) -> None:
    from bigk.spec.clusters import cluster_rule

    job = _job("j", "clusters: [b, a]\nclusterSelector:\n  matchLabels: {region: eu}\n"
               "  matchExpressions: [{key: cloud, operator: Exists}]\n")
    result = load_specs([_repo(tmp_path, job=job)])
    rule = cluster_rule(result.jobs["j"].spec)
    assert rule.names == ("b", "a") and rule.rank("a") == 1 and rule.rank("zz") == 2
    assert rule.refusal("a", {"region": "eu", "cloud": "aws"}) == ""
    assert rule.refusal("a", {"region": "eu"}) == "clusterSelector requirement cloud does not hold"
    assert rule.refusal("c", {"region": "eu", "cloud": "aws"}) == "not in the job's clusters (b, a)"
    plain = load_specs([_repo(tmp_path, job=_job("j"))])
    assert cluster_rule(plain.jobs["j"].spec).refusal("any", {}) == ""


def test_the_json_schema_checks_clusters_documents() -> None:
    import jsonschema
    import yaml

    from bigk.spec.schema import json_schema

    validator = jsonschema.Draft202012Validator(json_schema())
    listed = yaml.safe_load((ROOT / "jobspecs" / "clusters" / "clusters.yaml").read_text())
    assert not list(validator.iter_errors(listed))
    single = {"apiVersion": "bigk.io/v1", "kind": "Cluster", "metadata": {"name": "lab"},
              "spec": {"embedded": "x.yaml", "costTier": 1}}
    assert not list(validator.iter_errors(single))
    listed["spec"]["clusters"][0]["costTeir"] = 1
    assert list(validator.iter_errors(listed))
    assert list(validator.iter_errors({**single, "spec": {"embeded": "x.yaml"}}))


def test_the_example_jobs_dispatched_over_the_example_clusters() -> None:
    """Every shipped job goes on-premises (cheapest, fits); with it cordoned, to the cloud that can hold it."""
    from bigk.cluster.state import ClusterState
    from bigk.scheduler.dispatch import ClusterView, dispatch
    from bigk.spec.clusters import cluster_rule, dispatch_items
    from bigk.spec.gang import gang_for

    jobs = load_specs([ROOT / "jobspecs"]).jobs
    clusters = load_clusters(ROOT / "jobspecs" / "clusters" / "clusters.yaml").clusters.values()

    def where(cordon: str) -> dict[str, str | None]:
        out = {}
        for name, job in jobs.items():
            gang = gang_for(job.spec, "r1")
            views = [ClusterView(c.name, ClusterState(c.nodes), c.labels, c.cost_tier, cordoned=c.name == cordon,
                                 queue_limits=c.queue_limits()) for c in clusters]
            out[name] = dispatch(gang, views, cluster_rule(job.spec), items=dispatch_items(job.spec, gang)).cluster
        return out

    features = jobs["gpu-features"].spec
    driver, executor, *_ = dispatch_items(features, gang_for(features, "r1"))
    assert not driver.request.is_gpu and executor.request.is_gpu
    assert all(t.key != "nvidia.com/gpu" for t in driver.tolerations)  # the driver keeps its own tolerations
    assert any(t.key == "nvidia.com/gpu" for t in executor.tolerations)
    assert set(where("").values()) == {"onprem"}
    burst = where("onprem")
    assert burst["gpu-scoring"] == "cloud-l4"  # GPU shares: only where bigk shares GPUs (L4), not the H100s
    assert burst["nightly-etl"] == "cloud-l4" and burst["adhoc-report"] == "cloud-l4"  # cheaper than cloud-h100
    assert burst["gpu-features"] is None  # A100-80GB: on-premises only
    assert burst["demo-gpu-share"] is None  # T4: on-premises only
