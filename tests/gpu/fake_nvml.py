"""A stand-in for the NVML functions of `pynvml`, installed with pytest's monkeypatch.

Each fake GPU is a dict of field -> value; a value that is an `NVMLError` is
raised instead of returned, so tests can break any field of any GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest

GIB = 1024**3


def healthy_gpu(index: int, util: int = 10, free_gib: int = 70) -> dict[str, Any]:
    return {
        "uuid": f"GPU-0000-{index}",
        "name": "NVIDIA A100-SXM4-80GB",
        "memory": SimpleNamespace(total=80 * GIB, free=free_gib * GIB, used=(80 - free_gib) * GIB),
        "utilization": SimpleNamespace(gpu=util, memory=5),
        "temperature": 45,
        "temperature_threshold": 87,
        "ecc": 0,
        "retired_pages": pynvml.NVML_FEATURE_DISABLED,
        "remapped_rows": (0, 0, 0, 0),
        "clocks": 0,
        "power_state": 0,
    }


def err(code: int) -> pynvml.NVMLError:
    return pynvml.NVMLError(code)


class FakeNvml:
    """Holds the fake GPUs and the XID events waiting to be read."""

    def __init__(self, gpus: list[dict[str, Any]], init_error: int | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.xid_events: list[tuple[int, int]] = []  # (gpu index, xid)
        self.initialised = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def field(name: str) -> Callable[..., Any]:
            def getter(handle: int, *args: Any) -> Any:
                value = self.gpus[handle][name]
                if isinstance(value, pynvml.NVMLError):
                    raise value
                return value
            return getter

        def init() -> None:
            if self.init_error is not None:
                raise err(self.init_error)
            self.initialised += 1

        def handle(index: int) -> int:
            value = self.gpus[index].get("handle")
            if isinstance(value, pynvml.NVMLError):
                raise value
            return index

        def wait(event_set: object, timeout_ms: int) -> SimpleNamespace:
            if not self.xid_events:
                raise err(pynvml.NVML_ERROR_TIMEOUT)
            gpu, xid = self.xid_events.pop(0)
            return SimpleNamespace(device=gpu, eventData=xid, eventType=pynvml.nvmlEventTypeXidCriticalError)

        patches: dict[str, Callable[..., Any]] = {
            "nvmlInit": init,
            "nvmlShutdown": lambda: None,
            "nvmlDeviceGetCount": lambda: len(self.gpus),
            "nvmlDeviceGetHandleByIndex": handle,
            "nvmlDeviceGetIndex": lambda h: h,
            "nvmlDeviceGetUUID": field("uuid"),
            "nvmlDeviceGetName": field("name"),
            "nvmlDeviceGetMemoryInfo": field("memory"),
            "nvmlDeviceGetUtilizationRates": field("utilization"),
            "nvmlDeviceGetTemperature": field("temperature"),
            "nvmlDeviceGetTemperatureThreshold": field("temperature_threshold"),
            "nvmlDeviceGetTotalEccErrors": field("ecc"),
            "nvmlDeviceGetRetiredPagesPendingStatus": field("retired_pages"),
            "nvmlDeviceGetRemappedRows": field("remapped_rows"),
            "nvmlDeviceGetCurrentClocksEventReasons": field("clocks"),
            "nvmlDeviceGetPowerState": field("power_state"),
            "nvmlEventSetCreate": lambda: object(),
            "nvmlEventSetFree": lambda s: None,
            "nvmlDeviceRegisterEvents": lambda h, kind, s: None,
            "nvmlEventSetWait_v2": wait,
        }
        for name, fn in patches.items():
            monkeypatch.setattr(pynvml, name, fn)
