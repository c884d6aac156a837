"""Memory sizes as people write them in job specs: Spark style ('4g', '512m') or Kubernetes style ('4Gi').

Spark configuration only understands its own style, so specs are normalised to it
when rendered; the scheduler only ever sees MiB.
"""

from __future__ import annotations

import re

from bigk.cluster.quantity import QuantityError, memory_to_mib, spark_memory_to_mib

# Only the binary suffixes are read the Kubernetes way; '4G' means 4 GiB, as in Spark.
_K8S_BINARY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi)$")


def memory_mib(value: str | int) -> int:
    """'4g' / '4G' / '4Gi' / '512m' / 512 (MiB, Spark's default unit) -> MiB.

    Raises QuantityError with a message that shows both accepted styles.
    """
    if isinstance(value, bool):
        raise QuantityError(f"expected a memory size such as '4g' or '4Gi', got {value!r}")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    try:
        if _K8S_BINARY.match(text):
            return memory_to_mib(text)
        return spark_memory_to_mib(text)
    except QuantityError:
        raise QuantityError(
            f"invalid memory size {value!r} (use Spark style '4g', '512m' or Kubernetes style '4Gi')"
        ) from None


def spark_memory(mib: int) -> str:
    """MiB -> Spark's notation: 4096 -> '4g', 1536 -> '1536m'."""
    return f"{mib // 1024}g" if mib % 1024 == 0 else f"{mib}m"
