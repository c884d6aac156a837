"""The RuntimeClass admission plugin, as kube-apiserver runs it on every pod create.

A pod naming a RuntimeClass gets the class's `overhead.podFixed` as `spec.overhead`
(and its scheduling nodeSelector and tolerations merged in); a pod that names a
missing class, or sets an overhead that differs from its class's, or sets one
without a class, is refused with the real server's 403 message. The scheduler
then adds that overhead to the pod's request, exactly as on a real cluster.
"""

from __future__ import annotations

from typing import Any

from kubernetes.utils import parse_quantity

from bigk.emulator.errors import ApiError
from bigk.emulator.resources import by_key
from bigk.emulator.store import Store

Obj = dict[str, Any]
RUNTIME_CLASSES = by_key("runtimeclasses.node.k8s.io")


def _forbidden(pod: Obj, why: str) -> ApiError:
    name = pod["metadata"]["name"]
    return ApiError(403, "Forbidden", f'pods "{name}" is forbidden: {why}')


def _quantities_equal(a: Obj, b: Obj) -> bool:
    if set(a) != set(b):
        return False
    return all(parse_quantity(a[k]) == parse_quantity(b[k]) for k in a)


def apply_runtime_class(store: Store, pod: Obj) -> None:
    """Admit a pod on create (mutates `pod`), or raise the server's 403."""
    spec = pod["spec"]
    name = spec.get("runtimeClassName")
    overhead = spec.get("overhead")
    if not name:
        if overhead:
            raise _forbidden(pod, "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead")
        return
    rc = store.get(RUNTIME_CLASSES.key, "", name)
    if rc is None:
        raise _forbidden(pod, f'pod rejected: RuntimeClass "{name}" not found')
    fixed = (rc.get("overhead") or {}).get("podFixed")
    if fixed:
        if overhead and not _quantities_equal(overhead, fixed):
            raise _forbidden(pod, "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead")
        spec["overhead"] = dict(fixed)
    elif overhead:
        raise _forbidden(pod, "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead")
    scheduling = rc.get("scheduling") or {}
    for key, value in (scheduling.get("nodeSelector") or {}).items():
        selector = spec.setdefault("nodeSelector", {})
        if key in selector and selector[key] != value:
            raise _forbidden(pod, f"conflict: runtimeClass.scheduling.nodeSelector[{key}] = {value}; "
                                  f"pod.spec.nodeSelector[{key}] = {selector[key]}")
        selector[key] = value
    extra = [t for t in scheduling.get("tolerations") or [] if t not in (spec.get("tolerations") or [])]
    if extra:
        spec["tolerations"] = list(spec.get("tolerations") or []) + extra
