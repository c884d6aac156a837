"""`Usage`: an amount of the resources queues count, with arithmetic (Kueue's workload.Usage).

CPU in milli-CPU, memory in MiB, GPUs in milli-GPU (the units of `bigk.cluster.model`),
plus the GPUs split by GPU model: the product NVIDIA's GPU feature discovery writes in
`nvidia.com/gpu.product` (e.g. `NVIDIA-A100-SXM4-80GB`) of the node they are on. GPUs
not placed yet have no model, so `gpu` may exceed the sum of `gpu_by_model`.

Queue quotas name models the way job specs do (`A100`, `H100-80GB`); `on_model(alias)`
sums the products an alias matches by the rule of `bigk.cluster.gpu_labels.model_matches`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bigk.cluster.gpu_labels import model_matches
from bigk.cluster.model import PodRequest

RESOURCES = ("cpu", "memory", "gpu")


def _merged(a: tuple[tuple[str, int], ...], b: tuple[tuple[str, int], ...], sign: int) -> tuple[tuple[str, int], ...]:
    if not b:
        return a
    out = dict(a)
    for model, v in b:
        out[model] = out.get(model, 0) + sign * v
    return tuple(sorted((m, v) for m, v in out.items() if v))


@dataclass(frozen=True)
class Usage:
    """CPU, memory and GPUs, and GPUs per GPU product; immutable, added and subtracted like numbers."""

    cpu: int = 0
    memory: int = 0
    gpu: int = 0
    gpu_by_model: tuple[tuple[str, int], ...] = ()  # (product, milli-GPU), sorted, no zeros

    @classmethod
    def of(cls, value: Usage | tuple[int, int, int] | Iterable[int]) -> Usage:
        """A Usage from a Usage or from the older positional (cpu, memory, gpu) triple."""
        if isinstance(value, Usage):
            return value
        cpu, memory, gpu = value
        return cls(int(cpu), int(memory), int(gpu))

    @classmethod
    def of_request(cls, req: PodRequest, model: str = "") -> Usage:
        """What one pod asks for; `model` is the product of the node it is (or will be) on, '' if not known."""
        gpu = req.total_gpu_milli
        return cls(req.cpu_milli, req.memory_mib, gpu, ((model, gpu),) if model and gpu else ())

    @classmethod
    def from_dict(cls, values: Mapping[str, int], by_model: Mapping[str, int] | None = None) -> Usage:
        return cls(values.get("cpu", 0), values.get("memory", 0), values.get("gpu", 0),
                   tuple(sorted((m, v) for m, v in (by_model or {}).items() if v)))

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.cpu + other.cpu, self.memory + other.memory, self.gpu + other.gpu,
                     _merged(self.gpu_by_model, other.gpu_by_model, 1))

    def __sub__(self, other: Usage) -> Usage:
        return Usage(self.cpu - other.cpu, self.memory - other.memory, self.gpu - other.gpu,
                     _merged(self.gpu_by_model, other.gpu_by_model, -1))

    def __neg__(self) -> Usage:
        return Usage(-self.cpu, -self.memory, -self.gpu, tuple((m, -v) for m, v in self.gpu_by_model))

    def __mul__(self, k: int) -> Usage:
        if k == 1:
            return self
        return Usage(self.cpu * k, self.memory * k, self.gpu * k,
                     tuple((m, v * k) for m, v in self.gpu_by_model if v * k))

    __rmul__ = __mul__

    def get(self, resource: str) -> int:
        """'cpu', 'memory' or 'gpu'."""
        if resource == "cpu":
            return self.cpu
        if resource == "memory":
            return self.memory
        if resource == "gpu":
            return self.gpu
        raise KeyError(resource)

    def triple(self) -> tuple[int, int, int]:
        return self.cpu, self.memory, self.gpu

    def as_dict(self) -> dict[str, int]:
        return {"cpu": self.cpu, "memory": self.memory, "gpu": self.gpu}

    def models(self) -> dict[str, int]:
        """milli-GPU by product."""
        return dict(self.gpu_by_model)

    def on_product(self, product: str) -> int:
        return next((v for m, v in self.gpu_by_model if m == product), 0)

    def on_model(self, alias: str) -> int:
        """milli-GPU on the products that the model name `alias` matches (`A100` matches every A100 product)."""
        return sum(v for m, v in self.gpu_by_model if model_matches(m, alias))

    def is_zero(self) -> bool:
        return not (self.cpu or self.memory or self.gpu or self.gpu_by_model)


ZERO = Usage()


class Tally:
    """A mutable running sum of Usage (for the hot paths that add per pod); `frozen()` reads it."""

    __slots__ = ("cpu", "memory", "gpu", "by_model")

    def __init__(self) -> None:
        self.cpu = self.memory = self.gpu = 0
        self.by_model: dict[str, int] = {}

    def add(self, u: Usage, sign: int = 1) -> None:
        self.cpu += sign * u.cpu
        self.memory += sign * u.memory
        self.gpu += sign * u.gpu
        for m, v in u.gpu_by_model:
            left = self.by_model.get(m, 0) + sign * v
            if left:
                self.by_model[m] = left
            else:
                self.by_model.pop(m, None)

    def add_request(self, req: PodRequest, model: str = "", sign: int = 1) -> None:
        self.cpu += sign * req.cpu_milli
        self.memory += sign * req.memory_mib
        gpu = req.total_gpu_milli
        self.gpu += sign * gpu
        if model and gpu:
            left = self.by_model.get(model, 0) + sign * gpu
            if left:
                self.by_model[model] = left
            else:
                self.by_model.pop(model, None)

    def frozen(self) -> Usage:
        return Usage(self.cpu, self.memory, self.gpu, tuple(sorted(self.by_model.items())))
