"""Defaults and the required-field checks the real API server applies to storage objects.

PersistentVolumeClaims, PersistentVolumes, StorageClasses and CSINodes are served
so that bigk's volume filters (VolumeBinding, VolumeZone, VolumeRestrictions,
NodeVolumeLimits) can be exercised against the emulator exactly as against
kube-apiserver: the same objects are accepted or refused, with the same defaults.
No volume is provisioned here (nor by a bare kube-apiserver): a test acts as the
provisioner when it needs a bound claim.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bigk.emulator.errors import invalid

Obj = dict[str, Any]

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
_BINDING_MODES = ("Immediate", "WaitForFirstConsumer")


def _claim_defaults(obj: Obj) -> None:
    name = obj["metadata"]["name"]
    spec = obj.setdefault("spec", {})
    modes = spec.get("accessModes") or []
    if not modes:
        raise invalid("PersistentVolumeClaim", name, "spec.accessModes", "Required value: at least 1 access mode is "
                      "required")
    for mode in modes:
        if mode not in _ACCESS_MODES:
            raise invalid("PersistentVolumeClaim", name, "spec.accessModes", f'Unsupported value: "{mode}"')
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    if storage is None:
        raise invalid("PersistentVolumeClaim", name, "spec.resources[storage]", "Required value")
    spec.setdefault("volumeMode", "Filesystem")
    obj["status"] = {"phase": "Pending"}


def _volume_defaults(obj: Obj) -> None:
    name = obj["metadata"]["name"]
    spec = obj.setdefault("spec", {})
    if not spec.get("accessModes"):
        raise invalid("PersistentVolume", name, "spec.accessModes", "Required value: must specify at least 1 access "
                      "mode")
    if ((spec.get("capacity") or {}).get("storage")) is None:
        raise invalid("PersistentVolume", name, "spec.capacity", "Required value")
    csi = spec.get("csi")
    if isinstance(csi, dict):
        driver = str(csi.get("driver") or "")
        if not driver or len(driver) > 63 or not _DNS_SUBDOMAIN.match(driver.lower()):
            raise invalid("PersistentVolume", name, "spec.csi.driver", f'Invalid value: "{driver}": a lowercase '
                          "RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
                          "must start and end with an alphanumeric character")
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    spec.setdefault("volumeMode", "Filesystem")
    obj["status"] = {"phase": "Pending"}


def _class_defaults(obj: Obj) -> None:
    name = obj["metadata"]["name"]
    if not obj.get("provisioner"):
        raise invalid("StorageClass", name, "provisioner", "Required value", "storage.k8s.io")
    obj.setdefault("reclaimPolicy", "Delete")
    obj.setdefault("volumeBindingMode", "Immediate")
    if obj["volumeBindingMode"] not in _BINDING_MODES:
        raise invalid("StorageClass", name, "volumeBindingMode", f'Unsupported value: "{obj["volumeBindingMode"]}"',
                      "storage.k8s.io")


def _csinode_defaults(obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict) or spec.get("drivers") is None:
        raise invalid("CSINode", obj["metadata"]["name"], "spec.drivers", "Required value", "storage.k8s.io")


DEFAULTS: dict[str, Callable[[Obj], None]] = {
    "persistentvolumeclaims": _claim_defaults,
    "persistentvolumes": _volume_defaults,
    "storageclasses.storage.k8s.io": _class_defaults,
    "csinodes.storage.k8s.io": _csinode_defaults,
}

# Objects whose status only the status subresource changes.
STATUS_KEYS = ("persistentvolumeclaims", "persistentvolumes")
# DELETE answers with the deleted object for these (the registry's ReturnDeletedObject), not a Status.
RETURNS_DELETED = ("persistentvolumeclaims", "persistentvolumes", "storageclasses.storage.k8s.io",
                   "csinodes.storage.k8s.io")
