"""The bigk job spec (`apiVersion: bigk.io/v1`, `kind: SparkJob`) as pydantic models.

Field names are the YAML names (camelCase, like the Spark Operator) so that error
paths, JSON Schema and attribute access all read the same. Every model forbids
unknown fields; the loader turns those errors into "did you mean ...?" hints.
Resource fields keep the text the user wrote and expose parsed figures as
properties, so rendering can echo the user's units back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from bigk.cluster.model import MILLI_GPU
from bigk.cluster.model import Toleration as ClusterToleration
from bigk.cluster.quantity import QuantityError, cpu_to_milli
from bigk.spec.cron import parse_schedule, parse_timezone
from bigk.spec.errors import CronError
from bigk.spec.queue_names import queue_name
from bigk.spec.sparkvolumes import volume_problems
from bigk.spec.units import memory_mib

API_VERSION = "bigk.io/v1"
KIND = "SparkJob"

MAX_MEMORY_MIB = 16 * 1024 * 1024  # 16 TiB: more than any node has; anything larger is a typo
MAX_CORES = 1024
MAX_INSTANCES = 10_000
MAX_GPUS_PER_POD = 16
MAX_JOB_NAME = 50  # leaves room for "-<run id>-driver" within Kubernetes' 63-character names

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_SPARK_KEY = re.compile(r"^spark\.[A-Za-z0-9_.\-/\[\]]+$")
# Spark's metrics system takes `spark.metrics.conf.[instance|*].sink.[name].[option]`: '*' means every instance.
_SPARK_METRICS_KEY = re.compile(r"^spark\.metrics\.conf\.(\*|[A-Za-z0-9_\-]+)\.[A-Za-z0-9_.\-/*]+$")
_HADOOP_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_GPU_MODELS = re.compile(r"^[A-Za-z0-9._-]+(\|[A-Za-z0-9._-]+)*$")

# Spark settings bigk derives from the spec; setting them in sparkConf would fight bigk.
RESERVED_SPARK_CONF = {
    "spark.master": "it comes from the cluster bigk submits to",
    "spark.submit.deployMode": "bigk always submits in cluster mode",
    "spark.kubernetes.scheduler.name": "bigk must schedule every pod of the job",
    "spark.kubernetes.driver.pod.name": "bigk names the driver after the job and run",
    "spark.kubernetes.executor.podNamePrefix": "bigk names executors after the job and run",
    "spark.kubernetes.namespace": "use metadata.namespace",
    "spark.kubernetes.driver.podTemplateFile": "use driver.template",
    "spark.kubernetes.executor.podTemplateFile": "use executor.template",
    "spark.kubernetes.submission.waitAppCompletion": "bigk tracks the run itself",
    "spark.executor.instances": "use executor.instances",
    "spark.dynamicAllocation.minExecutors": "use executor.minInstances",
    "spark.dynamicAllocation.maxExecutors": "use executor.maxInstances",
    "spark.executor.resource.gpu.amount": "use executor.gpu",
    "spark.driver.resource.gpu.amount": "use driver.gpu",
}


FIELD_MARK = "\x1f"  # separates the field path from the message inside a FieldProblem


class FieldProblem(ValueError):
    """A model-level check whose message belongs to a field below the model (path given as parts)."""

    def __init__(self, *parts: str, message: str) -> None:
        super().__init__(FIELD_MARK.join(parts) + FIELD_MARK + FIELD_MARK + message)


def _no_control(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _scalar_text(value: Any) -> Any:
    """YAML turns `true`, `4` and `0.5` into bool/int/float; Spark wants strings ('true', not 'True')."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


Text = Annotated[str, AfterValidator(_no_control)]
_SCALAR_SCHEMA = WithJsonSchema({"type": ["string", "number", "boolean"]})
ConfValue = Annotated[str, BeforeValidator(_scalar_text), AfterValidator(_no_control), _SCALAR_SCHEMA]


def _check_pattern(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not a valid {what}")
        return value

    return AfterValidator(check)


LabelKey = Annotated[str, _check_pattern(_LABEL_KEY, "label/annotation key (e.g. 'team' or 'example.com/team')")]
LabelValue = Annotated[str, BeforeValidator(_scalar_text), _check_pattern(_LABEL_VALUE, "label value"), _SCALAR_SCHEMA]
EnvName = Annotated[str, _check_pattern(_ENV_NAME, "environment variable name")]
def _check_spark_key(value: str) -> str:
    if _SPARK_KEY.match(value) or _SPARK_METRICS_KEY.match(value):
        return value
    raise ValueError(
        f"{value!r} is not a valid Spark setting name ('spark.' then letters, digits, '.', '_', '-', '/'; "
        "'*' only in spark.metrics.conf.* keys)"
    )


SparkKey = Annotated[str, AfterValidator(_check_spark_key)]
HadoopKey = Annotated[str, _check_pattern(_HADOOP_KEY, "Hadoop setting name")]
DnsLabel = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]


QueueName = Annotated[str, BeforeValidator(queue_name), Field(description="Leaf queue, e.g. ml.training.")]
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DnsSubdomain = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]


def _memory_text(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value}m"  # a bare number means MiB in Spark
    return value


def _check_amount(value: Any, parse: Callable[[Any], int], what: str, limit: int, too_much: str) -> None:
    """A quantity `parse` reads, above zero and at most `limit`; ValueError (shown by pydantic) when not."""
    try:
        amount = parse(value)
    except QuantityError as exc:
        raise ValueError(str(exc)) from None
    if amount <= 0:
        raise ValueError(f"{what} {value!r} must be more than zero")
    if amount > limit:
        raise ValueError(f"{what} {value!r} is more than {too_much}")


def _check_memory(value: str) -> str:
    _check_amount(value, memory_mib, "memory", MAX_MEMORY_MIB, "16 TiB; no node has that much")
    return value


def _check_cpu(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected a CPU quantity such as '2' or '500m', got {value!r}")
    _check_amount(value, cpu_to_milli, "CPU", MAX_CORES * 1000, f"{MAX_CORES} cores; no node has that many")
    return str(value)


Memory = Annotated[
    str,
    BeforeValidator(_memory_text),
    AfterValidator(_check_memory),
    WithJsonSchema({"type": ["string", "integer"], "description": "Spark style '4g' / '512m' or Kubernetes '4Gi'."}),
]
Cpu = Annotated[str, BeforeValidator(_check_cpu), WithJsonSchema({"type": ["string", "number"]})]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class Metadata(_Model):
    """Who the job is: its name is unique across all loaded specs."""

    name: Annotated[str, Field(min_length=1, max_length=MAX_JOB_NAME, pattern=DNS_LABEL)] = Field(
        description="Job name: lower-case letters, digits and '-', at most 50 characters; unique across specs."
    )
    namespace: DnsLabel = "default"
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    annotations: dict[LabelKey, ConfValue] = Field(default_factory=dict)


class Toleration(_Model):
    """A Kubernetes toleration, as in a pod spec."""

    key: Text = ""
    operator: Literal["Equal", "Exists"] = "Equal"
    value: ConfValue = ""
    effect: Literal["", "NoSchedule", "PreferNoSchedule", "NoExecute"] = ""
    tolerationSeconds: int | None = Field(default=None, ge=0)

    def to_cluster(self) -> ClusterToleration:
        return ClusterToleration(self.key, self.operator, self.value, self.effect)

    def to_pod(self) -> dict[str, Any]:
        out: dict[str, Any] = {"operator": self.operator}
        if self.key:
            out["key"] = self.key
        if self.operator == "Equal":
            out["value"] = self.value
        if self.effect:
            out["effect"] = self.effect
        if self.tolerationSeconds is not None:
            out["tolerationSeconds"] = self.tolerationSeconds
        return out


class GpuSpec(_Model):
    """GPUs per pod: `count` whole GPUs, or `fraction` of one GPU plus the GPU `memory` that share needs."""

    count: int = Field(default=1, ge=1, le=MAX_GPUS_PER_POD, description="Whole GPUs per pod.")
    fraction: float | None = Field(
        default=None, description="Share of one GPU in (0, 1]; below 1 the pod shares a GPU and needs `memory`."
    )
    memory: Memory | None = Field(default=None, description="GPU memory the pod needs, e.g. '4Gi'.")
    model: Annotated[str, _check_pattern(_GPU_MODELS, "GPU model list (e.g. 'A100|H100')")] | None = Field(
        default=None, description="Allowed GPU models, '|'-separated, e.g. 'A100|H100'."
    )

    @model_validator(mode="after")
    def _fraction_rules(self) -> GpuSpec:
        if self.fraction is None:
            return self
        if not 0 < self.fraction <= 1:
            raise FieldProblem("fraction", message=f"GPU fraction {self.fraction} is outside (0, 1]")
        if round(self.fraction * MILLI_GPU) < 1:
            raise FieldProblem("fraction", message=f"GPU fraction {self.fraction} is below the smallest share, 0.001")
        if self.fraction < 1 and self.count != 1:
            raise FieldProblem("count", message="a fractional GPU share is a share of ONE GPU: drop count or fraction")
        if self.fraction < 1 and self.memory is None:
            raise FieldProblem(
                "memory", message="a fractional GPU share needs the GPU memory it uses, e.g. memory: 4Gi"
            )
        return self

    @property
    def is_fractional(self) -> bool:
        return self.fraction is not None and self.fraction < 1

    @property
    def milli(self) -> int:
        """Share of each GPU in milli-GPU (1000 = a whole GPU)."""
        return round(self.fraction * MILLI_GPU) if self.is_fractional and self.fraction is not None else MILLI_GPU

    @property
    def memory_mib(self) -> int:
        return memory_mib(self.memory) if self.memory is not None else 0

    @property
    def models(self) -> frozenset[str]:
        return frozenset(self.model.split("|")) if self.model else frozenset()


class KeyRef(_Model):
    """One key of a Secret or ConfigMap in the job's namespace."""

    name: DnsSubdomain
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._A-Za-z0-9]+$")]
    optional: bool | None = None


class FieldRef(_Model):
    """A field of the pod itself (downward API), e.g. metadata.name or status.podIP."""

    fieldPath: Annotated[Text, Field(min_length=1)]
    apiVersion: Text | None = None


class ResourceFieldRef(_Model):
    """A container's resource request or limit (downward API), e.g. limits.memory."""

    resource: Annotated[Text, Field(min_length=1)]
    containerName: Text | None = None
    divisor: ConfValue | None = None


class EnvSource(_Model):
    """Where a variable's value comes from: exactly one of the four Kubernetes sources."""

    secretKeyRef: KeyRef | None = None
    configMapKeyRef: KeyRef | None = None
    fieldRef: FieldRef | None = None
    resourceFieldRef: ResourceFieldRef | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> EnvSource:
        given = [k for k in ("secretKeyRef", "configMapKeyRef", "fieldRef", "resourceFieldRef") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "valueFrom needs exactly one of secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


class EnvVar(_Model):
    """One environment variable, as in a Kubernetes container: a `value`, or a `valueFrom` source."""

    name: EnvName
    value: ConfValue | None = None
    valueFrom: EnvSource | None = None

    @model_validator(mode="after")
    def _value_or_source(self) -> EnvVar:
        if self.value is not None and self.valueFrom is not None:
            raise FieldProblem("valueFrom", message="give either value or valueFrom, not both")
        return self

    def to_container(self) -> dict[str, Any]:
        if self.valueFrom is not None:
            return {"name": self.name, "valueFrom": self.valueFrom.model_dump(exclude_none=True)}
        return {"name": self.name, "value": self.value or ""}


class NamedRef(_Model):
    name: DnsSubdomain
    optional: bool | None = None


class EnvFromSource(_Model):
    """Every key of a ConfigMap or Secret as variables (optionally prefixed)."""

    prefix: Annotated[str, _check_pattern(re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$"), "variable prefix")] | None = None
    configMapRef: NamedRef | None = None
    secretRef: NamedRef | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> EnvFromSource:
        if (self.configMapRef is None) == (self.secretRef is None):
            raise ValueError("envFrom entries need exactly one of configMapRef or secretRef")
        return self


def _env_list(value: Any) -> Any:
    """`env` is a map of literal values or a Kubernetes-style list; both become a list of EnvVar."""
    if isinstance(value, dict):
        return [{"name": k, "value": v} for k, v in value.items()]
    return value


def _unique_env_names(value: list[EnvVar]) -> list[EnvVar]:
    seen: set[str] = set()
    for var in value:
        if var.name in seen:
            raise ValueError(f"variable {var.name!r} is set twice")
        seen.add(var.name)
    return value


EnvList = Annotated[
    list[EnvVar],
    BeforeValidator(_env_list),
    AfterValidator(_unique_env_names),
    WithJsonSchema(
        {
            "description": "A map NAME: value, or a list of {name, value | valueFrom} as in a Kubernetes container.",
            "anyOf": [
                {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
                {"type": "array", "items": {"type": "object"}},
            ],
        }
    ),
]


class PodSpec(_Model):
    """What the driver (and, extended, each executor) pod needs and carries."""

    cores: int = Field(default=1, ge=1, le=MAX_CORES, description="spark.{driver,executor}.cores")
    coreRequest: Cpu | None = Field(default=None, description="CPU the pod requests, if not `cores` (e.g. '500m').")
    coreLimit: Cpu | None = Field(default=None, description="Hard CPU limit of the pod.")
    memory: Memory = Field(default="1g", description="JVM heap, Spark style '4g' or Kubernetes style '4Gi'.")
    memoryOverhead: Memory | None = Field(default=None, description="Off-heap memory; default per Spark's rules.")
    gpu: GpuSpec | None = None
    image: Text | None = None
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    annotations: dict[LabelKey, ConfValue] = Field(default_factory=dict)
    env: EnvList = Field(default_factory=list)
    envFrom: list[EnvFromSource] = Field(default_factory=list, description="ConfigMaps / Secrets as variables.")
    nodeSelector: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    serviceAccount: DnsSubdomain | None = Field(
        default=None, description="Service account of the pod (driver default: 'spark', created by the chart)."
    )
    javaOptions: Text | None = None
    template: dict[str, Any] | None = Field(
        default=None, description="Extra pod template (volumes, affinity, ...) merged under bigk's own settings."
    )

    @property
    def memory_mib(self) -> int:
        return memory_mib(self.memory)

    @property
    def literal_env(self) -> dict[str, str]:
        """Variables with a literal value (Spark's own conf can carry these)."""
        return {v.name: v.value or "" for v in self.env if v.valueFrom is None}

    @property
    def sourced_env(self) -> list[EnvVar]:
        """Variables taken from Secrets, ConfigMaps or the pod itself (only a pod template can carry these)."""
        return [v for v in self.env if v.valueFrom is not None]


class ExecutorSpec(PodSpec):
    """Executors: `instances` to start with, the gang minimum and the dynamic-allocation ceiling."""

    instances: int = Field(default=2, ge=1, le=MAX_INSTANCES, description="Executors to start with.")
    minInstances: int | None = Field(
        default=None, ge=0, le=MAX_INSTANCES, description="Gang minimum: executors that must fit at once."
    )
    maxInstances: int | None = Field(
        default=None, ge=1, le=MAX_INSTANCES, description="Dynamic allocation ceiling (default: instances)."
    )
    deleteOnTermination: bool | None = None

    @model_validator(mode="after")
    def _instance_order(self) -> ExecutorSpec:
        if self.minInstances is not None and self.minInstances > self.instances:
            raise FieldProblem(
                "minInstances",
                message=f"minInstances ({self.minInstances}) is larger than instances ({self.instances})",
            )
        if self.maxInstances is not None and self.maxInstances < self.instances:
            raise FieldProblem(
                "maxInstances",
                message=f"maxInstances ({self.maxInstances}) is smaller than instances ({self.instances})",
            )
        return self

    @property
    def gang_min(self) -> int:
        return self.instances if self.minInstances is None else self.minInstances

    @property
    def gang_max(self) -> int:
        return self.instances if self.maxInstances is None else self.maxInstances

    @property
    def dynamic(self) -> bool:
        """Dynamic allocation is on when the executor count may move away from `instances`."""
        return self.gang_min != self.instances or self.gang_max != self.instances


class Deps(_Model):
    """Dependencies, as spark-submit's --jars, --py-files, --files, --packages, ... take them."""

    jars: list[Text] = Field(default_factory=list)
    pyFiles: list[Text] = Field(default_factory=list)
    files: list[Text] = Field(default_factory=list)
    packages: list[Text] = Field(default_factory=list)
    excludePackages: list[Text] = Field(default_factory=list)
    repositories: list[Text] = Field(default_factory=list)
    archives: list[Text] = Field(default_factory=list)


class Schedule(_Model):
    """When runs start: standard 5-field cron (0 and 7 = Sunday) in a time zone."""

    cron: str = Field(description="Standard cron, e.g. '0 2 * * *' or '*/15 * * * MON-FRI'; @daily etc. also work.")
    timeZone: str = "UTC"
    suspend: bool = False
    concurrencyPolicy: Literal["Allow", "Forbid", "Replace"] = "Allow"
    startingDeadlineSeconds: int | None = Field(default=None, ge=1, le=7 * 86400)
    successfulRunsHistoryLimit: int = Field(default=3, ge=0, le=1000)
    failedRunsHistoryLimit: int = Field(default=3, ge=0, le=1000)
    maxPendingRuns: int = Field(default=1, ge=1, le=1000,
                                description="A scheduled fire is skipped while this many runs still wait to start.")

    @model_validator(mode="after")
    def _cron_and_zone(self) -> Schedule:
        try:
            parse_schedule(self.cron)
        except CronError as exc:
            raise FieldProblem("cron", message=str(exc)) from None
        try:
            parse_timezone(self.timeZone)
        except CronError as exc:
            raise FieldProblem("timeZone", message=str(exc)) from None
        return self


class RestartPolicy(_Model):
    """Whether a failed run is retried, how often and after how long.

    `Always` (the Spark Operator's, for long-running applications) also starts the job again after a
    success, `backoffSeconds` later; failures are retried as with OnFailure, `retries` counted since
    the last success. Cancelling the run stops the chain.
    """

    type: Literal["Never", "OnFailure", "Always"] = "Never"
    retries: int = Field(default=0, ge=0, le=100)
    backoffSeconds: int = Field(default=30, ge=0, le=86400)

    @model_validator(mode="after")
    def _retries_need_on_failure(self) -> RestartPolicy:
        if self.type == "Never" and self.retries > 0:
            raise FieldProblem("retries", message="retries only apply with type: OnFailure")
        return self


class RapidsSpec(_Model):
    """NVIDIA RAPIDS Accelerator for Spark: the SQL plugin on GPU executors."""

    enabled: bool = True
    jar: Text | None = Field(default=None, description="RAPIDS jar, added to --jars (omit if the image has it).")
    conf: dict[SparkKey, ConfValue] = Field(default_factory=dict, description="Extra spark.rapids.* settings.")


class ObjectMeta(_Model):
    name: DnsSubdomain
    namespace: DnsLabel | None = None
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    annotations: dict[LabelKey, ConfValue] = Field(default_factory=dict)


ConfigKey = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._A-Za-z0-9]+$")]
MAX_CONFIGMAP_BYTES = 1024 * 1024  # the API server's limit for one object


class RunConfigMap(_Model):
    """A ConfigMap bigk creates (or updates) in the job's namespace before each run: a script, a pod template..."""

    apiVersion: Literal["v1"] = "v1"
    kind: Literal["ConfigMap"] = "ConfigMap"
    metadata: ObjectMeta
    data: dict[ConfigKey, ConfValue] = Field(default_factory=dict)
    binaryData: dict[ConfigKey, Text] = Field(default_factory=dict)
    immutable: bool | None = None

    @model_validator(mode="after")
    def _size(self) -> RunConfigMap:
        size = sum(len(k) + len(v.encode()) for k, v in [*self.data.items(), *self.binaryData.items()])
        if size > MAX_CONFIGMAP_BYTES:
            raise FieldProblem("data", message=f"{size} bytes; a ConfigMap holds at most 1 MiB")
        return self

    def manifest(self, namespace: str) -> dict[str, Any]:
        out = {"apiVersion": "v1", "kind": "ConfigMap", **self.model_dump(exclude_none=True, exclude_defaults=True)}
        out["metadata"]["namespace"] = namespace
        return out


class LabelExpression(_Model):
    """One requirement on a cluster's labels, as in a Kubernetes label selector."""

    key: LabelKey
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[LabelValue] = Field(default_factory=list)

    @model_validator(mode="after")
    def _values_fit_operator(self) -> LabelExpression:
        if self.operator in ("In", "NotIn") and not self.values:
            raise FieldProblem("values", message=f"operator {self.operator} needs values")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise FieldProblem("values", message=f"operator {self.operator} takes no values")
        return self


class ClusterSelector(_Model):
    """Clusters a run may go to, by their labels (a Kubernetes label selector; both parts must hold)."""

    matchLabels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    matchExpressions: list[LabelExpression] = Field(default_factory=list)


def _unique_clusters(value: list[str]) -> list[str]:
    for i, name in enumerate(value):
        if name in value[:i]:
            raise ValueError(f"cluster {name!r} is listed twice")
    return value


class SparkJobSpec(_Model):
    """The application (as in the Spark Operator) plus bigk's scheduling fields."""

    type: Literal["Python", "Scala", "Java", "R"]
    mainApplicationFile: Annotated[Text, Field(min_length=1)]
    mainClass: Text | None = None
    arguments: list[ConfValue] = Field(default_factory=list)
    image: Text | None = None
    imagePullPolicy: Literal["Always", "IfNotPresent", "Never"] | None = None
    imagePullSecrets: list[DnsLabel] = Field(default_factory=list)
    sparkVersion: Text | None = None
    proxyUser: Text | None = None
    sparkConf: dict[SparkKey, ConfValue] = Field(default_factory=dict)
    hadoopConf: dict[HadoopKey, ConfValue] = Field(default_factory=dict)
    deps: Deps = Field(default_factory=Deps)
    driver: PodSpec = Field(default_factory=PodSpec)
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)
    nodeSelector: dict[LabelKey, LabelValue] = Field(default_factory=dict, description="For both driver and executors.")
    tolerations: list[Toleration] = Field(default_factory=list, description="For both driver and executors.")
    rapids: RapidsSpec | None = None
    configMaps: list[RunConfigMap] = Field(
        default_factory=list, description="ConfigMaps created in the job's namespace before each run."
    )
    # bigk scheduling
    queue: QueueName = "default"
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000, description="Higher runs first and may preempt.")
    pools: list[DnsLabel] = Field(default_factory=list, description="Preferred node pools, best first.")
    clusters: Annotated[list[DnsLabel], AfterValidator(_unique_clusters)] = Field(
        default_factory=list, description="Clusters a run may go to, best first (default: any declared cluster).")
    clusterSelector: ClusterSelector | None = Field(default=None, description="Clusters a run may go to, by label.")
    schedule: Schedule | None = None
    restartPolicy: RestartPolicy = Field(default_factory=RestartPolicy)
    activeDeadlineSeconds: int | None = Field(default=None, ge=1, le=30 * 86400)
    expectedDurationSeconds: int | None = Field(
        default=None, ge=1, le=30 * 86400, description="Hint for the emulated cluster and the simulator."
    )

    @model_validator(mode="after")
    def _consistency(self) -> SparkJobSpec:
        if self.mainApplicationFile.startswith("-"):
            raise FieldProblem("mainApplicationFile", message="must be a path or URL, not start with '-'")
        if self.type in ("Java", "Scala") and not self.mainClass:
            raise FieldProblem("mainClass", message=f"a {self.type} application needs mainClass")
        for key, why in RESERVED_SPARK_CONF.items():
            if key in self.sparkConf:
                raise FieldProblem("sparkConf", key, message=f"bigk sets {key} itself: {why}")
        for key, message in volume_problems(self.sparkConf):
            raise FieldProblem("sparkConf", key, message=message)
        if self.rapids is not None and self.rapids.enabled and self.executor.gpu is None:
            raise FieldProblem("rapids", message="RAPIDS runs on GPU executors: add executor.gpu")
        if self.rapids is not None:
            for key in self.rapids.conf:
                if not key.startswith("spark.rapids."):
                    raise FieldProblem("rapids", "conf", key, message="rapids.conf only takes spark.rapids.* settings")
        return self


class JobSpec(_Model):
    """One bigk job: a Spark application and how bigk schedules it."""

    apiVersion: Literal["bigk.io/v1"]
    kind: Literal["SparkJob"]
    metadata: Metadata
    spec: SparkJobSpec

    @model_validator(mode="after")
    def _config_map_namespaces(self) -> JobSpec:
        seen: set[str] = set()
        for i, cm in enumerate(self.spec.configMaps):
            if cm.metadata.namespace not in (None, self.metadata.namespace):
                raise FieldProblem(
                    "spec", "configMaps", str(i), "metadata", "namespace",
                    message=f"{cm.metadata.namespace!r} is not the job's namespace {self.metadata.namespace!r}",
                )
            if cm.metadata.name in seen:
                raise FieldProblem(
                    "spec", "configMaps", str(i), "metadata", "name", message=f"{cm.metadata.name!r} is listed twice"
                )
            seen.add(cm.metadata.name)
        return self

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def has_schedule(self) -> bool:
        """True when the job has a cron schedule, suspended or not."""
        return self.spec.schedule is not None

    @property
    def runs_on_schedule(self) -> bool:
        """True when cron should start runs now: a schedule that is not suspended."""
        return self.spec.schedule is not None and not self.spec.schedule.suspend

    @property
    def is_gpu(self) -> bool:
        return self.spec.executor.gpu is not None or self.spec.driver.gpu is not None
