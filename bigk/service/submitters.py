"""How a run reaches the cluster, and how the service reads a run's pods back.

Two submit modes, both starting from the same `Submission` that `bigk render`
shows (argv, conf, driver and executor pod templates):

- `spark`: pyspark's own `spark-submit --deploy-mode cluster` (through
  `bigk.kube.submit.SparkSubmitter`). What production uses; about 10 s and a
  JVM per run.
- `direct`: the service creates the driver pod itself through the Kubernetes
  API, the way spark-submit would (pod template + `spark.kubernetes.driver.*`
  conf, the conf as a `spark-drv-*-conf-map` config map). Used with the embedded
  emulated cluster, whose simulated Spark driver then creates the executors. It
  is a development and test mode: on a real cluster a real driver image needs
  what spark-submit also uploads, so use `spark` there.

Pods are found by label (`bigk.io/run`), never by memory, so this works the same
after a restart.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, cast

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from bigk.cluster import labels as L
from bigk.errors import BigkError

log = logging.getLogger(__name__)


class SubmitError(BigkError):
    """A run could not be handed to the cluster."""


def driver_pod_name(job: str, run_id: str) -> str:
    """The deterministic driver pod name: a second submit of one run collides instead of duplicating."""
    from bigk.spec.naming import driver_pod_name as spec_driver_pod_name

    return spec_driver_pod_name(job, run_id)


def pod_summary(pod: Any) -> dict[str, Any]:
    """What the store keeps of one pod: name, role, node, phase."""
    labels = pod.metadata.labels or {}
    return {
        "name": pod.metadata.name,
        "role": labels.get(L.SPARK_ROLE, "pod"),
        "node": (pod.spec.node_name if pod.spec is not None else None) or "",
        "phase": (pod.status.phase if pod.status is not None else None) or "Pending",
    }


class RunSubmitter(Protocol):
    mode: str
    policy: Any  # the install's SpecPolicy (None: the built-in default)

    def submit(self, spec: Any, run_id: str) -> str:
        """Hand one run of `spec` (a JobSpec) to the cluster; return the driver pod name."""
        ...

    def kill(self, namespace: str, run_id: str) -> None:
        """Delete every pod of the run (driver first)."""
        ...


class ClusterPods:
    """Reads and deletes bigk run pods by label."""

    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)

    def pods_by_run(self) -> dict[str, list[Any]]:
        items: list[Any] = list(self.core.list_pod_for_all_namespaces(label_selector=L.RUN_LABEL).items)
        out: dict[str, list[Any]] = {}
        for pod in items:
            run = (pod.metadata.labels or {}).get(L.RUN_LABEL)
            if run:
                out.setdefault(run, []).append(pod)
        return out

    def run_pods(self, namespace: str, run_id: str) -> list[Any]:
        return list(self.core.list_namespaced_pod(namespace, label_selector=f"{L.RUN_LABEL}={run_id}").items)

    def delete_run_pods(self, namespace: str, run_id: str) -> int:
        pods = self.run_pods(namespace, run_id)
        pods.sort(key=lambda p: (p.metadata.labels or {}).get(L.SPARK_ROLE) != "driver")
        for pod in pods:
            try:
                self.core.delete_namespaced_pod(pod.metadata.name, namespace, grace_period_seconds=0)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        return len(pods)


def _prefixed(conf: Mapping[str, str], prefix: str) -> dict[str, str]:
    return {k[len(prefix):]: str(v) for k, v in conf.items() if k.startswith(prefix)}


def _mib(text: str) -> int:
    from bigk.cluster.quantity import spark_memory_to_mib

    return spark_memory_to_mib(text)


def build_driver_pod(submission: Any, job: str, run_id: str, namespace: str) -> dict[str, Any]:
    """The driver pod spark-submit would create for `submission`, as a manifest."""
    conf: dict[str, str] = {k: str(v) for k, v in dict(submission.conf).items()}
    template = submission.driver_template
    pod: dict[str, Any] = copy.deepcopy(template) if isinstance(template, dict) else {}
    pod.setdefault("apiVersion", "v1")
    pod.setdefault("kind", "Pod")
    meta = pod.setdefault("metadata", {})
    name = conf.get("spark.kubernetes.driver.pod.name") or driver_pod_name(job, run_id)
    meta["name"] = name
    meta["namespace"] = namespace
    labels = meta.setdefault("labels", {})
    labels.update(_prefixed(conf, "spark.kubernetes.driver.label."))
    labels.setdefault(L.SPARK_APP_SELECTOR, f"spark-{run_id}")
    labels[L.SPARK_ROLE] = "driver"
    labels.setdefault(L.SPARK_APP_NAME, conf.get("spark.app.name", job)[:63])
    labels[L.JOB_LABEL] = job
    labels[L.RUN_LABEL] = run_id
    annotations = meta.setdefault("annotations", {})
    annotations.update(_prefixed(conf, "spark.kubernetes.driver.annotation."))
    spec = pod.setdefault("spec", {})
    spec["schedulerName"] = conf.get("spark.kubernetes.scheduler.name", L.SCHEDULER_NAME)
    spec.setdefault("restartPolicy", "Never")
    spec["nodeSelector"] = {**spec.get("nodeSelector", {}), **_prefixed(conf, "spark.kubernetes.node.selector."),
                            **_prefixed(conf, "spark.kubernetes.driver.node.selector.")}
    containers = spec.setdefault("containers", [{}])
    if not containers:
        containers.append({})
    main = containers[0]
    main.setdefault("name", "spark-kubernetes-driver")
    main.setdefault("image", conf.get("spark.kubernetes.driver.container.image")
                    or conf.get("spark.kubernetes.container.image", "apache/spark:4.0.0"))
    main.setdefault("args", ["driver", "--properties-file", "/opt/spark/conf/spark.properties"])
    cores = conf.get("spark.kubernetes.driver.request.cores") or conf.get("spark.driver.cores", "1")
    heap = _mib(conf.get("spark.driver.memory", "1g"))
    overhead_text = conf.get("spark.driver.memoryOverhead")
    factor = float(conf.get("spark.driver.memoryOverheadFactor", conf.get("spark.kubernetes.memoryOverheadFactor",
                                                                         "0.1")))
    overhead = _mib(overhead_text) if overhead_text else max(384, int(heap * factor))
    resources = main.setdefault("resources", {})
    requests = resources.setdefault("requests", {})
    requests.setdefault("cpu", str(cores))
    requests.setdefault("memory", f"{heap + overhead}Mi")
    limits = resources.setdefault("limits", {})
    limits.setdefault("memory", f"{heap + overhead}Mi")
    if "spark.kubernetes.driver.limit.cores" in conf:
        limits.setdefault("cpu", conf["spark.kubernetes.driver.limit.cores"])
    env = main.setdefault("env", [])
    known = {e.get("name") for e in env}
    for key, value in sorted(_prefixed(conf, "spark.kubernetes.driverEnv.").items()):
        if key not in known:
            env.append({"name": key, "value": value})
    env.append({"name": "SPARK_CONF_DIR", "value": "/opt/spark/conf"})
    volumes = spec.setdefault("volumes", [])
    mounts = main.setdefault("volumeMounts", [])
    volumes.append({"name": "spark-conf-volume-driver", "configMap": {"name": config_map_name(run_id)}})
    mounts.append({"name": "spark-conf-volume-driver", "mountPath": "/opt/spark/conf"})
    volumes.append({"name": "pod-template-volume", "configMap": {
        "name": template_map_name(name), "items": [{"key": POD_TEMPLATE_KEY, "path": "pod-spec-template.yml"}]}})
    mounts.append({"name": "pod-template-volume", "mountPath": "/opt/spark/pod-template"})
    return pod


def executor_request(spec: Any) -> str:
    """The driver annotation describing one executor (see `bigk.kube.gangs`)."""
    from bigk.cluster.executor_request import encode_executor_request
    from bigk.spec.gang import node_selector_for, pod_request, tolerations_for

    return encode_executor_request(pod_request(spec, "executor"), node_selector_for(spec, "executor"),
                                   [t.to_cluster() for t in tolerations_for(spec, "executor")])


POD_TEMPLATE_KEY = "podspec-configmap-key"  # Spark's key for the executor template in its config map


def config_map_name(run_id: str) -> str:
    return f"spark-drv-{run_id}-conf-map"


def template_map_name(driver_pod: str) -> str:
    prefix = driver_pod[: -len("-driver")] if driver_pod.endswith("-driver") else driver_pod
    return f"{prefix}-driver-podspec-conf-map"


def properties_text(conf: Mapping[str, Any]) -> str:
    """Java properties, as spark-submit writes `spark.properties` (keys sorted, `=` escaped)."""
    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace("\n", "\\n").replace("=", "\\=").replace(":", "\\:")

    return "".join(f"{esc(str(k))}={esc(str(v))}\n" for k, v in sorted(conf.items()))


def apply_config_maps(core: client.CoreV1Api, submission: Any) -> None:
    """Create (or update) the ConfigMaps the job brings along (`spec.configMaps`) before its driver starts."""
    for manifest in getattr(submission, "config_maps", []) or []:
        namespace = manifest["metadata"]["namespace"]
        name = manifest["metadata"]["name"]
        try:
            core.create_namespaced_config_map(namespace, manifest)
        except ApiException as exc:
            if exc.status != 409:
                raise SubmitError(f"cannot create ConfigMap {namespace}/{name}: {exc.status} {exc.reason}") from None
            core.replace_namespaced_config_map(name, namespace, manifest)


class DirectSubmitter:
    """Creates the driver pod (and its conf map) through the Kubernetes API. See the module docstring."""

    mode = "direct"
    policy: Any = None  # the install's SpecPolicy, enforced again at every submission

    def __init__(self, api: client.ApiClient, master_url: str, workdir: str = ".") -> None:
        self.core = client.CoreV1Api(api)
        self.pods = ClusterPods(api)
        self.master_url = master_url
        self.workdir = workdir

    def submit(self, spec: Any, run_id: str) -> str:
        from bigk.spark.submit import build_submission
        from bigk.spec.policy import enforce

        job = spec.metadata.name
        namespace = spec.metadata.namespace
        try:
            level = enforce(spec, self.policy)
            submission = build_submission(spec, run_id, self.master_url, Path(self.workdir), level=level)
        except BigkError as exc:
            raise SubmitError(f"job {job}: cannot build the submission: {exc}") from None
        conf = {k: str(v) for k, v in dict(submission.conf).items()}
        conf.setdefault("spark.app.id", f"spark-{run_id}")
        manifest = build_driver_pod(submission, job, run_id, namespace)
        annotations = manifest["metadata"]["annotations"]
        if L.EXECUTOR_REQUEST_ANNOTATION not in annotations:
            # The gang's executor request, so bigk reserves the executors before the driver creates them.
            # (Set here only when the rendered submission does not carry it already.)
            annotations[L.EXECUTOR_REQUEST_ANNOTATION] = executor_request(spec)
        labels = {L.JOB_LABEL: job, L.RUN_LABEL: run_id}
        maps = [
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name=config_map_name(run_id), namespace=namespace,
                                                            labels=labels),
                               data={"spark.properties": properties_text(conf)}),
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name=template_map_name(manifest["metadata"]["name"]),
                                                            namespace=namespace, labels=labels),
                               data={POD_TEMPLATE_KEY: yaml.safe_dump(submission.executor_template,
                                                                      sort_keys=False)}),
        ]
        try:
            apply_config_maps(self.core, submission)
            for conf_map in maps:
                try:
                    self.core.create_namespaced_config_map(namespace, conf_map)
                except ApiException as exc:
                    if exc.status != 409:
                        raise
            self.core.create_namespaced_pod(namespace, cast(Any, manifest))
        except ApiException as exc:
            if exc.status == 409:  # the driver exists: this run was already submitted
                return str(manifest["metadata"]["name"])
            raise SubmitError(f"job {job}: API server refused the driver pod: {exc.status} {exc.reason}") from None
        except SubmitError as exc:
            raise SubmitError(f"job {job}: {exc}") from None
        except Exception as exc:  # urllib3 connection errors and the like
            raise SubmitError(f"job {job}: cannot reach the API server: {exc}") from None
        log.info("event=run_submitted mode=direct job=%s run=%s driver=%s", job, run_id, manifest["metadata"]["name"])
        return str(manifest["metadata"]["name"])

    def kill(self, namespace: str, run_id: str) -> None:
        self.pods.delete_run_pods(namespace, run_id)
        try:
            maps: list[Any] = list(self.core.list_namespaced_config_map(
                namespace, label_selector=f"{L.RUN_LABEL}={run_id}").items)
            for conf_map in maps:
                self.core.delete_namespaced_config_map(conf_map.metadata.name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                log.warning("event=conf_map_delete_failed run=%s status=%s", run_id, exc.status)


class SparkSubmitSubmitter:
    """Runs pyspark's `spark-submit` in cluster mode (waitAppCompletion=false) through the kube backend."""

    mode = "spark"
    policy: Any = None  # the install's SpecPolicy, enforced again at every submission

    def __init__(self, api: client.ApiClient, master_url: str, workdir: str = ".",
                 kubeconfig: str | None = None) -> None:
        from bigk.kube.submit import SparkSubmitter

        self.inner = SparkSubmitter(master_url, api=api, kubeconfig=kubeconfig)
        self.core = client.CoreV1Api(api)
        self.pods = ClusterPods(api)
        self.master_url = master_url
        self.workdir = workdir

    def submit(self, spec: Any, run_id: str) -> str:
        from bigk.spark.submit import build_submission
        from bigk.spec.policy import enforce

        job = spec.metadata.name
        try:
            level = enforce(spec, self.policy)
            submission = build_submission(spec, run_id, self.master_url, Path(self.workdir), level=level)
            apply_config_maps(self.core, submission)
            self.inner.submit(submission)
        except BigkError as exc:
            raise SubmitError(f"job {job}: spark-submit failed: {exc}") from None
        log.info("event=run_submitted mode=spark job=%s run=%s", job, run_id)
        return driver_pod_name(job, run_id)

    def kill(self, namespace: str, run_id: str) -> None:
        self.pods.delete_run_pods(namespace, run_id)
