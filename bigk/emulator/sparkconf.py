"""Spark configuration as the simulated driver sees it, and the executor pods it builds.

A driver submitted by `spark-submit` reads `spark.properties` from its
`spark-drv-...-conf-map` configmap (mounted into the driver pod) and the executor
pod template from `...-driver-podspec-conf-map`; the simulation reads the same
configmaps. A driver pod created directly (no such configmap) is described by
annotations instead:

- `bigk.io/sim-spark-conf`: a JSON object of Spark properties (any key below);
- shortcuts `bigk.io/sim-executors` (spark.executor.instances),
  `bigk.io/sim-executor-cpu` (spark.executor.cores), `bigk.io/sim-executor-memory`
  (spark.executor.memory), `bigk.io/sim-executor-gpus`
  (spark.executor.resource.gpu.amount), `bigk.io/sim-batch-size`
  (spark.kubernetes.allocation.batch.size), `bigk.io/sim-batch-delay`
  (spark.kubernetes.allocation.batch.delay);
- `bigk.io/sim-executor-template`: an executor pod template (YAML or JSON).
In that case executors use the driver's schedulerName unless the conf names one,
and inherit the driver's `bigk.io/*` labels.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from bigk.cluster.labels import SPARK_APP_NAME, SPARK_APP_SELECTOR, SPARK_EXEC_ID, SPARK_ROLE
from bigk.cluster.model import GPU_RESOURCE
from bigk.cluster.quantity import QuantityError, spark_memory_to_mib
from bigk.emulator import spark_volumes
from bigk.emulator.store import Obj
from bigk.spark.driver_pod import non_jvm
from bigk.spec.gang import spark_overhead_mib

SIM_CONF_ANNOTATION = "bigk.io/sim-spark-conf"
SIM_TEMPLATE_ANNOTATION = "bigk.io/sim-executor-template"
SIM_SHORTCUTS = {
    "bigk.io/sim-executors": "spark.executor.instances",
    "bigk.io/sim-executor-cpu": "spark.executor.cores",
    "bigk.io/sim-executor-memory": "spark.executor.memory",
    "bigk.io/sim-executor-gpus": "spark.executor.resource.gpu.amount",
    "bigk.io/sim-batch-size": "spark.kubernetes.allocation.batch.size",
    "bigk.io/sim-batch-delay": "spark.kubernetes.allocation.batch.delay",
}
EXECUTOR_CONTAINER = "spark-kubernetes-executor"


def parse_properties(text: str) -> dict[str, str]:
    """Java `.properties` text (what Spark writes with Properties.store) to a dict."""
    result: dict[str, str] = {}
    buffer = ""
    for raw in text.splitlines():
        line = raw.lstrip()
        if not buffer and (not line or line[0] in "#!"):
            continue
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:  # continued on the next line
            buffer += line[:-1]
            continue
        key, value = _split_property(buffer + line)
        buffer = ""
        result[_unescape(key)] = _unescape(value)
    if buffer:
        key, value = _split_property(buffer)
        result[_unescape(key)] = _unescape(value)
    return result


def _split_property(line: str) -> tuple[str, str]:
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\":
            i += 2
            continue
        if ch in "=: \t":
            key = line[:i]
            rest = line[i:].lstrip(" \t")
            if rest[:1] in ("=", ":") and ch in " \t" or ch in "=:":
                rest = rest[1:]
            return key, rest.lstrip(" \t")
        i += 1
    return line, ""


def _unescape(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        esc = m.group(1)
        if esc.startswith("u"):
            return chr(int(esc[1:], 16))
        return {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(esc, esc)

    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", repl, text)


def parse_time_seconds(value: str | int | float, default_unit: str = "ms") -> float:
    """Spark time strings ('1s', '500ms', '2min'); a bare number uses `default_unit`."""
    text = str(value).strip().lower()
    m = re.match(r"^([0-9]*\.?[0-9]+)\s*(us|ms|s|m|min|h|d)?$", text)
    if not m:
        raise ValueError(f"invalid Spark time {value!r}")
    unit = m.group(2) or default_unit
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}[unit]
    return float(m.group(1)) * scale


def conf_from_annotations(driver: Obj) -> dict[str, str]:
    """Spark properties for a driver pod created without spark-submit (see module docstring)."""
    annotations = driver["metadata"].get("annotations") or {}
    conf: dict[str, str] = {}
    if annotations.get(SIM_CONF_ANNOTATION):
        try:
            loaded = json.loads(annotations[SIM_CONF_ANNOTATION])
        except ValueError:
            loaded = {}
        if isinstance(loaded, dict):
            conf.update({str(k): str(v) for k, v in loaded.items()})
    for annotation, key in SIM_SHORTCUTS.items():
        if annotation in annotations:
            conf[key] = annotations[annotation]
    return conf


def load_template(text: str | None) -> Obj | None:
    if not text:
        return None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return doc if isinstance(doc, dict) else None


def read_template_file(path: str | None) -> Obj | None:
    """The executor template from a local file, when the emulator can see it (standalone use)."""
    if not path:
        return None
    try:
        return load_template(Path(path).read_text(encoding="utf-8"))
    except OSError:
        return None


def _prefixed(conf: dict[str, str], prefix: str) -> dict[str, str]:
    return {k[len(prefix) :]: v for k, v in conf.items() if k.startswith(prefix) and len(k) > len(prefix)}


def executor_memory_mib(conf: dict[str, str]) -> int:
    """spark.executor.memory plus overhead (explicit, or Spark's rule: `bigk.spec.gang.spark_overhead_mib`)."""
    memory = spark_memory_to_mib(conf.get("spark.executor.memory", "1g"))
    if conf.get("spark.executor.memoryOverhead"):
        overhead = spark_memory_to_mib(conf["spark.executor.memoryOverhead"])
    else:
        overhead = spark_overhead_mib(memory, "executor", conf, non_jvm(conf))
    pyspark = (
        spark_memory_to_mib(conf["spark.executor.pyspark.memory"]) if conf.get("spark.executor.pyspark.memory") else 0
    )
    return memory + overhead + pyspark


def _sanitize_label(value: str) -> str:
    text = re.sub(r"[^a-z0-9\-.]", "-", value.lower())[:63]
    return text.strip("-.") or "spark"


def executor_pod(
    driver: Obj, conf: dict[str, str], exec_id: int, template: Obj | None, *, fallback: bool = False
) -> Obj:
    """The executor pod Spark's driver would create (BasicExecutorFeatureStep, simplified)."""
    dmeta = driver["metadata"]
    dlabels = dmeta.get("labels") or {}
    namespace = dmeta.get("namespace", "default")
    prefix = conf.get("spark.kubernetes.executor.podNamePrefix") or re.sub(r"-driver$", "", dmeta["name"])
    name = f"{prefix}-exec-{exec_id}"
    app_id = dlabels.get(SPARK_APP_SELECTOR) or conf.get("spark.app.id", dmeta["name"])
    app_name = dlabels.get(SPARK_APP_NAME) or _sanitize_label(conf.get("spark.app.name", prefix))
    pod: Obj = json.loads(json.dumps(template)) if template else {}
    meta = pod.setdefault("metadata", {}) or {}
    pod["metadata"] = meta
    for stale in ("name", "namespace", "uid", "resourceVersion", "generateName"):
        meta.pop(stale, None)
    labels = dict(meta.get("labels") or {})
    if fallback:
        labels.update({k: v for k, v in dlabels.items() if k.startswith("bigk.io/")})
    labels.update(_prefixed(conf, "spark.kubernetes.executor.label."))
    labels.update(
        {
            SPARK_APP_SELECTOR: app_id,
            SPARK_ROLE: "executor",
            SPARK_EXEC_ID: str(exec_id),
            SPARK_APP_NAME: app_name,
            "spark-exec-resourceprofile-id": "0",
        }
    )
    meta["labels"] = labels
    annotations = dict(meta.get("annotations") or {})
    annotations.update(_prefixed(conf, "spark.kubernetes.executor.annotation."))
    if annotations:
        meta["annotations"] = annotations
    meta["name"] = name
    meta["namespace"] = namespace
    meta["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Pod", "name": dmeta["name"], "uid": dmeta["uid"], "controller": True}
    ]

    spec = pod.setdefault("spec", {}) or {}
    pod["spec"] = spec
    containers = list(spec.get("containers") or [])
    wanted = conf.get("spark.kubernetes.executor.podTemplateContainerName")
    index = next((i for i, c in enumerate(containers) if c.get("name") == wanted), 0) if wanted else 0
    container = dict(containers[index]) if containers else {}
    container.setdefault("name", EXECUTOR_CONTAINER)
    image = (
        conf.get("spark.kubernetes.executor.container.image")
        or conf.get("spark.kubernetes.container.image")
        or container.get("image")
        or _driver_image(driver)
    )
    container["image"] = image
    container.setdefault("imagePullPolicy", conf.get("spark.kubernetes.container.image.pullPolicy", "IfNotPresent"))
    container["args"] = ["executor"]
    cores = conf.get("spark.executor.cores", "1")
    memory_mib = executor_memory_mib(conf)
    env = [e for e in container.get("env") or [] if isinstance(e, dict)]
    env += [
        {"name": "SPARK_USER", "value": conf.get("spark.kubernetes.driverEnv.SPARK_USER", "root")},
        {
            "name": "SPARK_DRIVER_URL",
            "value": f"spark://CoarseGrainedScheduler@{dmeta['name']}-svc.{namespace}.svc:7078",
        },
        {"name": "SPARK_EXECUTOR_CORES", "value": str(cores)},
        {"name": "SPARK_EXECUTOR_MEMORY", "value": conf.get("spark.executor.memory", "1g")},
        {"name": "SPARK_APPLICATION_ID", "value": app_id},
        {"name": "SPARK_EXECUTOR_ID", "value": str(exec_id)},
        {"name": "SPARK_RESOURCE_PROFILE_ID", "value": "0"},
        {"name": "SPARK_EXECUTOR_POD_NAME", "value": name},
        {"name": "SPARK_EXECUTOR_POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
    ]
    container["env"] = env
    container.setdefault("ports", [{"containerPort": 7079, "name": "blockmanager", "protocol": "TCP"}])
    resources = dict(container.get("resources") or {})
    requests = dict(resources.get("requests") or {})
    limits = dict(resources.get("limits") or {})
    requests["cpu"] = conf.get("spark.kubernetes.executor.request.cores", str(cores))
    requests["memory"] = f"{memory_mib}Mi"
    limits["memory"] = f"{memory_mib}Mi"
    if conf.get("spark.kubernetes.executor.limit.cores"):
        limits["cpu"] = conf["spark.kubernetes.executor.limit.cores"]
    gpu_amount = conf.get("spark.executor.resource.gpu.amount")
    if gpu_amount and float(gpu_amount) > 0:
        vendor = conf.get("spark.executor.resource.gpu.vendor", "nvidia.com")
        resource = f"{vendor}/gpu" if vendor else GPU_RESOURCE
        limits[resource] = str(int(float(gpu_amount)))
    resources["requests"] = requests
    resources["limits"] = limits
    container["resources"] = resources
    spark_volumes.mount(spec, container, spark_volumes.executor_claims(conf, prefix, exec_id))
    containers = containers or [container]
    containers[index] = container
    spec["containers"] = containers
    spec["hostname"] = name[:63].rstrip("-.")
    spec["restartPolicy"] = "Never"
    selector = dict(spec.get("nodeSelector") or {})
    selector.update(_prefixed(conf, "spark.kubernetes.node.selector."))
    selector.update(_prefixed(conf, "spark.kubernetes.executor.node.selector."))
    if selector:
        spec["nodeSelector"] = selector
    scheduler = conf.get("spark.kubernetes.executor.scheduler.name") or conf.get("spark.kubernetes.scheduler.name")
    if not scheduler and fallback:
        scheduler = (driver.get("spec") or {}).get("schedulerName")
    if scheduler:
        spec["schedulerName"] = scheduler
    if not spec.get("priorityClassName"):
        spec.pop("priorityClassName", None)
    pod["apiVersion"] = "v1"
    pod["kind"] = "Pod"
    pod.pop("status", None)
    return pod


def _driver_image(driver: Obj) -> str:
    containers = (driver.get("spec") or {}).get("containers") or [{}]
    return str(containers[0].get("image", "spark:emulated"))


def validate_memory(conf: dict[str, str]) -> str:
    """'' when the executor memory settings parse, else the reason (the driver fails like Spark would)."""
    try:
        executor_memory_mib(conf)
    except (QuantityError, ValueError) as exc:
        return str(exc)
    return ""
