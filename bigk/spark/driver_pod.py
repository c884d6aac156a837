"""The driver pod spark-submit would create, for the `direct` submit mode and the emulator's simulated driver.

In cluster mode spark-submit builds the driver pod from the driver pod template
and the `spark.kubernetes.driver.*` conf, mounts the conf as `spark.properties`
from a `spark-drv-*-conf-map` ConfigMap and the executor template from a second
one. `build_driver_pod` does the same from a rendered `Submission`, so that
`bigk serve --submit-mode direct` (the service creating the pod itself) runs what
spark-submit would have run; the names and keys here are also what the simulated
Spark driver (`bigk.emulator.driver`) reads back.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bigk.cluster import labels as L
from bigk.cluster.quantity import spark_memory_to_mib
from bigk.spec.gang import spark_overhead_mib
from bigk.spec.naming import driver_pod_name as spec_driver_pod_name

if TYPE_CHECKING:
    from bigk.spark.submit import Submission


def non_jvm(conf: Mapping[str, str], default: str = "java") -> bool:
    """A Python or R application (by `spark.kubernetes.resource.type`): Spark's larger default overhead applies."""
    return str(conf.get(RESOURCE_TYPE_KEY, default)).lower() in ("python", "r")


def _prefixed(conf: Mapping[str, str], prefix: str) -> dict[str, str]:
    return {k[len(prefix):]: str(v) for k, v in conf.items() if k.startswith(prefix)}


def build_driver_pod(submission: Submission, job: str, run_id: str, namespace: str) -> dict[str, Any]:
    """The driver pod spark-submit would create for `submission`, as a manifest."""
    conf: dict[str, str] = {k: str(v) for k, v in dict(submission.conf).items()}
    template = submission.driver_template
    pod: dict[str, Any] = copy.deepcopy(template) if isinstance(template, dict) else {}
    pod.setdefault("apiVersion", "v1")
    pod.setdefault("kind", "Pod")
    meta = pod.setdefault("metadata", {})
    name = conf.get("spark.kubernetes.driver.pod.name") or spec_driver_pod_name(job, run_id)
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
    heap = spark_memory_to_mib(conf.get("spark.driver.memory", "1g"))
    overhead_text = conf.get("spark.driver.memoryOverhead")
    if overhead_text:
        overhead = spark_memory_to_mib(overhead_text)
    else:  # Spark's rule, as the scheduler sized the pod (bigk.spec.gang)
        overhead = spark_overhead_mib(heap, "driver", conf, non_jvm(conf, submission.resource_type))
    resources = main.setdefault("resources", {})
    requests = resources.setdefault("requests", {})
    requests.setdefault("cpu", str(cores))
    requests.setdefault("memory", f"{heap + overhead}Mi")
    limits = resources.setdefault("limits", {})
    limits.setdefault("memory", f"{heap + overhead}Mi")
    if "spark.kubernetes.driver.limit.cores" in conf:
        limits.setdefault("cpu", conf["spark.kubernetes.driver.limit.cores"])
    if not main.get("ports"):  # as Spark's BasicDriverFeatureStep names them; `bigk ui` dials `spark-ui`
        main["ports"] = [
            {"name": "driver-rpc-port", "containerPort": int(conf.get("spark.driver.port", "7078")), "protocol": "TCP"},
            {"name": "blockmanager", "containerPort": int(conf.get("spark.driver.blockManager.port")
                                                         or conf.get("spark.blockManager.port", "7079")),
             "protocol": "TCP"},
            {"name": UI_PORT_NAME, "containerPort": int(conf.get("spark.ui.port", str(DEFAULT_UI_PORT))),
             "protocol": "TCP"}]
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


UI_PORT_NAME = "spark-ui"  # the driver container's port for the Spark UI (spark.ui.port), as Spark names it
DEFAULT_UI_PORT = 4040


def ui_port(pod: Mapping[str, Any]) -> int:
    """The port a driver pod's Spark UI listens on: its container port named `spark-ui` (spark-submit and
    bigk's direct mode both declare it from spark.ui.port), else Spark's default."""
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == UI_PORT_NAME and port.get("containerPort"):
                return int(port["containerPort"])
    return DEFAULT_UI_PORT


# spark-submit writes the application's kind into the driver's spark.properties; Spark sizes executors by it.
RESOURCE_TYPE_KEY = "spark.kubernetes.resource.type"  # java | python | r
POD_TEMPLATE_KEY = "podspec-configmap-key"  # Spark's key for the executor template in its config map
SPARK_PROPERTIES_KEY = "spark.properties"  # the conf map's key, mounted as /opt/spark/conf/spark.properties


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
