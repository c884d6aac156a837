"""The data model shared by every part of bigk: nodes, GPUs, pods, gangs, queues.

Units are fixed: CPU in millicores, memory in MiB, GPU share in milli-GPU (1000 =
one whole GPU). These classes describe the world; `bigk.cluster.state` turns a
set of nodes into the numpy arrays the scheduler searches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from bigk.cluster.affinity import PodConstraints

MILLI_GPU = 1000
GPU_RESOURCE = "nvidia.com/gpu"
POOL_LABEL = "bigk.io/pool"
GPU_MODEL_LABEL = "nvidia.com/gpu.product"


@dataclass(frozen=True)
class Taint:
    key: str
    value: str = ""
    effect: str = "NoSchedule"  # NoSchedule | PreferNoSchedule | NoExecute


@dataclass(frozen=True)
class Toleration:
    key: str = ""  # empty key with operator Exists tolerates everything
    operator: str = "Equal"  # Equal | Exists
    value: str = ""
    effect: str = ""  # empty matches every effect

    def tolerates(self, taint: Taint) -> bool:
        if self.effect and self.effect != taint.effect:
            return False
        if self.operator == "Exists":
            return not self.key or self.key == taint.key
        return self.key == taint.key and self.value == taint.value


@dataclass(frozen=True)
class HostPort:
    """A host port a pod's container binds (kube-scheduler's NodePorts); host_ip "0.0.0.0" means every address."""

    port: int
    protocol: str = "TCP"
    host_ip: str = "0.0.0.0"

    def conflicts(self, other: HostPort) -> bool:
        """Kubernetes' rule: same port and protocol, and the same address or either one is 0.0.0.0."""
        if self.port != other.port or self.protocol != other.protocol:
            return False
        return self.host_ip == other.host_ip or "0.0.0.0" in (self.host_ip, other.host_ip)


@dataclass
class GpuReading:
    """One live sample of a GPU, from the bigk agent (NVML) or DCGM."""

    free_memory_mib: int
    utilization_pct: float
    temperature_c: float
    healthy: bool
    observed_at: float  # unix seconds


@dataclass
class Gpu:
    """One physical GPU on a node."""

    index: int
    model: str
    memory_mib: int
    uuid: str = ""
    reading: GpuReading | None = None


@dataclass
class Node:
    """A schedulable node; allocatable figures are what pods may use."""

    name: str
    cpu_milli: int
    memory_mib: int
    pods: int = 110
    gpus: list[Gpu] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[Taint] = field(default_factory=list)
    unschedulable: bool = False
    # Who assigns the GPUs (bigk.cluster.gpu_labels): "device-plugin" (whole GPUs via nvidia.com/gpu only),
    # "bigk" (bigk assigns every device; fractional pods only), "" (both: simulations; unsafe on a cluster).
    gpu_owner: str = ""
    # Allocatable amounts of every other resource (ephemeral-storage and hugepages in bytes, extended
    # resources and CSI attach limits in units), by resource name; see `PodRequest.scalars`.
    scalars: dict[str, int] = field(default_factory=dict)

    @property
    def pool(self) -> str:
        return self.labels.get(POOL_LABEL, "default")

    @property
    def gpu_model(self) -> str:
        return self.gpus[0].model if self.gpus else ""


@dataclass(frozen=True)
class PodRequest:
    """What one pod asks for.

    GPU requests are either `gpu_count` whole GPUs (gpu_milli == 1000) or one
    fraction of one GPU (gpu_count == 1, 0 < gpu_milli < 1000) plus the GPU
    memory that fraction needs. `gpu_models` restricts which models may serve it
    (empty = any). `scalars` are requests of any other resource, sorted by name
    (see `Node.scalars`); `host_ports` the host ports the pod binds.
    """

    cpu_milli: int
    memory_mib: int
    gpu_count: int = 0
    gpu_milli: int = 0
    gpu_memory_mib: int = 0
    gpu_models: frozenset[str] = frozenset()
    scalars: tuple[tuple[str, int], ...] = ()
    host_ports: tuple[HostPort, ...] = ()

    @property
    def is_gpu(self) -> bool:
        return self.gpu_count > 0

    @property
    def is_fractional(self) -> bool:
        return self.gpu_count == 1 and 0 < self.gpu_milli < MILLI_GPU

    @property
    def total_gpu_milli(self) -> int:
        return self.gpu_count * self.gpu_milli


class Role(StrEnum):
    DRIVER = "driver"
    EXECUTOR = "executor"
    POD = "pod"  # anything that is not part of a Spark application


@dataclass
class Pod:
    """A pod that bigk may place."""

    name: str
    request: PodRequest
    namespace: str = "default"
    priority: int = 0
    queue: str = "default"
    gang: str = ""  # Spark application id (spark-app-selector); empty = a gang of one
    role: Role = Role.POD
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[Toleration] = field(default_factory=list)
    preferred_pools: tuple[str, ...] = ()
    created_at: float = 0.0
    node: str = ""  # set once bound
    gpus: tuple[int, ...] = ()  # GPU indices on `node`, set once bound
    constraints: PodConstraints | None = None  # node affinity, volume topology, refusals; None = none
    claims: tuple[str, ...] = ()  # PersistentVolumeClaims (names in `namespace`) the pod mounts

    @cached_property
    def key(self) -> str:  # cached: read many times per cycle; a pod's name and namespace never change
        return f"{self.namespace}/{self.name}"


@dataclass
class Gang:
    """A Spark application as one scheduling unit: a driver plus executors.

    `min_executors` is the gang minimum (driver + that many executors must fit at
    once); executors above it are extras from dynamic allocation, placed when room
    exists and preempted first.
    """

    name: str
    queue: str
    priority: int
    driver: PodRequest
    executor: PodRequest
    min_executors: int
    namespace: str = "default"
    created_at: float = 0.0
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[Toleration] = field(default_factory=list)
    preferred_pools: tuple[str, ...] = ()


@dataclass
class Queue:
    """A queue with a weight for fair share, a guarantee and a ceiling per resource.

    Resources are keyed "cpu" (milli), "memory" (MiB) and "gpu" (milli-GPU).
    Queues form a tree: `parent` is the full name of the parent queue ("" at the
    top); names are dotted paths (`ml.training` is the child `training` of `ml`).
    `borrow`: may use idle capacity beyond its guarantee (else its guarantee caps it
    where it has one); `lend`: lets other queues use its unused guarantee (else
    that room is kept free for it).
    `guaranteed_models` / `maximum_models`: milli-GPU per GPU model, keyed by the
    model name as people write it in specs (`A100`, `H100-80GB`), matched against
    the nodes' `nvidia.com/gpu.product` by `bigk.cluster.gpu_labels.model_matches`.
    """

    name: str
    weight: float = 1.0
    guaranteed: dict[str, int] = field(default_factory=dict)
    maximum: dict[str, int] = field(default_factory=dict)
    parent: str = ""
    borrow: bool = True
    lend: bool = True
    guaranteed_models: dict[str, int] = field(default_factory=dict)
    maximum_models: dict[str, int] = field(default_factory=dict)
