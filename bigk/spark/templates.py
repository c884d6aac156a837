"""Driver and executor pod templates: what Spark's configuration cannot express.

Spark has no setting for tolerations, for `schedulerName` per pod template, or
for environment variables taken from the pod's own annotations; pod templates
carry those. The user's own `template` (volumes, affinity, sidecars, ...) is the
base and bigk's settings are laid over it, so bigk always wins on scheduling.

Fractional GPU pods do not ask the device plugin for `nvidia.com/gpu` (that would
claim a whole GPU); bigk assigns the GPU at bind time and writes the indices into
the `bigk.io/assigned-gpus` annotation, which the container reads through the
downward API as NVIDIA_VISIBLE_DEVICES.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from bigk.cluster import labels as L
from bigk.spec.gang import tolerations_for
from bigk.spec.model import JobSpec, PodSpec
from bigk.spec.operator import DRIVER_CONTAINER, EXECUTOR_CONTAINER
from bigk.spec.policy import Level, harden_template

log = logging.getLogger(__name__)

CONTAINER_NAMES = {"driver": DRIVER_CONTAINER, "executor": EXECUTOR_CONTAINER}


def _annotation_env(name: str, annotation: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{annotation}']"}}}


def mps_limits(milli: int, memory_mib: int) -> list[dict[str, str]]:
    """CUDA MPS client limits for a share (docs/gpus.md): enforced where the pool runs an MPS server for the
    GPU (bigk.io/gpu-sharing=mps); without one CUDA ignores them. Device 0 is the one GPU the pod sees."""
    return [{"name": "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", "value": str(max(1, round(milli / 10)))},
            {"name": "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT", "value": f"0={memory_mib}M"}]


def _merge_named(base: list[Any], extra: list[dict[str, Any]], key: str) -> list[Any]:
    """Append `extra` items to `base`, replacing base items with the same `key` value."""
    names = {item.get(key) for item in extra}
    return [item for item in base if not (isinstance(item, dict) and item.get(key) in names)] + extra


def _main_container(containers: list[dict[str, Any]], role: str) -> dict[str, Any]:
    """The template's Spark container (created first in the list when the template has none)."""
    name = CONTAINER_NAMES[role]
    main = next((c for c in containers if c.get("name") == name), None)
    if main is None:
        main = {"name": name}
        containers.insert(0, main)
    return main


def pod_template(
    job: JobSpec, role: str, labels: dict[str, str], annotations: dict[str, str], level: Level = "restricted"
) -> tuple[dict[str, Any], bool]:
    """The pod template for `role`; also says whether it defines the main Spark container.

    `level` is the Pod Security Standards level the install grants the job (see `bigk.spec.policy`): bigk
    removes what is its own to decide (nodeName, container resources) and, at `restricted`, fills in the
    security settings the level requires, including on the main container.
    """
    pod: PodSpec = job.spec.driver if role == "driver" else job.spec.executor
    template: dict[str, Any] = copy.deepcopy(pod.template) if pod.template else {}
    template["apiVersion"] = "v1"
    template["kind"] = "Pod"
    meta = template.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **labels}
    meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
    spec = template.setdefault("spec", {})
    spec["schedulerName"] = L.SCHEDULER_NAME
    tolerations = [t.to_pod() for t in tolerations_for(job, role)]
    existing = [t for t in spec.get("tolerations") or [] if t not in tolerations]
    if existing or tolerations:
        spec["tolerations"] = existing + tolerations
    if role == "driver" and job.spec.activeDeadlineSeconds:
        spec["activeDeadlineSeconds"] = job.spec.activeDeadlineSeconds
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    if pod.sourced_env or pod.envFrom:
        # Spark's conf carries only literal variables; Secret, ConfigMap and downward-API ones need the template.
        main = _main_container(containers, role)
        main["env"] = _merge_named(main.get("env") or [], [v.to_container() for v in pod.sourced_env], "name")
        if pod.envFrom:
            main["envFrom"] = [*(main.get("envFrom") or []), *(e.model_dump(exclude_none=True) for e in pod.envFrom)]
    if pod.gpu is not None and pod.gpu.is_fractional:
        main = _main_container(containers, role)
        main["env"] = _merge_named(
            main.get("env") or [],
            [
                _annotation_env("NVIDIA_VISIBLE_DEVICES", L.ASSIGNED_GPUS_ANNOTATION),
                _annotation_env("BIGK_ASSIGNED_GPUS", L.ASSIGNED_GPUS_ANNOTATION),
                {"name": "BIGK_GPU_FRACTION", "value": f"{pod.gpu.milli / 1000:g}"},
                {"name": "BIGK_GPU_MEMORY_MIB", "value": str(pod.gpu.memory_mib)},
                *mps_limits(pod.gpu.milli, pod.gpu.memory_mib),
            ],
            "name",
        )
    if level == "restricted" and not any(c.get("name") == CONTAINER_NAMES[role] for c in containers):
        containers.insert(0, {"name": CONTAINER_NAMES[role]})  # Spark merges its container into this one
    if containers:
        spec["containers"] = containers
    removed = harden_template(template, level)
    if removed:
        log.warning("event=template_fields_removed job=%s role=%s fields=%s", job.metadata.name, role,
                    ",".join(removed))
    return template, bool(containers)
