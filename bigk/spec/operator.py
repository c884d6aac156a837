"""Kubeflow Spark Operator manifests (`sparkoperator.k8s.io/v1beta2`) converted to bigk job specs.

Covers every field of SparkApplicationSpec, SparkPodSpec, DriverSpec, ExecutorSpec,
Dependencies, RestartPolicy, DynamicAllocation, BatchSchedulerConfiguration and
ScheduledSparkApplicationSpec. Each field is either mapped (to a bigk field, a
Spark setting or the pod template) or named in the `unsupported` list with the
reason, so nothing is dropped silently. Pod-level Kubernetes fields the bigk
format has no field for (volumes, affinity, security contexts, sidecars, ...)
go into the driver/executor `template`, which Spark applies as a pod template.

Older manifests (`v1beta1`, `v1alpha1`) are read as v1beta2 with a note; their
differences (a bare `restartPolicy: Never`, fractional `cores`) are translated.
Queue names of YuniKorn (`root.team.etl`) and Volcano map onto bigk queue names.
"""

from __future__ import annotations

import copy
from typing import Any

from bigk.spec.model import API_VERSION, KIND
from bigk.spec.operator_monitoring import MOUNT as MONITORING_MOUNT
from bigk.spec.operator_monitoring import as_list, wiring
from bigk.spec.queue_names import QueueNameError, queue_name

OPERATOR_API = "sparkoperator.k8s.io/v1beta2"
OLDER_APIS = ("sparkoperator.k8s.io/v1beta1", "sparkoperator.k8s.io/v1alpha1")
NOTE = "imported as "  # reasons that start with this are mappings worth knowing, not losses
OPERATOR_KINDS = ("SparkApplication", "ScheduledSparkApplication")
DRIVER_CONTAINER = "spark-kubernetes-driver"
EXECUTOR_CONTAINER = "spark-kubernetes-executor"

# Fields copied as they are (same name, same meaning).
_SPEC_SAME = (
    "type",
    "sparkVersion",
    "proxyUser",
    "image",
    "imagePullPolicy",
    "imagePullSecrets",
    "mainClass",
    "mainApplicationFile",
    "arguments",
    "sparkConf",
    "hadoopConf",
    "nodeSelector",
)
_POD_SAME = (
    "cores",
    "coreLimit",
    "coreRequest",
    "memory",
    "memoryOverhead",
    "image",
    "labels",
    "annotations",
    "nodeSelector",
    "tolerations",
    "serviceAccount",
    "javaOptions",
)
# SparkPodSpec fields that become pod-level template fields: operator name -> template spec name.
_POD_TEMPLATE_SPEC = {
    "affinity": "affinity",
    "podSecurityContext": "securityContext",
    "hostNetwork": "hostNetwork",
    "dnsConfig": "dnsConfig",
    "terminationGracePeriodSeconds": "terminationGracePeriodSeconds",
    "hostAliases": "hostAliases",
    "shareProcessNamespace": "shareProcessNamespace",
    "initContainers": "initContainers",
    "priorityClassName": "priorityClassName",
}
# ... and those that belong to the main Spark container.
_POD_TEMPLATE_CONTAINER = {
    "securityContext": "securityContext",
    "volumeMounts": "volumeMounts",
    "lifecycle": "lifecycle",
    "ports": "ports",
}
_UNSUPPORTED_SPEC = {
    "timeToLiveSeconds": "bigk keeps finished runs' records, not SparkApplication objects; pods are cleaned up by "
    "Spark (deleteOnTermination) and run history by successfulRunHistoryLimit / failedRunHistoryLimit",
    "sparkUIOptions": "bigk creates no UI Service or Ingress; reach the UI with `bigk ui RUN`",
    "driverIngressOptions": "bigk creates no driver ingresses; reach the UI with `bigk ui RUN`",
    "kerberos": "set spark.kerberos.principal / spark.kerberos.keytab in sparkConf and mount the keytab secret with "
    "secrets",
}
def bigk_queue(name: str) -> str:
    """The bigk queue for a YuniKorn (`root.team.etl`) or Volcano queue name (see `bigk.spec.queue_names.queue_name`).

    A name bigk cannot read is passed on unchanged, so that validation reports it at its position.
    """
    try:
        return queue_name(name)
    except QueueNameError:
        return name


SPARK_CONF_DIR = "/etc/spark/conf"


def _with_spark_conf_map(pod: Any, name: str) -> Any:
    """The pod spec plus the operator's `sparkConfigMap` wiring: the ConfigMap at /etc/spark/conf, SPARK_CONF_DIR."""
    if not isinstance(pod, dict):
        return pod
    out = dict(pod)
    out["configMaps"] = [*as_list(out.get("configMaps")), {"name": name, "path": SPARK_CONF_DIR}]
    out["env"] = [*as_list(out.get("env")), {"name": "SPARK_CONF_DIR", "value": SPARK_CONF_DIR}]
    return out


def _config_map_refs(value: Any, out: set[str]) -> None:
    """Names of ConfigMaps an application refers to anywhere (volumes, env, envFrom, configMaps, conf maps)."""
    if isinstance(value, dict):
        for key in ("configMap", "configMapKeyRef", "configMapRef"):
            ref = value.get(key)
            if isinstance(ref, dict) and isinstance(ref.get("name"), str):
                out.add(ref["name"])
        for key in ("sparkConfigMap", "hadoopConfigMap"):
            if isinstance(value.get(key), str):
                out.add(value[key])
        if isinstance(value.get("configMaps"), list):
            out.update(str(i["name"]) for i in value["configMaps"] if isinstance(i, dict) and "name" in i)
        for item in value.values():
            _config_map_refs(item, out)
    elif isinstance(value, list):
        for item in value:
            _config_map_refs(item, out)


def config_map_refs(doc: Any) -> set[str]:
    """ConfigMaps a SparkApplication / ScheduledSparkApplication manifest refers to."""
    out: set[str] = set()
    if isinstance(doc, dict):
        _config_map_refs(doc.get("spec"), out)
    return out
_RESERVED_MOVES = {
    "spark.executor.instances": ("instances",),
    "spark.dynamicAllocation.minExecutors": ("minInstances",),
    "spark.dynamicAllocation.maxExecutors": ("maxInstances",),
}


class _Conversion:
    """State of one conversion: the output and the list of unsupported fields."""

    def __init__(self, source: str, app: str = "app") -> None:
        self.source = source
        self.app = app  # metadata.name: names the objects made for the application
        self.unsupported: list[str] = []

    def drop(self, path: str, reason: str) -> None:
        self.unsupported.append(f"{path}: {reason}")

    def note(self, path: str, what: str) -> None:
        """A field bigk reads differently from the operator: said once, so nothing changes silently."""
        self.unsupported.append(f"{path}: {NOTE}{what}")

    def pod(self, pod: Any, path: str, role: str, volumes: list[Any], spec_out: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(pod, dict):
            self.drop(path, "expected a mapping; left out")
            return {}
        container_name = DRIVER_CONTAINER if role == "driver" else EXECUTOR_CONTAINER
        out: dict[str, Any] = {}
        template: dict[str, Any] = copy.deepcopy(pod["template"]) if isinstance(pod.get("template"), dict) else {}
        t_spec: dict[str, Any] = template.setdefault("spec", {})
        container: dict[str, Any] = {"name": container_name}
        env: list[Any] = []
        for key, value in pod.items():
            where = f"{path}.{key}"
            if key == "cores" and isinstance(value, float) and not value.is_integer() and 0 < value < 1:
                out["cores"] = 1
                out.setdefault("coreRequest", f"{round(value * 1000)}m")
                self.note(where, f"cores: 1 with coreRequest: {round(value * 1000)}m (Spark's cores are whole)")
            elif key in _POD_SAME:
                out[key] = value
            elif key == "template":
                if not isinstance(value, dict):
                    self.drop(where, "expected a pod template mapping; left out")
            elif key == "instances" and role == "executor":
                out["instances"] = value
            elif key == "deleteOnTermination" and role == "executor":
                out["deleteOnTermination"] = value
            elif key == "gpu":
                self._gpu(value, where, out)
            elif key in _POD_TEMPLATE_SPEC:
                t_spec[_POD_TEMPLATE_SPEC[key]] = value
            elif key == "volumeMounts" and isinstance(value, list):  # beside those of secrets and configMaps
                container["volumeMounts"] = [*copy.deepcopy(value), *container.get("volumeMounts", [])]
            elif key in _POD_TEMPLATE_CONTAINER:
                container[_POD_TEMPLATE_CONTAINER[key]] = value
            elif key == "sidecars":
                t_spec["_sidecars"] = value
            elif key == "env":
                env.extend(copy.deepcopy(value) if isinstance(value, list) else [value])
            elif key == "envFrom":
                out["envFrom"] = copy.deepcopy(value)
            elif key == "envVars":
                items = value.items() if isinstance(value, dict) else []
                env.extend({"name": k, "value": v} for k, v in items)
            elif key == "envSecretKeyRefs":
                for var, ref in (value if isinstance(value, dict) else {}).items():
                    if isinstance(ref, dict):
                        env.append({"name": var, "valueFrom": {"secretKeyRef": dict(ref)}})
            elif key == "templateContainerName":
                self._rename_container(template, value, container_name, where)
            elif key in ("configMaps", "secrets"):
                self._mounts(key, value, where, volumes, container, env)
            elif key == "serviceAnnotations" and role == "driver":
                for k, v in (value if isinstance(value, dict) else {}).items():
                    spec_out.setdefault("sparkConf", {})[f"spark.kubernetes.driver.service.annotation.{k}"] = v
            elif key == "serviceLabels" and role == "driver":
                for k, v in (value if isinstance(value, dict) else {}).items():
                    spec_out.setdefault("sparkConf", {})[f"spark.kubernetes.driver.service.label.{k}"] = v
            elif key == "schedulerName":
                self.drop(where, "bigk schedules every pod of the job itself; ignored")
            elif key == "podName":
                self.drop(where, "only used in the operator's in-cluster-client mode; bigk names the driver pod")
            elif key == "kubernetesMaster":
                self.drop(where, "the driver talks to the cluster bigk submits to")
            else:
                self.drop(where, "unknown operator field; left out")
        if env:
            out["env"] = env
        sidecars = t_spec.pop("_sidecars", None)
        if len(container) > 1 or sidecars:
            containers = [c for c in t_spec.get("containers", []) if isinstance(c, dict)]
            main = next((c for c in containers if c.get("name") == container_name), None)
            if main is None:
                containers.insert(0, container)
            else:
                main.update({k: v for k, v in container.items() if k != "name"})
            if isinstance(sidecars, list):
                containers.extend(sidecars)
            t_spec["containers"] = containers
        if volumes:
            t_spec["volumes"] = [*t_spec.get("volumes", []), *copy.deepcopy(volumes)]
        if not t_spec:
            template.pop("spec")
        if template:
            out["template"] = template
        return out

    def _rename_container(self, template: dict[str, Any], name: Any, container_name: str, where: str) -> None:
        containers = (template.get("spec") or {}).get("containers") if isinstance(template.get("spec"), dict) else None
        found = [c for c in containers or [] if isinstance(c, dict) and c.get("name") == name]
        if not found:
            self.drop(where, f"no container named {name!r} in the template; left out")
            return
        found[0]["name"] = container_name
        self.note(where, f"the template's container {name!r} renamed {container_name!r}, the name bigk gives Spark")

    def _gpu(self, value: Any, where: str, out: dict[str, Any]) -> None:
        if not isinstance(value, dict):
            self.drop(where, "expected {name, quantity}; left out")
            return
        name = value.get("name", "nvidia.com/gpu")
        if name != "nvidia.com/gpu":
            self.drop(where, f"GPU resource {name!r}: bigk schedules nvidia.com/gpu only")
            return
        out["gpu"] = {"count": value.get("quantity", 1)}

    def _mounts(
        self, key: str, value: Any, where: str, volumes: list[Any], container: dict[str, Any], env: list[Any]
    ) -> None:
        for i, item in enumerate(value if isinstance(value, list) else []):
            if not isinstance(item, dict) or "name" not in item or "path" not in item:
                self.drop(f"{where}[{i}]", "needs name and path; left out")
                continue
            name, path = str(item["name"]), str(item["path"])
            volume_name = f"{'cm' if key == 'configMaps' else 'secret'}-{name}"[:63]
            source = {"configMap": {"name": name}} if key == "configMaps" else {"secret": {"secretName": name}}
            if not any(v.get("name") == volume_name for v in volumes if isinstance(v, dict)):
                volumes.append({"name": volume_name, **source})
            container.setdefault("volumeMounts", []).append({"name": volume_name, "mountPath": path})
            secret_type = item.get("secretType", "Generic")
            if key == "secrets" and secret_type == "GCPServiceAccount":
                env.append({"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": f"{path.rstrip('/')}/key.json"})
            elif key == "secrets" and secret_type == "HadoopDelegationToken":
                env.append({"name": "HADOOP_TOKEN_FILE_LOCATION", "value": f"{path.rstrip('/')}/hadoop.token"})

    def application(self, spec: Any, path: str) -> dict[str, Any]:
        if not isinstance(spec, dict):
            self.drop(path, "expected a SparkApplicationSpec mapping")
            return {}
        out: dict[str, Any] = {}
        raw_volumes = spec.get("volumes")
        volumes: list[Any] = raw_volumes if isinstance(raw_volumes, list) else []
        executor_extra: dict[str, Any] = {}
        for key, value in spec.items():
            where = f"{path}.{key}"
            if key in _SPEC_SAME:
                out[key] = copy.deepcopy(value)
            elif key in ("driver", "executor", "volumes", "sparkConfigMap", "monitoring"):
                continue  # below, once volumes are known
            elif key == "deps":
                out["deps"] = copy.deepcopy(value)
            elif key == "mode":
                if value not in ("cluster", None):
                    self.drop(where, f"mode {value!r}: bigk always submits in cluster mode")
            elif key == "restartPolicy":
                self._restart(value, where, out)
            elif key in ("failureRetries", "retryInterval"):
                policy = out.setdefault("restartPolicy", {"type": "OnFailure"})
                policy["retries" if key == "failureRetries" else "backoffSeconds"] = value
            elif key == "hadoopConfigMap":
                out.setdefault("sparkConf", {})["spark.kubernetes.hadoop.configMapName"] = value
            elif key == "memoryOverheadFactor":
                out.setdefault("sparkConf", {})["spark.kubernetes.memoryOverheadFactor"] = value
            elif key == "batchSchedulerOptions":
                self._batch(value, where, out)
            elif key == "batchScheduler":
                self.note(where, f"bigk's own gang scheduling (batchScheduler {value!r} is not used)")
            elif key == "pythonVersion":
                if str(value) == "3":
                    self.note(where, "the image's Python 3 (Spark 3+ has no other)")
                else:
                    self.drop(where, f"Python {value}: Spark 3+ runs Python 3 only; set PYSPARK_PYTHON in env")
            elif key == "dynamicAllocation":
                self._dynamic(value, where, out, executor_extra)
            elif key in _UNSUPPORTED_SPEC:
                self.drop(where, _UNSUPPORTED_SPEC[key])
            else:
                self.drop(where, "unknown operator field; left out")
        driver_raw, executor_raw = spec.get("driver", {}), spec.get("executor", {})
        conf_map = spec.get("sparkConfigMap")
        if isinstance(conf_map, str) and conf_map:
            driver_raw, executor_raw = (_with_spark_conf_map(p, conf_map) for p in (driver_raw, executor_raw))
            self.note(f"{path}.sparkConfigMap", f"ConfigMap {conf_map!r} mounted at {SPARK_CONF_DIR} with "
                      "SPARK_CONF_DIR set, in driver and executors (as the operator does)")
        elif "sparkConfigMap" in spec:
            self.drop(f"{path}.sparkConfigMap", "expected a ConfigMap name; left out")
        if "monitoring" in spec:
            driver_raw, executor_raw = self._monitoring(spec["monitoring"], f"{path}.monitoring", out,
                                                        driver_raw, executor_raw)
        out["driver"] = self.pod(driver_raw, f"{path}.driver", "driver", list(volumes), out)
        executor = self.pod(executor_raw, f"{path}.executor", "executor", list(volumes), out)
        self._move_reserved(out, executor, path)
        self._apply_dynamic(executor, executor_extra)
        out["executor"] = executor
        priority_class = out.pop("_priorityClassName", None)
        if priority_class:
            for role in ("driver", "executor"):
                tpl = out[role].setdefault("template", {}).setdefault("spec", {})
                tpl.setdefault("priorityClassName", priority_class)
        return out

    def _monitoring(self, value: Any, where: str, out: dict[str, Any], driver: Any, executor: Any) -> tuple[Any, Any]:
        monitor = wiring(value, self.app)
        if monitor is None:
            self.drop(where, "nothing to wire without monitoring.prometheus.jmxExporterJar; left out")
            return driver, executor
        for sub, reason in monitor.dropped:
            self.drop(f"{where}.{sub}", reason)
        if monitor.config_map is None and not monitor.spark_conf:
            return driver, executor
        conf = out.setdefault("sparkConf", {})
        for key, item in monitor.spark_conf.items():
            conf.setdefault(key, item)
        if monitor.config_map is not None:
            out.setdefault("configMaps", []).append(monitor.config_map)
        roles = " and ".join(monitor.roles) or "no role"
        name = monitor.config_map["metadata"]["name"] if monitor.config_map else "-"
        self.note(where, f"the operator's JMX exporter wiring: ConfigMap {name!r} at {MONITORING_MOUNT}, the Java "
                  f"agent, port and prometheus.io annotations on {roles}")
        return monitor.apply(driver, "driver"), monitor.apply(executor, "executor")

    def _restart(self, value: Any, where: str, out: dict[str, Any]) -> None:
        if isinstance(value, str):  # v1alpha1: `restartPolicy: Never`
            value = {"type": value}
        if not isinstance(value, dict):
            self.drop(where, "expected a mapping; left out")
            return
        kind = value.get("type", "Never")
        policy: dict[str, Any] = {"type": kind if kind in ("OnFailure", "Always") else "Never"}
        for key, item in value.items():
            if key == "type":
                continue
            if key == "onFailureRetries" and kind != "Never":
                policy["retries"] = item
            elif key == "onFailureRetryInterval" and kind != "Never":
                policy["backoffSeconds"] = item
            elif key in ("onSubmissionFailureRetries", "onSubmissionFailureRetryInterval") and kind != "Never":
                target = "retries" if key == "onSubmissionFailureRetries" else "backoffSeconds"
                other = "onFailureRetries" if target == "retries" else "onFailureRetryInterval"
                if other not in value:
                    policy[target] = item
                self.note(f"{where}.{key}", f"restartPolicy.{target}: bigk retries a failed submission as a failed "
                          f"run{'' if other not in value else f', so {other} decides'}")
            elif key == "recovery":
                self.drop(f"{where}.{key}", "the operator's fenced restart (progress kept in a recovery store) has no "
                          "bigk counterpart: a retried run starts from the beginning")
            else:
                self.drop(f"{where}.{key}", "not used with this restart type" if kind == "Never" else "unknown field")
        out["restartPolicy"] = policy

    def _batch(self, value: Any, where: str, out: dict[str, Any]) -> None:
        for key, item in (value if isinstance(value, dict) else {}).items():
            if key == "queue":
                out["queue"] = bigk_queue(item) if isinstance(item, str) else item
                if isinstance(item, str) and out["queue"] != item:
                    self.note(f"{where}.{key}", f"bigk queue {out['queue']!r} (from {item!r})")
            elif key == "priorityClassName":
                out["_priorityClassName"] = item
            else:
                self.drop(f"{where}.{key}", "bigk computes gang resources from driver and executor requests")

    def _dynamic(self, value: Any, where: str, out: dict[str, Any], extra: dict[str, Any]) -> None:
        if not isinstance(value, dict):
            self.drop(where, "expected a mapping; left out")
            return
        if not value.get("enabled", False):
            if len(value) > 1 or "enabled" not in value:
                self.drop(where, "dynamic allocation is not enabled; its settings are not used")
            return
        for key, item in value.items():
            if key in ("initialExecutors", "minExecutors", "maxExecutors"):
                extra[key] = item
            elif key == "shuffleTrackingTimeout":
                out.setdefault("sparkConf", {})["spark.dynamicAllocation.shuffleTracking.timeout"] = f"{item}ms"
            elif key != "enabled":
                self.drop(f"{where}.{key}", "unknown field; left out")

    def _move_reserved(self, out: dict[str, Any], executor: dict[str, Any], path: str) -> None:
        conf = out.get("sparkConf")
        if not isinstance(conf, dict):
            return
        for key, (target,) in _RESERVED_MOVES.items():
            if key in conf:
                value = conf.pop(key)
                try:
                    number = int(value)
                except (TypeError, ValueError):
                    self.drop(f"{path}.sparkConf.{key}", f"not a number ({value!r}); left out")
                    continue
                if target in executor and executor[target] != number:
                    self.drop(
                        f"{path}.sparkConf.{key}",
                        f"{number} conflicts with executor.{target}={executor[target]}; kept executor.{target}",
                    )
                executor.setdefault(target, number)
        for key in ("spark.kubernetes.scheduler.name", "spark.kubernetes.namespace", "spark.master"):
            if key in conf:
                conf.pop(key)
                self.drop(f"{path}.sparkConf.{key}", "set by bigk; left out")

    @staticmethod
    def _apply_dynamic(executor: dict[str, Any], extra: dict[str, Any]) -> None:
        if not extra:
            return
        numbers = {k: v for k, v in extra.items() if isinstance(v, int) and not isinstance(v, bool)}
        instances = executor.get("instances")
        instances = instances if isinstance(instances, int) else None
        if "initialExecutors" in numbers:
            instances = max(instances or 0, numbers["initialExecutors"])
        if "minExecutors" in numbers:
            executor["minInstances"] = numbers["minExecutors"]
            instances = max(instances or 0, numbers["minExecutors"])
        if "maxExecutors" in numbers:
            executor["maxInstances"] = numbers["maxExecutors"]
            if instances is None:
                instances = min(2, numbers["maxExecutors"])
        if instances is not None:
            executor["instances"] = max(instances, 1)
        for key, value in extra.items():
            if key not in numbers:
                target = {"minExecutors": "minInstances", "maxExecutors": "maxInstances"}.get(key, "instances")
                executor[target] = value  # let validation report the bad value


def _metadata(meta: Any, conv: _Conversion) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (meta if isinstance(meta, dict) else {}).items():
        if key in ("name", "namespace", "labels", "annotations"):
            out[key] = copy.deepcopy(value)
        else:
            conv.drop(f"metadata.{key}", "set by the Kubernetes API server; ignored")
    return out


def is_operator_doc(doc: Any) -> bool:
    return isinstance(doc, dict) and str(doc.get("apiVersion", "")).startswith("sparkoperator.k8s.io/")


def import_operator(doc: dict[str, Any], source: object = "<manifest>") -> tuple[dict[str, Any], list[str]]:
    """Convert one operator manifest; return the bigk document and the unsupported fields, by name.

    Raises ValueError for documents that are not v1beta2 SparkApplication /
    ScheduledSparkApplication manifests.
    """
    if not isinstance(doc, dict):
        raise ValueError(f"{source}: expected a mapping")
    api, kind = doc.get("apiVersion"), doc.get("kind")
    if (api != OPERATOR_API and api not in OLDER_APIS) or kind not in OPERATOR_KINDS:
        raise ValueError(
            f"{source}: {api}/{kind} is not supported; expected {OPERATOR_API} SparkApplication or"
            " ScheduledSparkApplication"
        )
    meta = doc.get("metadata")
    conv = _Conversion(str(source), str(meta.get("name") or "app") if isinstance(meta, dict) else "app")
    if api != OPERATOR_API:
        conv.note("apiVersion", f"{OPERATOR_API} (read from {api}; fields as in v1beta2)")
    out: dict[str, Any] = {"apiVersion": API_VERSION, "kind": KIND, "metadata": _metadata(doc.get("metadata"), conv)}
    spec = doc.get("spec")
    for key in doc:
        if key == "status":
            conv.drop("status", "runtime state of the operator; ignored")
        elif key not in ("apiVersion", "kind", "metadata", "spec"):
            conv.drop(key, "unknown top-level field; left out")
    if kind == "SparkApplication":
        out["spec"] = conv.application(spec, "spec")
    else:
        out["spec"] = _scheduled(spec, conv)
    return out, conv.unsupported


def _scheduled(spec: Any, conv: _Conversion) -> dict[str, Any]:
    if not isinstance(spec, dict):
        conv.drop("spec", "expected a ScheduledSparkApplicationSpec mapping")
        return {}
    out = conv.application(spec.get("template"), "spec.template")
    schedule: dict[str, Any] = {}
    names = {
        "schedule": "cron",
        "timeZone": "timeZone",
        "suspend": "suspend",
        "concurrencyPolicy": "concurrencyPolicy",
        "successfulRunHistoryLimit": "successfulRunsHistoryLimit",
        "failedRunHistoryLimit": "failedRunsHistoryLimit",
    }
    for key, value in spec.items():
        if key in names:
            schedule[names[key]] = value
        elif key != "template":
            conv.drop(f"spec.{key}", "unknown operator field; left out")
    if schedule.get("timeZone") == "Local":
        schedule["timeZone"] = "UTC"
        conv.note("spec.timeZone", "UTC: bigk has no 'Local' zone (the operator's pod clock is usually UTC)")
    out["schedule"] = schedule
    if (out.get("restartPolicy") or {}).get("type") == "Always":
        conv.note("spec.template.restartPolicy.type", "Always: each success starts the job again, besides its "
                  "schedule (the operator's guide advises Never for scheduled applications)")
    return out


_SCHEDULE_BACK = {
    "cron": "schedule",
    "successfulRunsHistoryLimit": "successfulRunHistoryLimit",
    "failedRunsHistoryLimit": "failedRunHistoryLimit",
}


def operator_loc(kind: str, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Map a path in the converted bigk document back to the operator manifest, for error positions."""
    if len(loc) < 2 or loc[0] != "spec":
        return loc
    head: tuple[str | int, ...] = ("spec", "template") if kind == "ScheduledSparkApplication" else ("spec",)
    rest = loc[1:]
    if rest[0] == "schedule" and kind == "ScheduledSparkApplication":
        return ("spec", _SCHEDULE_BACK.get(str(rest[1]), rest[1])) if len(rest) > 1 else ("spec", "schedule")
    if rest[:2] == ("executor", "minInstances"):
        return (*head, "dynamicAllocation", "minExecutors")
    if rest[:2] == ("executor", "maxInstances"):
        return (*head, "dynamicAllocation", "maxExecutors")
    if rest[0] == "queue":
        return (*head, "batchSchedulerOptions", "queue")
    if rest[0] == "restartPolicy" and len(rest) > 1:
        back = {"retries": "onFailureRetries", "backoffSeconds": "onFailureRetryInterval"}
        return (*head, "restartPolicy", back.get(str(rest[1]), rest[1]))
    if len(rest) > 2 and rest[0] in ("driver", "executor") and rest[1] == "gpu":
        return (*head, rest[0], "gpu", "quantity")
    return (*head, *rest)
