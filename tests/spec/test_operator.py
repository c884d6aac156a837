"""Spark Operator v1beta2 manifests: every documented field is mapped or named as unsupported."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from bigk.spec.loader import load_specs
from bigk.spec.model import JobSpec
from bigk.spec.operator import import_operator
from bigk.spec.policy import SpecPolicy

DATA = Path(__file__).parent / "data"

# Field names as declared in kubeflow/spark-operator api/v1beta2 (sparkapplication_types.go and
# scheduledsparkapplication_types.go), with a value that exercises each one.
APPLICATION_FIELDS: dict[str, Any] = {
    "type": "Java",
    "sparkVersion": "3.5.1",
    "mode": "client",
    "proxyUser": "alice",
    "image": "spark:3.5.1",
    "imagePullPolicy": "Always",
    "imagePullSecrets": ["regcred"],
    "mainClass": "org.example.Main",
    "mainApplicationFile": "local:///opt/app.jar",
    "arguments": ["a", "b"],
    "sparkConf": {"spark.eventLog.enabled": "true"},
    "hadoopConf": {"fs.s3a.fast.upload": "true"},
    "sparkConfigMap": "spark-conf",
    "hadoopConfigMap": "hadoop-conf",
    "volumes": [{"name": "v", "emptyDir": {}}],
    "deps": {
        "jars": ["local:///a.jar"],
        "files": ["local:///f"],
        "pyFiles": ["local:///p.zip"],
        "packages": ["g:a:1"],
        "excludePackages": ["g:b"],
        "repositories": ["https://repo.example.com"],
        "archives": ["local:///x.tgz"],
    },
    "restartPolicy": {"type": "OnFailure", "onFailureRetries": 2, "onFailureRetryInterval": 5},
    "nodeSelector": {"disk": "ssd"},
    "failureRetries": 3,
    "retryInterval": 30,
    "pythonVersion": "3",
    "memoryOverheadFactor": "0.3",
    "monitoring": {"exposeDriverMetrics": True, "exposeExecutorMetrics": True},
    "batchScheduler": "volcano",
    "timeToLiveSeconds": 60,
    "batchSchedulerOptions": {"queue": "q1", "priorityClassName": "high", "resources": {"cpu": "4"}},
    "sparkUIOptions": {"servicePort": 4040},
    "driverIngressOptions": [{"servicePort": 4041, "servicePortName": "x"}],
    "dynamicAllocation": {
        "enabled": True,
        "initialExecutors": 2,
        "minExecutors": 1,
        "maxExecutors": 5,
        "shuffleTrackingTimeout": 60000,
    },
}
POD_FIELDS: dict[str, Any] = {
    "template": {"metadata": {"labels": {"from-template": "yes"}}},
    "cores": 2,
    "coreLimit": "2500m",
    "memory": "3g",
    "memoryOverhead": "512m",
    "gpu": {"name": "nvidia.com/gpu", "quantity": 1},
    "image": "custom:1",
    "configMaps": [{"name": "cm", "path": "/etc/cm"}],
    "secrets": [{"name": "s", "path": "/etc/s", "secretType": "Generic"}],
    "env": [{"name": "A", "value": "1"}],
    "envVars": {"B": "2"},
    "envFrom": [{"configMapRef": {"name": "envs"}}],
    "envSecretKeyRefs": {"C": {"name": "sec", "key": "k"}},
    "labels": {"l": "v"},
    "annotations": {"a": "v"},
    "volumeMounts": [{"name": "v", "mountPath": "/v"}],
    "affinity": {"podAntiAffinity": {}},
    "tolerations": [{"key": "k", "operator": "Exists"}],
    "podSecurityContext": {"runAsUser": 185},
    "securityContext": {"allowPrivilegeEscalation": False},
    "schedulerName": "volcano",
    "sidecars": [{"name": "side", "image": "busybox"}],
    "initContainers": [{"name": "init", "image": "busybox"}],
    "hostNetwork": False,
    "nodeSelector": {"pool": "x"},
    "dnsConfig": {"nameservers": ["1.1.1.1"]},
    "terminationGracePeriodSeconds": 30,
    "serviceAccount": "spark",
    "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["db"]}],
    "shareProcessNamespace": True,
}
DRIVER_FIELDS: dict[str, Any] = {
    "podName": "my-driver",
    "coreRequest": "500m",
    "javaOptions": "-Dx=y",
    "lifecycle": {"preStop": {"exec": {"command": ["sleep", "1"]}}},
    "kubernetesMaster": "https://k8s",
    "serviceAnnotations": {"sa": "1"},
    "serviceLabels": {"sl": "1"},
    "ports": [{"name": "p", "protocol": "TCP", "containerPort": 9000}],
    "priorityClassName": "drv",
}
EXECUTOR_FIELDS: dict[str, Any] = {
    "instances": 3,
    "coreRequest": "1",
    "javaOptions": "-Dx=y",
    "lifecycle": {"preStop": {"exec": {"command": ["sleep", "1"]}}},
    "deleteOnTermination": False,
    "ports": [{"name": "p", "protocol": "TCP", "containerPort": 9000}],
    "priorityClassName": "exe",
}
SCHEDULED_FIELDS: dict[str, Any] = {
    "schedule": "0 3 * * *",
    "timeZone": "UTC",
    "suspend": True,
    "concurrencyPolicy": "Replace",
    "successfulRunHistoryLimit": 4,
    "failedRunHistoryLimit": 6,
}
MINIMAL = {"type": "Scala", "mainClass": "M", "mainApplicationFile": "local:///a.jar", "driver": {}, "executor": {}}


def _app(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": {"name": "x"},
        "spec": spec,
    }


def _effect(spec: dict[str, Any], path: str) -> tuple[bool, bool]:
    """(changed the output, reported by name) for a minimal manifest plus one field."""
    baseline, _ = import_operator(_app(copy.deepcopy(MINIMAL)))
    converted, unsupported = import_operator(_app(spec))
    named = any(entry.startswith(path) for entry in unsupported)
    return converted != baseline, named


@pytest.mark.parametrize("field", sorted(APPLICATION_FIELDS))
def test_every_application_field_is_mapped_or_named(field: str) -> None:
    spec = {**copy.deepcopy(MINIMAL), field: copy.deepcopy(APPLICATION_FIELDS[field])}
    changed, named = _effect(spec, f"spec.{field}")
    assert changed or named


ROLE_FIELDS = {"driver": {**POD_FIELDS, **DRIVER_FIELDS}, "executor": {**POD_FIELDS, **EXECUTOR_FIELDS}}


@pytest.mark.parametrize(("role", "field"), [(r, f) for r, fields in ROLE_FIELDS.items() for f in sorted(fields)])
def test_every_pod_field_is_mapped_or_named(role: str, field: str) -> None:
    own = ROLE_FIELDS[role]
    spec = copy.deepcopy(MINIMAL)
    spec[role] = {field: copy.deepcopy(own[field])}
    changed, named = _effect(spec, f"spec.{role}.{field}")
    assert changed or named


@pytest.mark.parametrize("field", sorted(SCHEDULED_FIELDS))
def test_every_scheduled_field_is_mapped(field: str) -> None:
    doc = {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "ScheduledSparkApplication",
        "metadata": {"name": "s"},
        "spec": {"schedule": "0 1 * * *", "template": copy.deepcopy(MINIMAL), field: SCHEDULED_FIELDS[field]},
    }
    converted, unsupported = import_operator(doc)
    key = {"schedule": "cron", "successfulRunHistoryLimit": "successfulRunsHistoryLimit"}.get(field, field)
    key = {"failedRunHistoryLimit": "failedRunsHistoryLimit"}.get(key, key)
    assert converted["spec"]["schedule"][key] == SCHEDULED_FIELDS[field]
    assert unsupported == []


def test_unknown_fields_are_named_not_dropped() -> None:
    _, unsupported = import_operator(_app({**MINIMAL, "fancyNewField": 1, "driver": {"whatever": 2}}))
    assert "spec.fancyNewField: unknown operator field; left out" in unsupported
    assert "spec.driver.whatever: unknown operator field; left out" in unsupported


def test_realistic_scheduled_manifest_converts_to_a_valid_job() -> None:
    doc = yaml.safe_load((DATA / "operator-scheduled.yaml").read_text())
    converted, unsupported = import_operator(doc, "operator-scheduled.yaml")
    job = JobSpec.model_validate(converted)
    spec = job.spec
    assert job.metadata.name == "sales-rollup" and job.metadata.namespace == "analytics"
    assert spec.schedule is not None and spec.schedule.cron == "15 1 * * 0"
    assert (spec.schedule.timeZone, spec.schedule.concurrencyPolicy) == ("America/New_York", "Forbid")
    assert spec.schedule.successfulRunsHistoryLimit == 5
    assert spec.queue == "analytics"
    assert (spec.restartPolicy.type, spec.restartPolicy.retries, spec.restartPolicy.backoffSeconds) == (
        "OnFailure",
        3,
        10,
    )
    assert (spec.executor.instances, spec.executor.minInstances, spec.executor.maxInstances) == (4, 2, 10)
    assert spec.executor.gpu is not None and spec.executor.gpu.count == 1
    assert spec.sparkConf["spark.kubernetes.hadoop.configMapName"] == "hadoop-site"
    assert spec.driver.literal_env["GOOGLE_APPLICATION_CREDENTIALS"] == "/mnt/secrets/key.json"
    driver_tpl = spec.driver.template or {}
    container = driver_tpl["spec"]["containers"][0]
    assert container["name"] == "spark-kubernetes-driver"
    assert container["name"] == "spark-kubernetes-driver"
    secret = next(v for v in spec.driver.sourced_env if v.name == "DB_PASSWORD")
    ref = {"secretKeyRef": {"name": "db", "key": "password"}}
    assert secret.to_container() == {"name": "DB_PASSWORD", "valueFrom": ref}
    executor_tpl = spec.executor.template or {}
    assert [c["name"] for c in executor_tpl["spec"]["containers"]] == ["spark-kubernetes-executor", "log-shipper"]
    assert {"name": "cm-features", "configMap": {"name": "features"}} in executor_tpl["spec"]["volumes"]
    assert "affinity" in executor_tpl["spec"]
    names = {entry.split(":")[0] for entry in unsupported}
    assert {
        "status",
        "spec.template.pythonVersion",
        "spec.template.batchScheduler",
        "spec.template.monitoring",
        "spec.template.timeToLiveSeconds",
        "spec.template.driver.schedulerName",
        "spec.template.restartPolicy.onSubmissionFailureRetries",
        "spec.template.sparkConf.spark.executor.instances",
    } <= names


def test_operator_manifests_load_from_the_spec_folder_with_warnings(tmp_path: Path) -> None:
    (tmp_path / "op.yaml").write_text((DATA / "operator-scheduled.yaml").read_text())
    result = load_specs([tmp_path], policy=SpecPolicy({"analytics": "restricted"}))  # the install allows it
    assert result.problems == []
    loaded = result.jobs["sales-rollup"]
    assert loaded.source_kind == "ScheduledSparkApplication"
    warning = next(w for w in result.warnings if w.field == "spec.template.monitoring")
    assert (warning.line, warning.severity) == (53, "warning")


def test_operator_errors_point_into_the_manifest(tmp_path: Path) -> None:
    doc = yaml.safe_load((DATA / "operator-scheduled.yaml").read_text())
    doc["spec"]["schedule"] = "0 0 * * 9"
    doc["spec"]["template"]["executor"]["memory"] = "lots"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = load_specs([path])
    fields = {p.field: p for p in result.problems}
    assert set(fields) == {"spec.schedule", "spec.template.executor.memory"}
    text = path.read_text().splitlines()
    assert text[fields["spec.template.executor.memory"].line - 1].strip() == "memory: lots"


def test_not_an_operator_manifest_is_refused() -> None:
    with pytest.raises(ValueError, match="not supported"):
        import_operator({"apiVersion": "sparkoperator.k8s.io/v1alpha1", "kind": "SparkConnect"})
