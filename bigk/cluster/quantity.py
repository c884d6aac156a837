"""Kubernetes resource quantities ("500m", "4Gi", "2") to bigk's integer units.

bigk keeps CPU in millicores and memory in MiB everywhere so that resource
arithmetic is exact integer arithmetic and never drifts.
"""

from __future__ import annotations

import re

_SUFFIX = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "m": 1,  # handled specially for CPU
}
_QUANTITY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]{0,2})\s*$")


class QuantityError(ValueError):
    """A resource quantity that cannot be parsed."""


def _split(value: str | int | float) -> tuple[float, str]:
    if isinstance(value, bool):
        raise QuantityError(f"expected a quantity, got {value!r}")
    if isinstance(value, int | float):
        return float(value), ""
    match = _QUANTITY.match(str(value))
    if not match or match.group(2) not in _SUFFIX:
        raise QuantityError(f"invalid quantity {value!r} (expected e.g. '2', '500m', '4Gi')")
    return float(match.group(1)), match.group(2)


def cpu_to_milli(value: str | int | float) -> int:
    """'2' -> 2000, '500m' -> 500, 1.5 -> 1500."""
    number, suffix = _split(value)
    if suffix == "m":
        return int(round(number))
    if suffix:
        raise QuantityError(f"invalid CPU quantity {value!r} (use cores like '2' or millicores like '500m')")
    return int(round(number * 1000))


def memory_to_mib(value: str | int | float) -> int:
    """'4Gi' -> 4096, '512Mi' -> 512, '1G' -> 954; a bare number is bytes (Kubernetes) ."""
    number, suffix = _split(value)
    if suffix == "m":
        raise QuantityError(f"invalid memory quantity {value!r}")
    # Spark style lower-case suffixes ("4g", "512m") are handled by callers that know Spark syntax.
    return int(-(-number * _SUFFIX[suffix] // 2**20))


def spark_memory_to_mib(value: str) -> int:
    """Spark's JVM memory strings: '4g', '512m', '2048k', bare number = MiB."""
    text = str(value).strip().lower()
    match = re.match(r"^([0-9]+)([kmgtp]?)b?$", text)
    if not match:
        raise QuantityError(f"invalid Spark memory {value!r} (expected e.g. '4g', '512m')")
    number = int(match.group(1))
    scale = {"": 1.0, "k": 1 / 1024, "m": 1.0, "g": 1024.0, "t": 1024.0**2, "p": 1024.0**3}[match.group(2)]
    return int(-(-number * scale // 1))


def format_mib(mib: int) -> str:
    """4096 -> '4Gi', 1536 -> '1536Mi'."""
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def format_milli(milli: int) -> str:
    """2000 -> '2', 1500 -> '1500m'."""
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"
