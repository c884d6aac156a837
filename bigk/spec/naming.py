"""Deterministic Kubernetes names for a job's run: the gang, the driver pod, the executor prefix.

The service must find a run's driver again after a restart, so names derive from
(job, run id) alone. Kubernetes names are at most 63 characters and Spark allows
an executor pod-name prefix of at most 47; longer names are cut and given a
short hash of the full name so that two long runs never collide.
"""

from __future__ import annotations

import hashlib
import re

_INVALID = re.compile(r"[^a-z0-9-]+")
DRIVER_SUFFIX = "-driver"
EXECUTOR_PREFIX_LIMIT = 47  # Spark rejects longer spark.kubernetes.executor.podNamePrefix values


def run_prefix(job: str, run_id: str, limit: int) -> str:
    """'<job>-<run id>' as a DNS-1123 label of at most `limit` characters."""
    base = _INVALID.sub("-", f"{job}-{run_id}".lower()).strip("-") or "run"
    if len(base) <= limit:
        return base
    digest = hashlib.sha1(base.encode()).hexdigest()[:8]
    return f"{base[: limit - 9].rstrip('-')}-{digest}"


def gang_name(job: str, run_id: str) -> str:
    """Name of the run's gang; the driver pod is this plus '-driver'."""
    return run_prefix(job, run_id, 63 - len(DRIVER_SUFFIX))


def driver_pod_name(job: str, run_id: str) -> str:
    return gang_name(job, run_id) + DRIVER_SUFFIX


def executor_pod_prefix(job: str, run_id: str) -> str:
    return run_prefix(job, run_id, EXECUTOR_PREFIX_LIMIT)
