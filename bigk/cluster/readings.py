"""The GPU readings format: one JSON list per node in the `bigk.io/gpu-readings` annotation.

Writers (`bigk agent` via NVML, the DCGM reader, the emulator's simulated GPUs)
and readers (the Kubernetes backend) share this one module so the format has a
single definition; it sits in `cluster` so that `gpu` and `kube` need not import
each other. Each entry:

    {"index": 0, "uuid": "GPU-...", "model": "NVIDIA A100-SXM4-80GB",
     "memory_total_mib": 81920, "memory_free_mib": 80000, "utilization_pct": 3.0,
     "temperature_c": 41.0, "healthy": true, "observed_at": 1764000000.0,
     "health_reasons": []}

A number that could not be read is `null`, never a guess. `health_reasons` is
optional (short codes such as `ecc_uncorrected`, `xid_79`) and says why a GPU
is unhealthy.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from bigk.cluster.labels import GPU_READINGS_ANNOTATION
from bigk.cluster.model import GpuReading
from bigk.cluster.state import ClusterState
from bigk.errors import BigkError


class ReadingsFormatError(BigkError):
    """The readings annotation of a node is not the JSON bigk writes."""


@dataclass(frozen=True)
class ReadingRecord:
    """One GPU's entry in the annotation; None means "could not be read"."""

    index: int
    uuid: str
    model: str
    memory_total_mib: int | None
    memory_free_mib: int | None
    utilization_pct: float | None
    temperature_c: float | None
    healthy: bool
    observed_at: float
    health_reasons: tuple[str, ...] = field(default_factory=tuple)

    def to_json_obj(self) -> dict[str, Any]:
        obj = asdict(self)
        obj["health_reasons"] = list(self.health_reasons)
        return obj

    def to_model(self) -> GpuReading:
        """The scheduler's `GpuReading`; unknown numbers become NaN (treated as unknown by ClusterState)."""
        return GpuReading(
            free_memory_mib=self.memory_free_mib if self.memory_free_mib is not None else math.nan,  # type: ignore[arg-type]
            utilization_pct=_nan(self.utilization_pct),
            temperature_c=_nan(self.temperature_c),
            healthy=self.healthy,
            observed_at=self.observed_at,
        )


def encode(records: Iterable[ReadingRecord]) -> str:
    """The annotation value: compact JSON, GPUs in index order."""
    ordered = sorted(records, key=lambda r: r.index)
    return json.dumps([r.to_json_obj() for r in ordered], separators=(",", ":"), sort_keys=True)


def decode(text: str, where: str = GPU_READINGS_ANNOTATION) -> list[ReadingRecord]:
    """Parse an annotation value; `where` names the node/annotation in error messages."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReadingsFormatError(f"{where}: not JSON ({exc.msg} at character {exc.pos})") from exc
    if not isinstance(data, list):
        raise ReadingsFormatError(f"{where}: expected a JSON list of GPU readings, got {type(data).__name__}")
    out = []
    for n, item in enumerate(data):
        if not isinstance(item, dict):
            raise ReadingsFormatError(f"{where}[{n}]: expected an object, got {type(item).__name__}")
        try:
            out.append(ReadingRecord(
                index=_int(item["index"], "index"),
                uuid=str(item.get("uuid") or ""),
                model=str(item.get("model") or ""),
                memory_total_mib=_opt_int(item.get("memory_total_mib"), "memory_total_mib"),
                memory_free_mib=_opt_int(item.get("memory_free_mib"), "memory_free_mib"),
                utilization_pct=_opt_float(item.get("utilization_pct"), "utilization_pct"),
                temperature_c=_opt_float(item.get("temperature_c"), "temperature_c"),
                healthy=_bool(item.get("healthy"), "healthy"),
                observed_at=_float(item["observed_at"], "observed_at"),
                health_reasons=tuple(str(r) for r in item.get("health_reasons") or ()),
            ))
        except KeyError as exc:
            raise ReadingsFormatError(f"{where}[{n}]: missing field {exc.args[0]!r}") from exc
        except ValueError as exc:
            raise ReadingsFormatError(f"{where}[{n}]: {exc}") from exc
    return out


def apply_to_state(state: ClusterState, node: str, records: Iterable[ReadingRecord]) -> int:
    """Feed a node's readings into the scheduler's arrays; returns how many GPUs were updated.

    GPU indices the node does not have are ignored (a stale annotation after a
    hardware change must not crash the scheduler).
    """
    i = state.index.get(node)
    if i is None:
        return 0
    updated = 0
    for r in records:
        if not 0 <= r.index < state.gpu_present.shape[1] or not state.gpu_present[i, r.index]:
            continue
        state.set_reading(i, r.index, _nan(r.memory_free_mib), _nan(r.utilization_pct), _nan(r.temperature_c),
                          r.healthy, r.observed_at)
        updated += 1
    return updated


def _nan(value: float | int | None) -> float:
    return math.nan if value is None else float(value)


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ValueError(f"field {name!r} must be an integer, got {value!r}")
    return int(value)


def _opt_int(value: object, name: str) -> int | None:
    return None if value is None else _int(value, name)


def _float(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"field {name!r} must be a number, got {value!r}")
    return float(value)


def _opt_float(value: object, name: str) -> float | None:
    return None if value is None else _float(value, name)


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"field {name!r} must be true or false, got {value!r}")
    return value
