"""What bigk submits: argv, conf, pod templates; scheduler name, labels, annotations, GPU settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bigk.errors import BigkError
from bigk.spark.submit import build_submission, task_gpu_amount
from bigk.spec.model import JobSpec

from .conftest import make_job

MASTER = "k8s://http://127.0.0.1:6443"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _conf(argv: list[str]) -> dict[str, str]:
    """The --conf pairs exactly as spark-submit will parse them."""
    pairs = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--conf"]
    return dict(pair.split("=", 1) for pair in pairs)


def test_every_pod_names_bigk_and_carries_labels_and_annotations(examples: dict[str, JobSpec], tmp_path: Path) -> None:
    sub = build_submission(examples["nightly-etl"], "20261125-0200", MASTER, tmp_path)
    argv = sub.argv
    assert Path(argv[0]).name == "spark-submit" and Path(argv[0]).exists()
    assert argv[1:7] == ["--master", MASTER, "--deploy-mode", "cluster", "--name", "nightly-etl"]
    conf = _conf(argv)
    assert conf == sub.conf
    assert conf["spark.kubernetes.scheduler.name"] == "bigk"
    assert conf["spark.kubernetes.submission.waitAppCompletion"] == "false"
    assert conf["spark.kubernetes.driver.pod.name"] == "nightly-etl-20261125-0200-driver"
    assert conf["spark.executor.instances"] == "4"
    assert conf["spark.kubernetes.allocation.batch.size"] == "4"
    for role in ("driver", "executor"):
        assert conf[f"spark.kubernetes.{role}.label.bigk.io/job"] == "nightly-etl"
        assert conf[f"spark.kubernetes.{role}.label.bigk.io/run"] == "20261125-0200"
        assert conf[f"spark.kubernetes.{role}.label.bigk.io/queue"] == "etl"
        assert conf[f"spark.kubernetes.{role}.label.team"] == "data-platform"
        assert conf[f"spark.kubernetes.{role}.annotation.bigk.io/priority"] == "10"
        assert conf[f"spark.kubernetes.{role}.annotation.bigk.io/min-executors"] == "2"
        assert conf[f"spark.kubernetes.{role}.annotation.bigk.io/max-executors"] == "8"
        assert conf[f"spark.kubernetes.{role}.annotation.bigk.io/preferred-pools"] == "cpu"
        assert conf[f"spark.kubernetes.{role}.annotation.bigk.io/expected-duration-seconds"] == "45"
    assert conf["spark.dynamicAllocation.enabled"] == "true"
    assert (conf["spark.dynamicAllocation.minExecutors"], conf["spark.dynamicAllocation.maxExecutors"]) == ("2", "8")
    assert conf["spark.sql.shuffle.partitions"] == "8" and conf["spark.sql.adaptive.enabled"] == "true"
    assert (conf["spark.executor.memory"], conf["spark.executor.cores"]) == ("8g", "4")
    assert "SPARK_HOME" in sub.env and Path(sub.env["SPARK_HOME"], "jars").is_dir()
    assert argv[-3:] == ["local:///opt/bigk/apps/etl_daily.py", "--rows", "200000"]


def test_templates_are_written_and_referenced(examples: dict[str, JobSpec], tmp_path: Path) -> None:
    sub = build_submission(examples["gpu-scoring"], "r1", MASTER, tmp_path)
    for role, template in (("driver", sub.driver_template), ("executor", sub.executor_template)):
        path = Path(sub.conf[f"spark.kubernetes.{role}.podTemplateFile"])
        assert path.parent == tmp_path
        assert yaml.safe_load(path.read_text()) == template
        assert template["spec"]["schedulerName"] == "bigk"
        assert template["metadata"]["labels"]["bigk.io/job"] == "gpu-scoring"


def test_whole_gpu_executors_get_spark_gpu_resources_and_rapids(examples: dict[str, JobSpec], tmp_path: Path) -> None:
    sub = build_submission(examples["gpu-features"], "r1", MASTER, tmp_path)
    conf = sub.conf
    assert conf["spark.executor.resource.gpu.amount"] == "1"
    assert conf["spark.executor.resource.gpu.vendor"] == "nvidia.com"
    assert conf["spark.executor.resource.gpu.discoveryScript"].endswith("getGpusResources.sh")
    assert conf["spark.task.resource.gpu.amount"] == "0.125"  # 8 cores share one GPU
    assert conf["spark.plugins"] == "com.nvidia.spark.SQLPlugin"
    assert conf["spark.rapids.sql.enabled"] == "true"
    assert conf["spark.rapids.sql.concurrentGpuTasks"] == "2"
    assert conf["spark.kubernetes.executor.annotation.bigk.io/gpu-milli"] == "1000"
    assert conf["spark.kubernetes.executor.annotation.bigk.io/gpu-models"] == "A100-80GB"
    assert "spark.driver.resource.gpu.amount" not in conf
    tolerations = sub.executor_template["spec"]["tolerations"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations
    assert "tolerations" not in sub.driver_template["spec"]  # the CPU driver stays off GPU nodes


def test_fractional_gpu_executors_never_ask_the_device_plugin(examples: dict[str, JobSpec], tmp_path: Path) -> None:
    sub = build_submission(examples["gpu-scoring"], "r1", MASTER, tmp_path)
    conf = sub.conf
    assert not [k for k in conf if ".resource.gpu." in k]
    rendered = yaml.safe_dump([sub.driver_template, sub.executor_template]) + " ".join(sub.argv)
    assert "nvidia.com/gpu:" not in rendered and "limits" not in rendered
    assert conf["spark.kubernetes.executor.annotation.bigk.io/gpu-milli"] == "250"
    assert conf["spark.kubernetes.executor.annotation.bigk.io/gpu-memory-mib"] == "4096"
    assert conf["spark.rapids.memory.gpu.allocFraction"] == "0.25"
    container = sub.executor_template["spec"]["containers"][0]
    assert container["name"] == conf["spark.kubernetes.executor.podTemplateContainerName"]
    env = {e["name"]: e for e in container["env"]}
    assert env["NVIDIA_VISIBLE_DEVICES"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.annotations['bigk.io/assigned-gpus']"
    )


def test_spec_values_cannot_inject_commands_or_options(tmp_path: Path) -> None:
    evil = ["; rm -rf / #", "$(reboot)", "--conf", "spark.master=local", "a b\nc"]
    job = make_job({"arguments": evil, "sparkConf": {"spark.app.note": "x --conf spark.master=local; echo"}})
    sub = build_submission(job, "r1", MASTER, tmp_path)
    assert sub.argv[-len(evil) :] == evil  # after the application file: inert arguments of the app
    assert sub.argv.count("--master") == 1
    assert _conf(sub.argv[: -len(evil)])["spark.app.note"] == "x --conf spark.master=local; echo"


def test_names_are_deterministic_and_valid_for_long_inputs(tmp_path: Path) -> None:
    job = make_job({}, name="a" * 50)
    run_id = "2026-11-25T17:00:00Z/Manual#" + "x" * 30
    first = build_submission(job, run_id, MASTER, tmp_path)
    second = build_submission(job, run_id, MASTER, tmp_path / "again")
    name = first.conf["spark.kubernetes.driver.pod.name"]
    assert name == second.conf["spark.kubernetes.driver.pod.name"] and name.endswith("-driver")
    assert len(name) <= 63 and DNS_LABEL.match(name)
    prefix = first.conf["spark.kubernetes.executor.podNamePrefix"]
    assert len(prefix) <= 47 and DNS_LABEL.match(prefix)
    run_label = first.conf["spark.kubernetes.driver.label.bigk.io/run"]
    assert len(run_label) <= 63 and re.match(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", run_label)
    other = build_submission(job, run_id + "y", MASTER, tmp_path / "other")
    assert other.conf["spark.kubernetes.driver.pod.name"] != name


def test_user_template_is_kept_but_bigk_wins_on_scheduling(tmp_path: Path) -> None:
    job = make_job(
        {
            "activeDeadlineSeconds": 600,
            "tolerations": [{"key": "dedicated", "value": "spark", "effect": "NoSchedule"}],
            "driver": {
                "template": {
                    "spec": {"schedulerName": "volcano", "volumes": [{"name": "v", "emptyDir": {}}]},
                    "metadata": {"labels": {"bigk.io/job": "spoofed", "extra": "1"}},
                }
            },
        }
    )
    tpl = build_submission(job, "r1", MASTER, tmp_path).driver_template
    assert tpl["spec"]["schedulerName"] == "bigk"
    assert tpl["spec"]["volumes"] == [{"name": "v", "emptyDir": {}}]
    assert tpl["metadata"]["labels"]["bigk.io/job"] == "job" and tpl["metadata"]["labels"]["extra"] == "1"
    assert tpl["spec"]["activeDeadlineSeconds"] == 600
    assert tpl["spec"]["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "spark", "effect": "NoSchedule"}
    ]


def test_deps_class_env_and_selectors(tmp_path: Path) -> None:
    job = make_job(
        {
            "type": "Scala",
            "mainClass": "org.example.Main",
            "mainApplicationFile": "local:///opt/app.jar",
            "deps": {"jars": ["a.jar", "b.jar"], "packages": ["g:a:1"]},
            "nodeSelector": {"disk": "ssd"},
            "driver": {"env": {"MODE": "prod"}, "serviceAccount": "spark"},
            "executor": {"env": {"X": 1}, "nodeSelector": {"bigk.io/pool": "cpu"}, "coreRequest": "500m"},
            "hadoopConf": {"fs.s3a.endpoint": "s3.local"},
        }
    )
    sub = build_submission(job, "r1", MASTER, tmp_path)
    argv = sub.argv
    assert argv[argv.index("--class") + 1] == "org.example.Main"
    assert argv[argv.index("--jars") + 1] == "a.jar,b.jar"
    assert argv[argv.index("--packages") + 1] == "g:a:1"
    conf = sub.conf
    assert conf["spark.kubernetes.driverEnv.MODE"] == "prod" and conf["spark.executorEnv.X"] == "1"
    assert conf["spark.kubernetes.node.selector.disk"] == "ssd"
    assert conf["spark.kubernetes.executor.node.selector.bigk.io/pool"] == "cpu"
    assert conf["spark.kubernetes.executor.request.cores"] == "500m"
    assert conf["spark.kubernetes.authenticate.driver.serviceAccountName"] == "spark"
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "s3.local"
    assert "spark.dynamicAllocation.enabled" not in conf


@pytest.mark.parametrize(("gpus", "cores", "amount"), [(1, 4, "0.25"), (1, 3, "0.333333"), (2, 2, "1"), (4, 2, "2")])
def test_task_gpu_amount(gpus: int, cores: int, amount: str) -> None:
    assert task_gpu_amount(gpus, cores) == amount


def test_bad_master_and_run_id_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(BigkError, match="k8s://"):
        build_submission(make_job({}), "r1", "local[2]", tmp_path)
    with pytest.raises(BigkError, match="run id"):
        build_submission(make_job({}), "", MASTER, tmp_path)
