"""Read every GPU on this machine through NVML (the `pynvml` module of nvidia-ml-py).

Every field is read on its own: an NVML error on one field of one GPU leaves
that field unknown (None) and is counted, it never hides the other fields or the
other GPUs. "Not supported" (e.g. ECC on consumer cards) is not an error.

The module calls `pynvml.<function>` at call time, so tests replace those
attributes with fakes to exercise every error path without a GPU.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pynvml

from bigk import metrics
from bigk.cluster.readings import ReadingRecord
from bigk.errors import BigkError
from bigk.gpu.health import HealthInputs, Verdict, judge

log = logging.getLogger(__name__)
T = TypeVar("T")
MIB = 1024 * 1024


class NvmlUnavailable(BigkError):
    """NVML cannot be used here (no driver, no library, no permission)."""


@dataclass
class GpuSample:
    """Everything read from one GPU in one pass; None = unknown."""

    index: int
    uuid: str = ""
    model: str = ""
    memory_total_mib: int | None = None
    memory_free_mib: int | None = None
    memory_used_mib: int | None = None
    utilization_pct: float | None = None
    power_state: int | None = None  # P-state 0 (max performance) .. 15; 32 = unknown
    health: HealthInputs = field(default_factory=HealthInputs)
    errors: dict[str, str] = field(default_factory=dict)  # field -> NVML error text

    def verdict(self) -> Verdict:
        return judge(self.health)

    def record(self, observed_at: float) -> ReadingRecord:
        """This sample in the annotation's format."""
        verdict = self.verdict()
        return ReadingRecord(
            index=self.index, uuid=self.uuid, model=self.model,
            memory_total_mib=self.memory_total_mib, memory_free_mib=self.memory_free_mib,
            utilization_pct=self.utilization_pct, temperature_c=self.health.temperature_c,
            healthy=verdict.healthy, observed_at=observed_at, health_reasons=verdict.reasons,
        )


class NvmlReader:
    """An open NVML session; `read()` samples every GPU.

    XID events are collected through an NVML event set when the driver supports
    it; a critical XID stays on the GPU's record until the reader is closed (the
    same as the NVIDIA device plugin, which keeps such a GPU unhealthy until restart).
    """

    def __init__(self, watch_xids: bool = True) -> None:
        self._watch_xids = watch_xids
        self._events: Any = None
        self._xids: dict[int, set[int]] = {}
        self._open = False

    def __enter__(self) -> NvmlReader:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise NvmlUnavailable(
                f"NVML is not available on this machine ({exc}): run `bigk agent` on a GPU node with the NVIDIA "
                "driver and container runtime, or read GPUs from DCGM instead") from exc
        except OSError as exc:  # a broken libnvidia-ml.so
            raise NvmlUnavailable(f"NVML library could not be loaded: {exc}") from exc
        self._open = True
        if self._watch_xids:
            self._register_xid_events()

    def close(self) -> None:
        if not self._open:
            return
        if self._events is not None:
            _quiet(lambda: pynvml.nvmlEventSetFree(self._events))
            self._events = None
        _quiet(pynvml.nvmlShutdown)
        self._open = False

    def read(self) -> list[GpuSample]:
        """Sample every GPU; GPUs that cannot even be opened come back marked unhealthy."""
        if not self._open:
            raise NvmlUnavailable("NVML reader used before open()")
        try:
            count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError as exc:
            raise NvmlUnavailable(f"NVML cannot count GPUs: {exc}") from exc
        self._drain_xid_events()
        return [self._read_one(i) for i in range(count)]

    # ---- one GPU -------------------------------------------------------------------------
    def _read_one(self, index: int) -> GpuSample:
        sample = GpuSample(index=index)
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        except pynvml.NVMLError as exc:
            _note(sample, "handle", exc)
            sample.health.unreadable = True
            return sample
        get = _FieldReader(sample)
        sample.uuid = get("uuid", lambda: _text(pynvml.nvmlDeviceGetUUID(handle))) or ""
        sample.model = get("name", lambda: _text(pynvml.nvmlDeviceGetName(handle))) or ""
        memory = get("memory", lambda: pynvml.nvmlDeviceGetMemoryInfo(handle))
        if memory is not None:
            sample.memory_total_mib = int(memory.total) // MIB
            sample.memory_free_mib = int(memory.free) // MIB
            sample.memory_used_mib = int(memory.used) // MIB
        util = get("utilization", lambda: pynvml.nvmlDeviceGetUtilizationRates(handle))
        if util is not None:
            sample.utilization_pct = float(util.gpu)
        h = sample.health
        temp = get("temperature", lambda: pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU))
        h.temperature_c = None if temp is None else float(temp)
        slowdown = get("temperature_threshold", lambda: pynvml.nvmlDeviceGetTemperatureThreshold(
            handle, pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN))
        h.slowdown_temp_c = float(slowdown) if slowdown else None
        h.ecc_uncorrected_volatile = get("ecc", lambda: int(pynvml.nvmlDeviceGetTotalEccErrors(
            handle, pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, pynvml.NVML_VOLATILE_ECC)))
        pending = get("retired_pages", lambda: pynvml.nvmlDeviceGetRetiredPagesPendingStatus(handle))
        h.retired_pages_pending = None if pending is None else pending == pynvml.NVML_FEATURE_ENABLED
        rows = get("remapped_rows", lambda: pynvml.nvmlDeviceGetRemappedRows(handle))
        if rows is not None:
            h.row_remap_pending = bool(rows[2])
            h.row_remap_failed = bool(rows[3])
        h.clocks_event_reasons = get("clocks_event_reasons", lambda: int(_clocks_event_reasons(handle)))
        sample.power_state = get("power_state", lambda: int(pynvml.nvmlDeviceGetPowerState(handle)))
        h.xids = frozenset(self._xids.get(index, ()))
        h.lost = get.lost
        core = ("memory", "utilization", "temperature")
        h.unreadable = all(name in sample.errors for name in core)
        return sample

    # ---- XID events ----------------------------------------------------------------------
    def _register_xid_events(self) -> None:
        try:
            self._events = pynvml.nvmlEventSetCreate()
            for i in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(i)
                try:
                    pynvml.nvmlDeviceRegisterEvents(handle, pynvml.nvmlEventTypeXidCriticalError, self._events)
                except pynvml.NVMLError as exc:
                    log.info("event=xid_watch_unsupported gpu=%d error=%r", i, str(exc))
        except pynvml.NVMLError as exc:
            log.info("event=xid_watch_unavailable error=%r", str(exc))
            self._events = None

    def _drain_xid_events(self) -> None:
        """Collect XID events that arrived since the last read (never blocks)."""
        if self._events is None:
            return
        for _ in range(1000):  # bounded: a storm of events must not stall the agent
            try:
                data = pynvml.nvmlEventSetWait_v2(self._events, 0)
            except pynvml.NVMLError as exc:
                if exc.value != pynvml.NVML_ERROR_TIMEOUT:
                    log.warning("event=xid_wait_failed error=%r", str(exc))
                return
            try:
                index = int(pynvml.nvmlDeviceGetIndex(data.device))
            except pynvml.NVMLError:
                continue
            xid = int(data.eventData)
            self._xids.setdefault(index, set()).add(xid)
            log.warning("event=xid gpu=%d xid=%d", index, xid)


def read_records(reader: NvmlReader, now: Callable[[], float] = time.time) -> list[ReadingRecord]:
    """One pass over all GPUs, as annotation records stamped with the time of reading."""
    samples = reader.read()
    at = now()
    return [s.record(at) for s in samples]


class _FieldReader:
    """Calls one NVML getter, turning errors into an unknown field plus a note on the sample."""

    def __init__(self, sample: GpuSample) -> None:
        self.sample = sample
        self.lost = False

    def __call__(self, name: str, fn: Callable[[], T]) -> T | None:
        try:
            return fn()
        except pynvml.NVMLError as exc:
            if exc.value == pynvml.NVML_ERROR_NOT_SUPPORTED:
                return None
            if exc.value == pynvml.NVML_ERROR_GPU_IS_LOST:
                self.lost = True
            _note(self.sample, name, exc)
            return None


def _note(sample: GpuSample, name: str, exc: Exception) -> None:
    sample.errors[name] = str(exc)
    metrics.record_agent_read_error(name)
    log.warning("event=nvml_field_failed gpu=%d field=%s error=%r", sample.index, name, str(exc))


def _clocks_event_reasons(handle: object) -> int:
    getter = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
    if getter is None:  # older nvidia-ml-py
        getter = pynvml.nvmlDeviceGetCurrentClocksThrottleReasons
    return int(getter(handle))


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _quiet(fn: Callable[[], object]) -> None:
    try:
        fn()
    except pynvml.NVMLError as exc:
        log.debug("event=nvml_cleanup_failed error=%r", str(exc))
