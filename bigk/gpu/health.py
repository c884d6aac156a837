"""Health rules: when a GPU should no longer receive work.

The rules follow what the NVIDIA device plugin and DCGM health checks act on,
turned into a verdict with short reason codes an operator can read:

- `gpu_lost`           NVML says the GPU fell off the bus (NVML_ERROR_GPU_IS_LOST).
- `unreadable`         memory, utilisation and temperature all failed with real errors
                       (not "not supported"): the driver cannot talk to the GPU.
- `ecc_uncorrected`    volatile uncorrected (double-bit) ECC errors since the last reset.
- `retired_pages_pending` / `row_remap_pending`: memory repair waits for a GPU reset.
- `row_remap_failed`   the GPU ran out of spare rows: a hardware fault.
- `xid_<n>`            a critical XID event was seen. Like the device plugin, XIDs
                       caused by applications (13, 31, 43, 45, 68, 109) are ignored and
                       every other XID marks the GPU unhealthy until the agent restarts.
- `overheating`        temperature at or above the GPU's slowdown threshold
                       (DEFAULT_SLOWDOWN_C when the GPU does not report one).
- `hw_slowdown`        clocks held down by hardware slowdown, thermal or power brake.

Power state (P-state) is reported but is not a health signal: idle GPUs sit in P8.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

APPLICATION_XIDS = frozenset({13, 31, 43, 45, 68, 109})
DEFAULT_SLOWDOWN_C = 90.0

# nvmlClocksEventReason* bits that mean the hardware is protecting itself.
CLOCKS_HW_SLOWDOWN = 0x8
CLOCKS_HW_THERMAL = 0x40
CLOCKS_HW_POWER_BRAKE = 0x80
_HW_SLOWDOWN_MASK = CLOCKS_HW_SLOWDOWN | CLOCKS_HW_THERMAL | CLOCKS_HW_POWER_BRAKE


@dataclass
class HealthInputs:
    """What the reader learned about one GPU; None = not read (unsupported or failed)."""

    temperature_c: float | None = None
    slowdown_temp_c: float | None = None
    ecc_uncorrected_volatile: int | None = None
    retired_pages_pending: bool | None = None
    row_remap_pending: bool | None = None
    row_remap_failed: bool | None = None
    clocks_event_reasons: int | None = None
    xids: frozenset[int] = frozenset()
    lost: bool = False
    unreadable: bool = False


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)


def critical_xids(xids: Iterable[int]) -> list[int]:
    """The XIDs that mean the GPU itself is in trouble, sorted."""
    return sorted({x for x in xids if x not in APPLICATION_XIDS})


# A flag of HealthInputs that alone makes a GPU unhealthy, and the reason code it reports.
_FLAG_REASONS = (
    ("lost", "gpu_lost"),
    ("unreadable", "unreadable"),
    ("ecc_uncorrected_volatile", "ecc_uncorrected"),
    ("retired_pages_pending", "retired_pages_pending"),
    ("row_remap_failed", "row_remap_failed"),
    ("row_remap_pending", "row_remap_pending"),
)


def judge(inputs: HealthInputs) -> Verdict:
    """Apply every rule; the GPU is healthy only if none fires."""
    reasons = [reason for flag, reason in _FLAG_REASONS if getattr(inputs, flag)]
    reasons.extend(f"xid_{x}" for x in critical_xids(inputs.xids))
    limit = inputs.slowdown_temp_c or DEFAULT_SLOWDOWN_C
    if inputs.temperature_c is not None and inputs.temperature_c >= limit:
        reasons.append("overheating")
    if inputs.clocks_event_reasons is not None and inputs.clocks_event_reasons & _HW_SLOWDOWN_MASK:
        reasons.append("hw_slowdown")
    return Verdict(not reasons, tuple(reasons))
