"""A job spec turned into exactly what bigk runs: the spark-submit argv, its environment and pod templates.

The result is always an argument vector, never a shell string: a spec value such
as `"; rm -rf /"` reaches spark-submit as one inert argument. Every pod names bigk
as its scheduler and carries the labels and annotations the scheduler core reads
(`bigk.cluster.labels`); names derive from (job, run id) so the service can find
the driver again after a restart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bigk.cluster import labels as L
from bigk.cluster.annotations import format_names
from bigk.cluster.executor_request import encode_executor_request
from bigk.cluster.model import MILLI_GPU
from bigk.spark.home import spark_submit, submit_env
from bigk.spark.templates import CONTAINER_NAMES, pod_template
from bigk.spec.errors import SpecError
from bigk.spec.gang import node_selector_for, overhead_mib, pod_request, tmpfs_mib, tolerations_for
from bigk.spec.model import GpuSpec, JobSpec, PodSpec
from bigk.spec.naming import driver_pod_name, executor_pod_prefix, gang_name
from bigk.spec.policy import Level
from bigk.spec.units import spark_memory

GPU_VENDOR = "nvidia.com"
# Ships with every Spark distribution and image; prints the GPUs the container sees.
GPU_DISCOVERY_SCRIPT = "/opt/spark/examples/src/main/scripts/getGpusResources.sh"
RAPIDS_PLUGIN = "com.nvidia.spark.SQLPlugin"
# The chart creates this ServiceAccount and its Role in every namespace it serves (values: spark.namespaces).
DEFAULT_DRIVER_SERVICE_ACCOUNT = "spark"
_LABEL_VALUE_BAD = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class Submission:
    """One run's spark-submit: argv (argv[0] is spark-submit), env to add, the conf and both pod templates."""

    argv: list[str]
    env: dict[str, str]
    conf: dict[str, str]
    driver_template: dict[str, Any]
    executor_template: dict[str, Any]
    driver_template_path: Path
    executor_template_path: Path
    driver_pod_name: str
    namespace: str
    gang: str
    labels: dict[str, str] = field(default_factory=dict)
    config_maps: list[dict[str, Any]] = field(default_factory=list)  # created in `namespace` before submitting
    resource_type: str = "java"  # java | python | r: what spark-submit tells the driver (larger overhead off the JVM)

    def to_dict(self, portable: bool = False) -> dict[str, Any]:
        """What `bigk render` prints.

        `portable`: the same on every machine, for `bigk render JOB | diff` in code review: argv[0] is
        `spark-submit`, template files are named relative to the submission's folder, and the machine's
        SPARK_HOME and PATH are left out.
        """
        argv = self.argv
        if portable:
            folder = f"{self.driver_template_path.parent}/"
            argv = ["spark-submit", *(a.replace(folder, "") for a in self.argv[1:])]
        out: dict[str, Any] = {"argv": argv}
        if not portable:
            out["env"] = self.env
        out.update(
            driverPodName=self.driver_pod_name,
            namespace=self.namespace,
            driverPodTemplate=self.driver_template,
            executorPodTemplate=self.executor_template,
        )
        if self.config_maps:
            out["configMaps"] = self.config_maps
        return out


def label_value(text: str) -> str:
    """Any text as a valid label value (run ids come from outside the spec)."""
    value = _LABEL_VALUE_BAD.sub("-", text)[:63].strip("-_.")
    return value or "none"


def bigk_labels(job: JobSpec, run_id: str) -> dict[str, str]:
    return {
        L.JOB_LABEL: job.metadata.name,
        L.RUN_LABEL: label_value(run_id),
        L.QUEUE_LABEL: job.spec.queue,
    }


def _gpu_annotations(gpu: GpuSpec | None) -> dict[str, str]:
    if gpu is None:
        return {}
    out = {L.GPU_MILLI_ANNOTATION: str(gpu.milli)}
    if gpu.is_fractional:
        out[L.GPU_MEMORY_ANNOTATION] = str(gpu.memory_mib)
    if gpu.model:
        out[L.GPU_MODELS_ANNOTATION] = gpu.model
    return out


def bigk_annotations(job: JobSpec, role: str) -> dict[str, str]:
    """Scheduling hints for one role's pods."""
    pod: PodSpec = job.spec.driver if role == "driver" else job.spec.executor
    out = {
        L.PRIORITY_ANNOTATION: str(job.spec.priority),
        L.MIN_EXECUTORS_ANNOTATION: str(job.spec.executor.gang_min),
        L.MAX_EXECUTORS_ANNOTATION: str(job.spec.executor.gang_max),
    }
    if job.spec.pools:
        out[L.POOLS_ANNOTATION] = format_names(job.spec.pools)
    if job.spec.expectedDurationSeconds is not None:
        out[L.EXPECTED_DURATION_ANNOTATION] = str(job.spec.expectedDurationSeconds)
    out.update(_gpu_annotations(pod.gpu))
    if role == "driver":
        # Executors are created later by the driver; this lets bigk reserve them at their true size.
        out[L.EXECUTOR_REQUEST_ANNOTATION] = encode_executor_request(
            pod_request(job, "executor"), node_selector_for(job, "executor"),
            [t.to_cluster() for t in tolerations_for(job, "executor")])
    return out


def task_gpu_amount(gpus: int, cores: int) -> str:
    """GPU share per task so that `cores` tasks run at once on `gpus` GPUs (Spark wants 1/n or whole numbers)."""
    if gpus >= cores:
        return str(gpus // cores)
    tasks_per_gpu = -(-cores // gpus)
    return f"{1 / tasks_per_gpu:.6g}"


def _pod_conf(job: JobSpec, role: str, labels: dict[str, str], conf: dict[str, str]) -> None:
    pod: PodSpec = job.spec.driver if role == "driver" else job.spec.executor
    conf[f"spark.{role}.cores"] = str(pod.cores)
    conf[f"spark.{role}.memory"] = spark_memory(pod.memory_mib)
    if pod.memoryOverhead is not None or tmpfs_mib(job, role):
        # with memory-backed emptyDirs, the overhead grows by their sizeLimit (as the scheduler counts it)
        conf[f"spark.{role}.memoryOverhead"] = spark_memory(overhead_mib(job, role))
    if pod.coreRequest is not None:
        conf[f"spark.kubernetes.{role}.request.cores"] = pod.coreRequest
    if pod.coreLimit is not None:
        conf[f"spark.kubernetes.{role}.limit.cores"] = pod.coreLimit
    if pod.image:
        conf[f"spark.kubernetes.{role}.container.image"] = pod.image
    if pod.serviceAccount:
        conf[f"spark.kubernetes.authenticate.{role}.serviceAccountName"] = pod.serviceAccount
    elif role == "driver":
        # The driver creates executors, services and config maps: it needs the account the chart makes per namespace.
        conf["spark.kubernetes.authenticate.driver.serviceAccountName"] = DEFAULT_DRIVER_SERVICE_ACCOUNT
    if pod.javaOptions:
        conf[f"spark.{role}.extraJavaOptions"] = pod.javaOptions
    env_prefix = "spark.kubernetes.driverEnv." if role == "driver" else "spark.executorEnv."
    for key, value in pod.literal_env.items():
        conf[env_prefix + key] = value
    for key, value in pod.nodeSelector.items():
        conf[f"spark.kubernetes.{role}.node.selector.{key}"] = value
    for key, value in {**job.metadata.labels, **pod.labels, **labels}.items():
        conf[f"spark.kubernetes.{role}.label.{key}"] = value
    for key, value in {**pod.annotations, **bigk_annotations(job, role)}.items():
        conf[f"spark.kubernetes.{role}.annotation.{key}"] = value
    gpu = pod.gpu
    if gpu is not None and not gpu.is_fractional:
        # Whole GPUs: Spark requests nvidia.com/gpu from the device plugin and schedules tasks on them.
        conf[f"spark.{role}.resource.gpu.amount"] = str(gpu.count)
        conf[f"spark.{role}.resource.gpu.vendor"] = GPU_VENDOR
        conf[f"spark.{role}.resource.gpu.discoveryScript"] = GPU_DISCOVERY_SCRIPT
        if role == "executor":
            conf["spark.task.resource.gpu.amount"] = task_gpu_amount(gpu.count, pod.cores)


def _rapids_conf(job: JobSpec, conf: dict[str, str]) -> None:
    rapids = job.spec.rapids
    if rapids is None or not rapids.enabled:
        return
    plugins = [p for p in conf.get("spark.plugins", "").split(",") if p.strip()]
    if RAPIDS_PLUGIN not in plugins:
        plugins.append(RAPIDS_PLUGIN)
    conf["spark.plugins"] = ",".join(plugins)
    conf.setdefault("spark.rapids.sql.enabled", "true")
    gpu = job.spec.executor.gpu
    if gpu is not None and gpu.is_fractional:
        # RAPIDS grabs most of the GPU's memory by default; on a shared GPU keep to this pod's share.
        share = f"{gpu.milli / MILLI_GPU:g}"
        conf.setdefault("spark.rapids.memory.gpu.allocFraction", share)
        conf.setdefault("spark.rapids.memory.gpu.maxAllocFraction", share)
        conf.setdefault("spark.rapids.memory.gpu.minAllocFraction", "0")
    conf.update(rapids.conf)


def build_conf(
    job: JobSpec, run_id: str, template_paths: dict[str, Path], has_containers: dict[str, bool]
) -> dict[str, str]:
    """All --conf settings of a cluster-mode submission."""
    spec = job.spec
    conf: dict[str, str] = dict(spec.sparkConf)
    for key, value in spec.hadoopConf.items():
        conf[f"spark.hadoop.{key}"] = value
    labels = bigk_labels(job, run_id)
    executor = spec.executor
    conf.update(
        {
            "spark.kubernetes.namespace": job.metadata.namespace,
            "spark.kubernetes.scheduler.name": L.SCHEDULER_NAME,
            "spark.kubernetes.submission.waitAppCompletion": "false",
            "spark.kubernetes.driver.pod.name": driver_pod_name(job.metadata.name, run_id),
            "spark.kubernetes.executor.podNamePrefix": executor_pod_prefix(job.metadata.name, run_id),
            "spark.kubernetes.driver.podTemplateFile": str(template_paths["driver"]),
            "spark.kubernetes.executor.podTemplateFile": str(template_paths["executor"]),
            "spark.executor.instances": str(executor.instances),
            # Ask for the whole gang at once: bigk admits it as a unit, Spark's default batch of 5 would trickle.
            "spark.kubernetes.allocation.batch.size": str(max(executor.instances, 1)),
        }
    )
    for role, present in has_containers.items():
        if present:
            conf[f"spark.kubernetes.{role}.podTemplateContainerName"] = CONTAINER_NAMES[role]
    if spec.image:
        conf["spark.kubernetes.container.image"] = spec.image
    if spec.imagePullPolicy:
        conf["spark.kubernetes.container.image.pullPolicy"] = spec.imagePullPolicy
    if spec.imagePullSecrets:
        conf["spark.kubernetes.container.image.pullSecrets"] = ",".join(spec.imagePullSecrets)
    for key, value in spec.nodeSelector.items():
        conf[f"spark.kubernetes.node.selector.{key}"] = value
    if executor.deleteOnTermination is not None:
        conf["spark.kubernetes.executor.deleteOnTermination"] = str(executor.deleteOnTermination).lower()
    if executor.dynamic:
        conf["spark.dynamicAllocation.enabled"] = "true"
        conf.setdefault("spark.dynamicAllocation.shuffleTracking.enabled", "true")
        conf["spark.dynamicAllocation.minExecutors"] = str(executor.gang_min)
        conf["spark.dynamicAllocation.maxExecutors"] = str(executor.gang_max)
        conf["spark.dynamicAllocation.initialExecutors"] = str(executor.instances)
    _pod_conf(job, "driver", labels, conf)
    _pod_conf(job, "executor", labels, conf)
    _rapids_conf(job, conf)
    return conf


def deps_args(job: JobSpec, jars_extra: list[str] | None = None) -> list[str]:
    """spark-submit's dependency options, in argv form."""
    deps = job.spec.deps
    jars = [*deps.jars, *(jars_extra or [])]
    if job.spec.rapids is not None and job.spec.rapids.enabled and job.spec.rapids.jar:
        jars.append(job.spec.rapids.jar)
    args: list[str] = []
    for flag, values in (
        ("--jars", jars),
        ("--py-files", deps.pyFiles),
        ("--files", deps.files),
        ("--archives", deps.archives),
        ("--packages", deps.packages),
        ("--exclude-packages", deps.excludePackages),
        ("--repositories", deps.repositories),
    ):
        if values:
            args += [flag, ",".join(values)]
    return args


def conf_args(conf: dict[str, str]) -> list[str]:
    args: list[str] = []
    for key in sorted(conf):
        args += ["--conf", f"{key}={conf[key]}"]
    return args


def _spark_submit_command() -> tuple[str, dict[str, str]]:
    """pyspark's spark-submit and the variables it needs; without pyspark (the `bigk[spark]` extra), the
    `spark-submit` of a Spark installation on PATH, so `bigk render` works in a light install."""
    try:
        return str(spark_submit()), submit_env()
    except SpecError:
        return "spark-submit", {}


def build_submission(job: JobSpec, run_id: str, master: str, workdir: Path,
                     level: Level = "restricted") -> Submission:
    """Everything needed to submit one run of `job` to the Kubernetes API at `master` (k8s://...).

    `level`: the Pod Security Standards level the install's spec policy grants the job.
    """
    if not master.startswith("k8s://"):
        raise SpecError(f"master {master!r} must be a Kubernetes URL such as k8s://https://host:6443")
    if not run_id or len(run_id) > 63:
        raise SpecError(f"run id {run_id!r} must be 1-63 characters")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    gang = gang_name(job.metadata.name, run_id)
    labels = bigk_labels(job, run_id)
    templates: dict[str, dict[str, Any]] = {}
    has_containers: dict[str, bool] = {}
    paths: dict[str, Path] = {}
    for role in ("driver", "executor"):
        templates[role], has_containers[role] = pod_template(job, role, labels, bigk_annotations(job, role), level)
        paths[role] = workdir / f"{gang}-{role}-template.yaml"
        paths[role].write_text(yaml.safe_dump(templates[role], sort_keys=False), encoding="utf-8")
    conf = build_conf(job, run_id, paths, has_containers)
    command, env = _spark_submit_command()
    argv = [command, "--master", master, "--deploy-mode", "cluster", "--name", job.metadata.name]
    if job.spec.mainClass:
        argv += ["--class", job.spec.mainClass]
    if job.spec.proxyUser:
        argv += ["--proxy-user", job.spec.proxyUser]
    argv += deps_args(job)
    argv += conf_args(conf)
    argv.append(job.spec.mainApplicationFile)
    argv += list(job.spec.arguments)
    return Submission(
        argv=argv,
        env=env,
        conf=conf,
        driver_template=templates["driver"],
        executor_template=templates["executor"],
        driver_template_path=paths["driver"],
        executor_template_path=paths["executor"],
        driver_pod_name=driver_pod_name(job.metadata.name, run_id),
        namespace=job.metadata.namespace,
        gang=gang,
        labels=labels,
        config_maps=[cm.manifest(job.metadata.namespace) for cm in job.spec.configMaps],
        resource_type={"Python": "python", "R": "r"}.get(job.spec.type, "java"),
    )
