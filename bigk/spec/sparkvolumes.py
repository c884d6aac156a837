"""Spark's own volume settings, checked before a run instead of failing inside spark-submit or the driver.

`spark.kubernetes.{driver,executor}.volumes.TYPE.NAME.{mount,options}.KEY` (Spark's "Using
Kubernetes Volumes") mounts hostPath, emptyDir, nfs and persistentVolumeClaim volumes. Each
needs `mount.path`; a claim needs `options.claimName`, and an on-demand claim (`OnDemand`, or a
name with `SPARK_EXECUTOR_ID`, one PVC per executor created by the driver) needs
`options.sizeLimit`, which Spark's driver reads without checking. emptyDir takes `medium`
("" or Memory) and a `sizeLimit`.

A memory-backed emptyDir (tmpfs) counts against its container's memory limit, so bigk adds
the `sizeLimit` of each one a pod has (pod template or Spark settings) to that pod's memory
overhead: the pod asks for, and is scheduled with, the room its tmpfs may fill.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bigk.cluster.quantity import QuantityError, memory_to_mib

_KEY = re.compile(r"^spark\.kubernetes\.(driver|executor)\.volumes\.([^.]+)\.([^.]+)\.(mount|options)\.(.+)$")
TYPES = ("hostPath", "emptyDir", "nfs", "persistentVolumeClaim")
ON_DEMAND = "OnDemand"


def is_on_demand(claim: str) -> bool:
    return claim == ON_DEMAND or "SPARK_EXECUTOR_ID" in claim


def _quantity_problem(value: str) -> str | None:
    try:
        return None if memory_to_mib(value) > 0 else f"{value!r} must be more than zero"
    except QuantityError:
        return f"{value!r} is not a Kubernetes quantity such as '50Gi'"


def volume_problems(conf: Mapping[str, str]) -> list[tuple[str, str]]:
    """(setting name, message) for each Spark volume that Spark would refuse or mishandle."""
    groups: dict[tuple[str, str, str], dict[str, tuple[str, str]]] = {}
    for key, value in conf.items():
        found = _KEY.match(key)
        if found:
            role, kind, name, part, option = found.groups()
            groups.setdefault((role, kind, name), {})[f"{part}.{option}"] = (key, value)
    problems: list[tuple[str, str]] = []
    for (role, kind, name), settings in sorted(groups.items()):
        first = min(k for k, _ in settings.values())
        prefix = f"spark.kubernetes.{role}.volumes.{kind}.{name}"
        if kind not in TYPES:
            problems.append((first, f"volume type {kind!r} is not one Spark mounts ({', '.join(TYPES)})"))
            continue
        if "mount.path" not in settings:
            problems.append((first, f"volume {name!r} needs {prefix}.mount.path"))
        if kind == "persistentVolumeClaim":
            claim = settings.get("options.claimName")
            if claim is None:
                problems.append((first, f"volume {name!r} needs {prefix}.options.claimName (a claim, or OnDemand)"))
            elif is_on_demand(claim[1]) and "options.sizeLimit" not in settings:
                problems.append((claim[0], f"an on-demand claim needs {prefix}.options.sizeLimit (e.g. 50Gi): "
                                           "the driver creates the PVC with that size"))
        if kind == "emptyDir":
            medium = settings.get("options.medium")
            if medium is not None and medium[1] not in ("", "Memory"):
                problems.append((medium[0], f"emptyDir medium {medium[1]!r} must be '' (node disk) or Memory"))
        if kind == "hostPath" and "options.path" not in settings:
            problems.append((first, f"volume {name!r} needs {prefix}.options.path (the path on the node)"))
        if kind == "nfs":
            for needed in ("options.server", "options.path"):
                if needed not in settings:
                    problems.append((first, f"volume {name!r} needs {prefix}.{needed}"))
        size = settings.get("options.sizeLimit")
        if size is not None:
            problem = _quantity_problem(size[1])
            if problem:
                problems.append((size[0], f"sizeLimit {problem}"))
    return problems


def _mib(size: Any) -> int:
    try:
        return max(0, memory_to_mib(str(size)))
    except QuantityError:
        return 0  # reported by volume_problems / the API server


def memory_volumes_mib(template: Any, conf: Mapping[str, str], role: str) -> int:
    """MiB of memory-backed emptyDirs (their sizeLimit) in a pod of `role`: its template's and Spark's own."""
    total = 0
    spec = template.get("spec") if isinstance(template, dict) else None
    spec = spec if isinstance(spec, dict) else {}
    mounted = {m.get("name") for key in ("containers", "initContainers") for c in spec.get(key) or []
               if isinstance(c, dict) for m in c.get("volumeMounts") or [] if isinstance(m, dict)}
    for volume in spec.get("volumes") or []:
        empty = volume.get("emptyDir") if isinstance(volume, dict) else None
        if (isinstance(empty, dict) and empty.get("medium") == "Memory" and empty.get("sizeLimit") is not None
                and volume.get("name") in mounted):  # an unmounted tmpfs holds nothing
            total += _mib(empty["sizeLimit"])
    prefix = f"spark.kubernetes.{role}.volumes.emptyDir."
    for key, value in conf.items():
        if key.startswith(prefix) and key.endswith(".options.medium") and value == "Memory":
            size = conf.get(key[: -len("medium")] + "sizeLimit")
            total += _mib(size) if size is not None else 0
    return total
