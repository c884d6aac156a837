"""Cluster files: node pools described in YAML, expanded into `Node` objects.

Used by the emulated cluster (to create its nodes), by `bigk validate --cluster`
(to reject requests no node could ever hold) and by synthetic benchmarks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bigk.cluster.gpu_labels import (
    DEPLOY_DEVICE_PLUGIN_LABEL,
    KNOWN_PRODUCTS,
    OWNER_BIGK,
    OWNER_DEVICE_PLUGIN,
    OWNER_MIXED,
    SHARING_LABEL,
    gfd_labels,
)
from bigk.cluster.model import POOL_LABEL, Gpu, Node, Taint
from bigk.cluster.quantity import QuantityError, cpu_to_milli, memory_to_mib


class ClusterFileError(ValueError):
    """A cluster file that cannot be used; the message names the file and field."""


class GpuSpec(BaseModel):
    """A pool's GPUs. `model` is the product as GPU feature discovery writes it (`NVIDIA-A100-SXM4-80GB`);
    `sharing` says who assigns the devices (docs/gpus.md): `none` = the NVIDIA device plugin (whole GPUs),
    `bigk` / `mps` = bigk, for every pod there (shares; `mps` enforces them with CUDA MPS), `mixed` = both
    (unsafe on a real cluster: for simulations and old tests)."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1)
    count: int = Field(ge=1, le=64)
    memory: str | int | None = None  # default: the product's memory when known, else 16Gi
    sharing: Literal["none", "bigk", "mps", "mixed"] = "none"


class TaintSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str
    value: str = ""
    effect: str = "NoSchedule"


class PoolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    count: int = Field(ge=0, le=100_000)
    cpu: str | int | float
    memory: str | int
    pods: int = Field(default=110, ge=1)
    gpu: GpuSpec | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[TaintSpec] = Field(default_factory=list)


class ClusterSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pools: list[PoolSpec]


_OWNERS = {"none": OWNER_DEVICE_PLUGIN, "bigk": OWNER_BIGK, "mps": OWNER_BIGK, "mixed": OWNER_MIXED}


def _gpu_memory_mib(gpu: GpuSpec) -> int:
    if gpu.memory is not None:
        return memory_to_mib(gpu.memory)
    known = KNOWN_PRODUCTS.get(gpu.model)
    return known.memory_mib if known is not None else 16384


def pool_nodes(pool: PoolSpec) -> list[Node]:
    """Expand one pool into its nodes, named `<pool>-<n>`."""
    cpu = cpu_to_milli(pool.cpu)
    memory = memory_to_mib(pool.memory)
    nodes = []
    for n in range(pool.count):
        name = f"{pool.name}-{n}"
        gpus: list[Gpu] = []
        labels = {POOL_LABEL: pool.name, "kubernetes.io/hostname": name}
        owner = OWNER_MIXED
        if pool.gpu is not None:
            gpu_mem = _gpu_memory_mib(pool.gpu)
            gpus = [
                Gpu(index=i, model=pool.gpu.model, memory_mib=gpu_mem, uuid=f"GPU-{name}-{i}")
                for i in range(pool.gpu.count)
            ]
            labels.update(gfd_labels(pool.gpu.model, pool.gpu.count, gpu_mem))
            owner = _OWNERS[pool.gpu.sharing]
            if pool.gpu.sharing != "none":
                labels[SHARING_LABEL] = pool.gpu.sharing
            if owner == OWNER_BIGK:
                labels[DEPLOY_DEVICE_PLUGIN_LABEL] = "false"
        labels.update(pool.labels)
        taints = [Taint(t.key, t.value, t.effect) for t in pool.taints]
        nodes.append(Node(name, cpu, memory, pool.pods, gpus, labels, taints, gpu_owner=owner))
    return nodes


def parse_cluster(data: Any, source: str = "<cluster>") -> list[Node]:
    """Validate a parsed cluster document and expand it into nodes."""
    try:
        spec = ClusterSpec.model_validate(data)
        return [node for pool in spec.pools for node in pool_nodes(pool)]
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ClusterFileError(f"{source}: {where}: {err['msg']}") from None
    except QuantityError as exc:
        raise ClusterFileError(f"{source}: {exc}") from None


def load_cluster(path: str | Path) -> list[Node]:
    """Load a cluster file such as `jobspecs/cluster.yaml`."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ClusterFileError(f"{path}: cannot read cluster file: {exc}") from None
    return parse_cluster(data, str(path))
