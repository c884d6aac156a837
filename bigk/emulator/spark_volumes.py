"""Executor PersistentVolumeClaims as Spark's driver makes them (MountVolumesFeatureStep, ExecutorPodsAllocator).

`spark.kubernetes.executor.volumes.persistentVolumeClaim.NAME.mount.path=/data` with
`options.claimName=OnDemand` gives every executor its own claim
`<prefix>-exec-<id>-pvc-<i>` (`SPARK_EXECUTOR_ID` in a claim name is replaced by the id);
with `options.storageClass` and `options.sizeLimit` the driver creates that claim, *after*
the executor pod, owned by the driver pod (`spark.kubernetes.driver.ownPersistentVolumeClaim`),
with access mode ReadWriteOncePod (ReadWriteOnce with
`spark.kubernetes.legacy.useReadWriteOnceAccessMode`). A scheduler therefore sees the pod
before its claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bigk.cluster.labels import SPARK_APP_SELECTOR

Obj = dict[str, Any]
PREFIX = "spark.kubernetes.executor.volumes.persistentVolumeClaim."
ON_DEMAND = "OnDemand"


@dataclass(frozen=True)
class ClaimVolume:
    """One persistentVolumeClaim volume of an executor."""

    volume: str
    claim: str
    mount_path: str
    read_only: bool
    storage_class: str
    size: str


def executor_claims(conf: dict[str, str], prefix: str, exec_id: int) -> list[ClaimVolume]:
    """The claim volumes an executor gets from the Spark conf, in a stable order."""
    names = sorted({key[len(PREFIX):].split(".", 1)[0] for key in conf if key.startswith(PREFIX)})
    out = []
    for i, name in enumerate(names):
        opt = f"{PREFIX}{name}."
        path = conf.get(opt + "mount.path")
        template = conf.get(opt + "options.claimName")
        if not path or not template:
            continue  # Spark refuses such a conf at submit time
        claim = template.replace(ON_DEMAND, f"{prefix}-exec-{exec_id}-pvc-{i}").replace("SPARK_EXECUTOR_ID",
                                                                                         str(exec_id))
        out.append(ClaimVolume(name, claim, path, conf.get(opt + "mount.readOnly", "false").lower() == "true",
                               conf.get(opt + "options.storageClass", ""), conf.get(opt + "options.sizeLimit", "")))
    return out


def mount(spec: Obj, container: Obj, claims: list[ClaimVolume]) -> None:
    """Add the claims' volumes to a pod spec and their mounts to its executor container."""
    if not claims:
        return
    spec["volumes"] = list(spec.get("volumes") or []) + [
        {"name": c.volume, "persistentVolumeClaim": {"claimName": c.claim, "readOnly": c.read_only}} for c in claims]
    container["volumeMounts"] = list(container.get("volumeMounts") or []) + [
        {"name": c.volume, "mountPath": c.mount_path, "readOnly": c.read_only} for c in claims]


def claim_bodies(conf: dict[str, str], driver: Obj, executor: Obj, claims: list[ClaimVolume]) -> list[Obj]:
    """The claims the driver creates after `executor` (only those with a storage class and a size)."""
    dmeta = driver["metadata"]
    own_by_driver = conf.get("spark.kubernetes.driver.ownPersistentVolumeClaim", "true").lower() == "true"
    owner = dmeta if own_by_driver else executor["metadata"]
    legacy = conf.get("spark.kubernetes.legacy.useReadWriteOnceAccessMode", "false").lower() == "true"
    app = (executor["metadata"].get("labels") or {}).get(SPARK_APP_SELECTOR, "")
    out = []
    for c in claims:
        if not c.storage_class or not c.size:
            continue
        out.append({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": c.claim, "labels": {SPARK_APP_SELECTOR: app},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": owner["name"],
                                              "uid": owner.get("uid", ""), "controller": True}]},
            "spec": {"storageClassName": c.storage_class,
                     "accessModes": ["ReadWriteOnce" if legacy else "ReadWriteOncePod"],
                     "resources": {"requests": {"storage": c.size}}},
        })
    return out
