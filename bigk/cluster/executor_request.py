"""The driver annotation that describes one executor of a Spark application.

The spec renderer writes it on the driver pod; the Kubernetes backend reads it
back so that executors the driver has not created yet can be reserved at their
true size (gang admission). Values are bigk units (millicores, MiB, milli-GPU).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from bigk.cluster.model import PodRequest, Toleration


def encode_executor_request(request: PodRequest, node_selector: Mapping[str, str] | None = None,
                            tolerations: Iterable[Toleration] = ()) -> str:
    """The driver annotation value describing one executor (bigk units)."""
    return json.dumps({
        "cpu_milli": request.cpu_milli, "memory_mib": request.memory_mib, "gpu_count": request.gpu_count,
        "gpu_milli": request.gpu_milli, "gpu_memory_mib": request.gpu_memory_mib,
        "gpu_models": sorted(request.gpu_models), "node_selector": dict(node_selector or {}),
        "tolerations": [{"key": t.key, "operator": t.operator, "value": t.value, "effect": t.effect}
                        for t in tolerations],
    }, separators=(",", ":"), sort_keys=True)


def decode_executor_request(text: str) -> tuple[PodRequest, dict[str, str], list[Toleration]] | None:
    """Inverse of `encode_executor_request`; None for anything malformed."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            return None
        req = PodRequest(
            cpu_milli=_nonneg(data.get("cpu_milli", 0)), memory_mib=_nonneg(data.get("memory_mib", 0)),
            gpu_count=_nonneg(data.get("gpu_count", 0)), gpu_milli=_nonneg(data.get("gpu_milli", 0)),
            gpu_memory_mib=_nonneg(data.get("gpu_memory_mib", 0)),
            gpu_models=frozenset(str(m) for m in data.get("gpu_models") or ()),
        )
        if req.gpu_count and not req.gpu_milli:
            req = PodRequest(req.cpu_milli, req.memory_mib, req.gpu_count, 1000, req.gpu_memory_mib, req.gpu_models)
        selector = {str(k): str(v) for k, v in (data.get("node_selector") or {}).items()}
        tolerations = [Toleration(key=str(t.get("key", "")), operator=str(t.get("operator", "Equal")),
                                  value=str(t.get("value", "")), effect=str(t.get("effect", "")))
                       for t in data.get("tolerations") or ()]
        return req, selector, tolerations
    except (ValueError, TypeError, AttributeError):
        return None


def _nonneg(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("boolean where a number belongs")
    number = int(value)
    if number < 0:
        raise ValueError("negative")
    return number
