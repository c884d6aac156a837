"""The Spark Operator's own examples and documented features import and validate with zero errors.

The corpus (tests/spec/data/operator-corpus, sources in its README) covers every example manifest of
kubeflow/spark-operator and the fields its user guide shows. The install's policy grants the corpus's
namespaces `privileged`, since upstream examples mount hostPath /tmp and use hostNetwork; under bigk's
built-in restricted policy those are refused on purpose (tests/spec/test_policy.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bigk.cluster.config import load_cluster
from bigk.spark.submit import DEFAULT_DRIVER_SERVICE_ACCOUNT, build_submission
from bigk.spec.cron import Every, parse_schedule
from bigk.spec.loader import SpecLoadResult, load_specs
from bigk.spec.policy import SpecPolicy

CORPUS = Path(__file__).parent / "data" / "operator-corpus"
CLUSTER = Path(__file__).parents[2] / "jobspecs" / "cluster.yaml"
FILES = sorted(CORPUS.glob("*.yaml"))
MASTER = "k8s://https://kubernetes.default.svc"


def _app_docs(path: Path) -> list[dict]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if isinstance(d, dict)]
    return [d for d in docs if str(d.get("apiVersion", "")).startswith("sparkoperator.k8s.io/")]


def _namespaces() -> set[str]:
    return {str((d.get("metadata") or {}).get("namespace") or "default") for f in FILES for d in _app_docs(f)}


@pytest.fixture(scope="module")
def corpus() -> SpecLoadResult:
    policy = SpecPolicy(namespaces=dict.fromkeys(_namespaces(), "privileged"))
    return load_specs([CORPUS], cluster=load_cluster(CLUSTER), policy=policy)


def test_corpus_covers_the_upstream_examples() -> None:
    assert len(FILES) >= 28
    sources = " ".join(f.read_text(encoding="utf-8").splitlines()[0] for f in FILES)
    for example in ("spark-pi.yaml", "spark-pi-scheduled.yaml", "spark-pi-prometheus-servlet.yaml",
                    "spark-pi-yunikorn.yaml", "spark-pi-pod-template.yaml", "spark-fenced-restart.yaml"):
        assert f"examples/{example}" in sources


def test_every_manifest_imports_and_validates_with_zero_errors(corpus: SpecLoadResult) -> None:
    assert [str(p) for p in corpus.problems] == []
    assert corpus.failed_files == set()
    expected = sum(len(_app_docs(f)) for f in FILES)
    assert len(corpus.jobs) == expected


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_each_file_contributes_its_applications(corpus: SpecLoadResult, path: Path) -> None:
    names = {str(d["metadata"]["name"]) for d in _app_docs(path)}
    assert names and names <= set(corpus.jobs)
    assert all(corpus.jobs[n].file == path for n in names)


def test_every_warning_names_a_field_at_a_position(corpus: SpecLoadResult) -> None:
    assert corpus.warnings
    for warning in corpus.warnings:
        assert warning.line > 0 and warning.col > 0 and warning.field, str(warning)


def test_every_interval_from_the_operator_example_becomes_an_interval(corpus: SpecLoadResult) -> None:
    schedule = corpus.jobs["spark-pi-scheduled"].spec.spec.schedule
    assert schedule is not None and parse_schedule(schedule.cron) == Every(180)


def test_wildcard_metrics_settings_reach_spark(corpus: SpecLoadResult, tmp_path: Path) -> None:
    job = corpus.jobs["spark-pi-prometheus-servlet"].spec
    sub = build_submission(job, "r1", MASTER, tmp_path)
    assert sub.conf["spark.metrics.conf.*.sink.prometheusServlet.class"] == (
        "org.apache.spark.metrics.sink.PrometheusServlet")
    assert "spark.metrics.conf.*.sink.prometheusServlet.class=org.apache.spark.metrics.sink.PrometheusServlet" in (
        sub.argv)


def test_yunikorn_and_volcano_queues_map_onto_bigk_queues(corpus: SpecLoadResult) -> None:
    assert corpus.jobs["spark-pi-yunikorn"].spec.spec.queue == "default"  # root.default
    assert corpus.jobs["spark-pi-volcano"].spec.spec.queue == "queue1"
    assert corpus.jobs["guide-ui-volcano"].spec.spec.queue == "team_a"  # Team_A
    note = next(w for w in corpus.warnings if w.field == "spec.batchSchedulerOptions.queue"
                and w.file.name == "spark-pi-yunikorn.yaml")
    assert "'default'" in note.message and "root.default" in note.message


def test_config_maps_of_the_same_file_are_passed_through_and_secrets_skipped(corpus: SpecLoadResult) -> None:
    job = corpus.jobs["spark-pi-pod-template"].spec
    assert [cm.metadata.name for cm in job.spec.configMaps] == ["test-configmap", "test-configmap-2"]
    skipped = [w for w in corpus.warnings if w.file.name == "spark-pi-pod-template.yaml" and w.field == "kind"]
    assert [(w.line, "Secret" in w.message) for w in skipped] == [(13, True), (29, True)]
    script = corpus.jobs["resumable-etl"].spec.spec.configMaps[0]
    assert "SparkSession" in script.data["resumable_etl.py"]


def test_env_from_secrets_config_maps_and_the_pod_reach_the_template(corpus: SpecLoadResult, tmp_path: Path) -> None:
    job = corpus.jobs["guide-everything"].spec
    sub = build_submission(job, "r1", MASTER, tmp_path)
    main = next(c for c in sub.driver_template["spec"]["containers"] if c["name"] == "spark-kubernetes-driver")
    env = {e["name"]: e for e in main["env"]}
    assert env["AUTH_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "some-secret", "key": "auth-key"}}
    assert env["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert {"secretRef": {"name": "env-secret"}} in main["envFrom"]
    assert sub.conf["spark.kubernetes.driverEnv.ENV1"] == "VAL1"  # literal values travel as Spark settings
    assert "spark.kubernetes.driverEnv.AUTH_KEY" not in sub.conf


def test_render_is_the_same_on_every_machine(corpus: SpecLoadResult, tmp_path: Path) -> None:
    """`bigk render JOB | diff` in code review: no temp folder, SPARK_HOME or PATH in what render prints."""
    for name in ("spark-pi-pod-template", "guide-everything", "spark-pi-scheduled"):
        job = corpus.jobs[name].spec
        first = build_submission(job, "manual", MASTER, tmp_path / "a").to_dict(portable=True)
        second = build_submission(job, "manual", MASTER, tmp_path / "b" / "c").to_dict(portable=True)
        assert first == second
        text = yaml.safe_dump(first)
        assert str(tmp_path) not in text and "SPARK_HOME" not in text and "site-packages" not in text
        assert first["argv"][0] == "spark-submit"


def test_drivers_get_a_service_account_that_may_create_executors(corpus: SpecLoadResult, tmp_path: Path) -> None:
    named = build_submission(corpus.jobs["spark-pi"].spec, "r1", MASTER, tmp_path)
    assert named.conf["spark.kubernetes.authenticate.driver.serviceAccountName"] == "spark"
    unnamed = build_submission(corpus.jobs["spark-on-demand-pvc"].spec, "r1", MASTER, tmp_path)
    assert unnamed.conf["spark.kubernetes.authenticate.driver.serviceAccountName"] == DEFAULT_DRIVER_SERVICE_ACCOUNT


def test_spark_config_map_is_mounted_as_the_operator_does(corpus: SpecLoadResult) -> None:
    job = corpus.jobs["guide-everything"].spec
    for pod in (job.spec.driver, job.spec.executor):
        assert pod.literal_env["SPARK_CONF_DIR"] == "/etc/spark/conf"
        spec = (pod.template or {})["spec"]
        assert {"name": "cm-spark-defaults", "configMap": {"name": "spark-defaults"}} in spec["volumes"]
        mounts = [m for c in spec["containers"] for m in c.get("volumeMounts", [])]
        assert {"name": "cm-spark-defaults", "mountPath": "/etc/spark/conf"} in mounts


def test_secret_and_config_map_mounts_sit_beside_the_manifests_own_volume_mounts(corpus: SpecLoadResult) -> None:
    driver = corpus.jobs["guide-everything"].spec.spec.driver
    mounts = [m for c in (driver.template or {})["spec"]["containers"] for m in c.get("volumeMounts", [])]
    paths = {m["mountPath"] for m in mounts}
    assert {"/mnt/spark/work", "/mnt/secrets", "/mnt/config-maps", "/etc/spark/conf"} <= paths


def test_bigk_render_prints_the_same_yaml_twice_without_anchors() -> None:
    """`bigk render JOB | diff`: a ConfigMap's script as a block, no &id001 aliases, nothing of this machine."""
    from typer.testing import CliRunner

    from bigk.cli.main import app

    runs = [CliRunner().invoke(app, ["render", "resumable-etl", "--specs", str(CORPUS)]) for _ in range(2)]
    assert all(r.exit_code == 0 for r in runs), runs[0].output
    first, second = (r.stdout for r in runs)
    assert first == second and "&id" not in first and "*id" not in first
    rendered = yaml.safe_load(first)
    assert rendered["argv"][0] == "spark-submit" and "env" not in rendered
    assert "resumable_etl.py: |" in first and "SparkSession" in rendered["configMaps"][0]["data"]["resumable_etl.py"]


def test_monitoring_is_wired_as_the_operator_wires_it(corpus: SpecLoadResult, tmp_path: Path) -> None:
    job = corpus.jobs["spark-pi-jmx"].spec
    [conf_map] = job.spec.configMaps
    assert conf_map.metadata.name == "spark-pi-jmx-prom-conf"
    assert "JmxSink" in conf_map.data["metrics.properties"] and "rules" in conf_map.data["prometheus.yaml"]
    sub = build_submission(job, "r1", MASTER, tmp_path)
    agent = "-javaagent:/prometheus/jmx_prometheus_javaagent-0.11.0.jar=8090:/etc/metrics/conf/prometheus.yaml"
    for role in ("driver", "executor"):
        assert sub.conf[f"spark.{role}.extraJavaOptions"] == agent
        assert sub.conf[f"spark.kubernetes.{role}.annotation.prometheus.io/port"] == "8090"
        template = sub.driver_template if role == "driver" else sub.executor_template
        main = next(c for c in template["spec"]["containers"] if c["name"] == f"spark-kubernetes-{role}")
        assert {"name": "jmx-exporter", "containerPort": 8090, "protocol": "TCP"} in main["ports"]
        assert {"name": "cm-spark-pi-jmx-prom-conf", "mountPath": "/etc/metrics/conf"} in main["volumeMounts"]
    assert sub.conf["spark.metrics.conf"] == "/etc/metrics/conf/metrics.properties"
    assert [cm["metadata"]["name"] for cm in sub.config_maps] == ["spark-pi-jmx-prom-conf"]


def test_a_bigk_job_takes_the_config_maps_of_its_file_too(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("""apiVersion: v1
kind: ConfigMap
metadata: {name: etl-sql}
data: {query.sql: "select 1"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: unused}
data: {a: b}
---
apiVersion: bigk.io/v1
kind: SparkJob
metadata: {name: etl}
spec:
  type: Python
  mainApplicationFile: local:///opt/app.py
  driver:
    env:
      - name: QUERY
        valueFrom: {configMapKeyRef: {name: etl-sql, key: query.sql}}
""", encoding="utf-8")
    result = load_specs([path])
    assert result.problems == []
    assert [cm.metadata.name for cm in result.jobs["etl"].spec.spec.configMaps] == ["etl-sql"]
    [skipped] = [w for w in result.warnings if w.field == "kind"]
    assert skipped.line == 7 and "'unused'" in skipped.message
