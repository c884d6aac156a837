"""The API semantics, independent of HTTP: CRUD, binding, eviction, deletion, garbage collection.

The HTTP server maps requests onto these methods; the simulated kubelet, Spark
driver and GPUs call them directly, so every change, wherever it comes from,
goes through the same checks and shows up in watches.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
import time
from typing import Any

from bigk.emulator import admission
from bigk.emulator.errors import ApiError, bad_request, conflict, invalid, not_found, success_status
from bigk.emulator.eventconv import from_core, to_core
from bigk.emulator.patches import APPLY_PATCH, apply_patch, clone
from bigk.emulator.resources import ResourceType, by_key, lookup
from bigk.emulator.runtimeclass import apply_runtime_class
from bigk.emulator.selection import Matcher
from bigk.emulator.storage import RETURNS_DELETED
from bigk.emulator.store import Obj, Store, rfc3339

log = logging.getLogger("bigk.emulator")

PODS = by_key("pods")
NODES = by_key("nodes")
NAMESPACES = by_key("namespaces")
CONFIGMAPS = by_key("configmaps")
PRIORITY_CLASSES = by_key("priorityclasses.scheduling.k8s.io")
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
TERMINAL_PHASES = ("Succeeded", "Failed")


def _list_kind(rt: ResourceType) -> str:
    return f"{rt.kind}List"


class Api:
    """Operations on the store with Kubernetes semantics."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._write = threading.RLock()  # read-modify-write sequences are atomic
        for ns in PROTECTED_NAMESPACES[:2]:
            self.ensure_namespace(ns)

    # ---- helpers -----------------------------------------------------------
    def ensure_namespace(self, namespace: str) -> None:
        """Namespaces are created on demand: the first object in a namespace creates it."""
        if self.store.get(NAMESPACES.key, "", namespace) is None:
            try:
                self.store.create(
                    NAMESPACES.key, admission.prepare_create(NAMESPACES, "", {"metadata": {"name": namespace}})
                )
            except ApiError as exc:
                if exc.code != 409:
                    raise

    def _require(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.store.get(rt.key, namespace if rt.namespaced else "", name)
        if obj is None:
            raise not_found(rt.plural, name, rt.group)
        return obj

    # ---- CRUD -------------------------------------------------------------------
    def create(self, rt: ResourceType, namespace: str, body: Any) -> Obj:
        """POST: create an object (201)."""
        if rt.view_of:
            return from_core(self.create(by_key(rt.view_of), namespace, to_core(body)))
        namespace = namespace if rt.namespaced else ""
        obj = admission.prepare_create(rt, namespace, clone(body))
        with self._write:
            if rt.namespaced:
                ns_obj = self.store.get(NAMESPACES.key, "", namespace)
                if ns_obj is not None and ns_obj["metadata"].get("deletionTimestamp"):
                    raise ApiError(
                        403,
                        "Forbidden",
                        f'{rt.plural} "{obj["metadata"]["name"]}" is forbidden: unable to '
                        f"create new content in namespace {namespace} because it is being terminated",
                    )
                self.ensure_namespace(namespace)
            if rt.key == "pods":
                self._resolve_priority(obj)
                apply_runtime_class(self.store, obj)
            return self.store.create(rt.key, obj)

    def _resolve_priority(self, pod: Obj) -> None:
        spec = pod["spec"]
        cls = spec.get("priorityClassName")
        if cls:
            pc = self.store.get(PRIORITY_CLASSES.key, "", cls)
            if pc is None and cls not in ("system-cluster-critical", "system-node-critical"):
                raise ApiError(
                    403,
                    "Forbidden",
                    f'pods "{pod["metadata"]["name"]}" is forbidden: no PriorityClass with name {cls} was found',
                )
            spec["priority"] = int(pc.get("value", 0)) if pc else 2_000_000_000
            if pc and pc.get("preemptionPolicy"):
                spec["preemptionPolicy"] = pc["preemptionPolicy"]

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        if rt.view_of:
            return from_core(self._require(by_key(rt.view_of), namespace, name))
        return self._require(rt, namespace, name)

    def list(
        self, rt: ResourceType, namespace: str | None, match: Matcher | None, limit: int = 0, cont: str = ""
    ) -> Obj:
        """GET a collection: items sorted by namespace/name, paged with limit/continue."""
        if rt.view_of:
            viewed = (lambda o: match(from_core(o))) if match is not None else None
            doc = self.list(by_key(rt.view_of), namespace, viewed, limit, cont)
            doc.update(kind=_list_kind(rt), apiVersion=rt.api_version, items=[from_core(o) for o in doc["items"]])
            return doc
        items, rv = self.store.objects(rt.key, namespace if rt.namespaced else None, match)
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if cont:
            try:
                start = tuple(json.loads(base64.urlsafe_b64decode(cont.encode())).get("start", []))
            except ValueError:
                raise bad_request("continue key is not valid") from None
            items = [o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > start]
        if limit and len(items) > limit:
            last = items[limit - 1]["metadata"]
            token = {"start": [last.get("namespace", ""), last["name"]], "rv": rv}
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        return {"kind": _list_kind(rt), "apiVersion": rt.api_version, "metadata": meta, "items": items}

    def replace(self, rt: ResourceType, namespace: str, name: str, body: Any, subresource: str = "") -> Obj:
        """PUT: replace an object, 409 when body.metadata.resourceVersion is stale."""
        if rt.view_of:
            return from_core(self.replace(by_key(rt.view_of), namespace, name, to_core(body), subresource))
        with self._write:
            old = self._require(rt, namespace, name)
            new = admission.prepare_update(rt, old, clone(body), subresource)
            expected = body.get("metadata", {}).get("resourceVersion") if isinstance(body, dict) else None
            return self.store.update(rt.key, new, expected or None)

    def patch(
        self, rt: ResourceType, namespace: str, name: str, body: Any, content_type: str, subresource: str = ""
    ) -> tuple[int, Obj]:
        """PATCH (merge, strategic, JSON patch, apply); an apply patch creates a missing object (201)."""
        if rt.view_of:  # patch the viewed shape, store the core shape
            code, obj = self._patch(by_key(rt.view_of), namespace, name, body, content_type, subresource, True)
            return code, from_core(obj)
        return self._patch(rt, namespace, name, body, content_type, subresource, False)

    def _patch(self, rt: ResourceType, namespace: str, name: str, body: Any, content_type: str, subresource: str,
               view: bool) -> tuple[int, Obj]:
        with self._write:
            old = self.store.get(rt.key, namespace if rt.namespaced else "", name)
            if old is None:
                if content_type.startswith(APPLY_PATCH) and not subresource:
                    if isinstance(body, dict):
                        meta = body.setdefault("metadata", {})
                        if isinstance(meta, dict) and meta.get("name", name) != name:
                            raise bad_request("the name of the object does not match the name on the URL")
                        if isinstance(meta, dict):
                            meta["name"] = name
                    return 201, self.create(rt, namespace, to_core(body) if view else body)
                raise not_found(rt.plural, name, rt.group)
            patched = apply_patch(from_core(old) if view else old, body, content_type)
            if view:
                patched = to_core(patched)
            if not isinstance(patched, dict):
                raise bad_request("the patch result is not an object")
            expected = (patched.get("metadata") or {}).get("resourceVersion")
            if expected == old["metadata"].get("resourceVersion"):
                expected = None
            new = admission.prepare_update(rt, old, patched, subresource)
            return 200, self.store.update(rt.key, new, expected)

    # ---- deletion -----------------------------------------------------------------
    def delete(self, rt: ResourceType, namespace: str, name: str, options: Obj | None = None) -> tuple[int, Obj]:
        """DELETE: bound running pods terminate gracefully (deletionTimestamp), everything else goes now."""
        options = options or {}
        if rt.view_of:
            return self.delete(by_key(rt.view_of), namespace, name, options)
        namespace = namespace if rt.namespaced else ""
        pre = options.get("preconditions") or {}
        with self._write:
            obj = self._require(rt, namespace, name)
            if pre.get("resourceVersion") and pre["resourceVersion"] != obj["metadata"]["resourceVersion"]:
                raise conflict(
                    rt.plural,
                    name,
                    "Precondition failed: ResourceVersion in precondition: "
                    f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                    f"{obj['metadata']['resourceVersion']}",
                    rt.group,
                )
            if pre.get("uid") and pre["uid"] != obj["metadata"]["uid"]:
                raise conflict(
                    rt.plural,
                    name,
                    f"Precondition failed: UID in precondition: {pre['uid']}, "
                    f"UID in object meta: {obj['metadata']['uid']}",
                    rt.group,
                )
            if rt.key == "namespaces":
                return 200, self._delete_namespace(obj)
            orphan = options.get("propagationPolicy") == "Orphan" or options.get("orphanDependents") is True
            if rt.key == "pods":
                grace = options.get("gracePeriodSeconds")
                if grace is None:
                    grace = obj["spec"].get("terminationGracePeriodSeconds", 30)
                running = obj["spec"].get("nodeName") and obj["status"].get("phase") not in TERMINAL_PHASES
                if running and int(grace) > 0:
                    return 200, self._mark_terminating(obj, int(grace))
            gone = self.store.remove(rt.key, namespace, name)
            if not orphan:
                self.collect_dependents(gone["metadata"]["uid"])
        if rt.key in ("pods", "services", *RETURNS_DELETED):
            return 200, gone
        return 200, success_status(200, name=name, group=rt.group, kind=rt.plural, uid=gone["metadata"]["uid"])

    def _mark_terminating(self, pod: Obj, grace: int) -> Obj:
        if pod["metadata"].get("deletionTimestamp"):
            return pod
        new = clone(pod)
        new["metadata"]["deletionTimestamp"] = rfc3339(time.time() + grace)
        new["metadata"]["deletionGracePeriodSeconds"] = grace
        # store.update keeps an existing deletionTimestamp; set it on a fresh update
        return self.store.update(PODS.key, new)

    def finalize_pod(self, namespace: str, name: str) -> None:
        """The kubelet's last word on a terminating pod: remove it for good, then its dependents."""
        with self._write:
            try:
                gone = self.store.remove(PODS.key, namespace, name)
            except ApiError:
                return
            self.collect_dependents(gone["metadata"]["uid"])

    def collect_dependents(self, owner_uid: str) -> None:
        """Garbage collection: delete objects whose ownerReferences point at a deleted owner."""
        for key, ns, dep_name in self.store.dependents(owner_uid):
            obj = self.store.get(key, ns, dep_name)
            if obj is None:
                continue
            if any(o.get("uid") != owner_uid and self._owner_alive(ns, o) for o in obj["metadata"]["ownerReferences"]):
                continue  # another owner still exists
            with contextlib.suppress(ApiError):
                self.delete(by_key(key), ns, dep_name, {})

    def _owner_alive(self, namespace: str, ref: Obj) -> bool:
        group, _, version = str(ref.get("apiVersion", "v1")).rpartition("/")
        for rt in (r for r in _all_types() if r.kind == ref.get("kind") and r.group == group):
            obj = self.store.get(rt.key, namespace if rt.namespaced else "", ref.get("name", ""))
            if obj is not None and obj["metadata"]["uid"] == ref.get("uid"):
                return True
        return False

    def _delete_namespace(self, ns_obj: Obj) -> Obj:
        name = ns_obj["metadata"]["name"]
        if name in PROTECTED_NAMESPACES:
            raise ApiError(403, "Forbidden", f'namespaces "{name}" is forbidden: this namespace may not be deleted')
        for rt in _all_types():
            if not rt.namespaced:
                continue
            items, _ = self.store.objects(rt.key, name)
            for obj in items:
                try:
                    if rt.key == "pods":
                        self.finalize_pod(name, obj["metadata"]["name"])
                    else:
                        self.store.remove(rt.key, name, obj["metadata"]["name"])
                except ApiError:
                    pass
        return self.store.remove(NAMESPACES.key, "", name)

    def delete_collection(
        self, rt: ResourceType, namespace: str | None, match: Matcher | None, options: Obj | None = None
    ) -> Obj:
        if rt.view_of:
            viewed = (lambda o: match(from_core(o))) if match is not None else None
            return self.delete_collection(by_key(rt.view_of), namespace, viewed, options)
        items, _ = self.store.objects(rt.key, namespace if rt.namespaced else None, match)
        for obj in items:
            with contextlib.suppress(ApiError):
                self.delete(rt, obj["metadata"].get("namespace", ""), obj["metadata"]["name"], options)
        return success_status(200)

    # ---- pod subresources ------------------------------------------------------------
    def bind(self, namespace: str, name: str, body: Any) -> Obj:
        """pods/binding: set spec.nodeName once; 409 if already bound, gated or terminating."""
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        target: Obj = body["target"] if isinstance(body.get("target"), dict) else {}
        node = target.get("name")
        meta: Obj = body["metadata"] if isinstance(body.get("metadata"), dict) else {}
        if not node:
            raise invalid("Binding", name, "target.name", "Required value")
        if meta.get("name") and meta["name"] != name:
            raise bad_request(f"name in URL ({name}) does not match name in Binding ({meta['name']})")
        with self._write:
            pod = self._require(PODS, namespace, name)
            why = ""
            if meta.get("uid") and meta["uid"] != pod["metadata"]["uid"]:
                why = (f"Precondition failed: UID in precondition: {meta['uid']}, "
                       f"UID in object meta: {pod['metadata']['uid']}")
            elif pod["metadata"].get("deletionTimestamp"):
                why = f"pod {name} is being deleted, cannot be assigned to a host"
            elif pod["spec"].get("nodeName"):
                why = f'pod {name} is already assigned to node "{pod["spec"]["nodeName"]}"'
            elif pod["spec"].get("schedulingGates"):
                why = f"pod {name} has non-empty .spec.schedulingGates"
            if why:
                raise conflict("pods/binding", name, why)
            # copy only the parts a binding changes: stored objects are never mutated in place
            new = dict(pod)
            new["spec"] = dict(pod["spec"])
            new["spec"]["nodeName"] = node
            new["metadata"] = dict(pod["metadata"])
            if meta.get("annotations"):
                new["metadata"]["annotations"] = {**(pod["metadata"].get("annotations") or {}), **meta["annotations"]}
            status = dict(pod.get("status") or {})
            status["conditions"] = [dict(c) for c in status.get("conditions") or []]
            new["status"] = status
            set_condition(new, "PodScheduled", "True")
            self.store.update(PODS.key, new)
        log.debug("event=bind pod=%s/%s node=%s", namespace, name, node)
        return success_status(201)

    def evict(self, namespace: str, name: str, body: Any) -> Obj:
        """pods/eviction (policy/v1): deletes the pod (no PodDisruptionBudgets here)."""
        options = body.get("deleteOptions") if isinstance(body, dict) else None
        self.delete(PODS, namespace, name, options if isinstance(options, dict) else {})
        log.info("event=evict pod=%s/%s", namespace, name)
        return success_status(201)

    def update_pod(self, namespace: str, name: str, change: Any) -> Obj | None:
        """Atomically change a pod with `change(copy)`; None when the pod is gone."""
        with self._write:
            pod = self.store.get(PODS.key, namespace, name)
            if pod is None:
                return None
            new = clone(pod)
            change(new)
            return self.store.update(PODS.key, new)

    def update_object(self, key: str, namespace: str, name: str, change: Any) -> Obj | None:
        """Atomically change any object with `change(copy)`; None when it is gone."""
        with self._write:
            obj = self.store.get(key, namespace, name)
            if obj is None:
                return None
            new = clone(obj)
            change(new)
            return self.store.update(key, new)


def set_condition(obj: Obj, type_: str, status: str, reason: str = "", message: str = "") -> None:
    """Add or replace one entry of status.conditions (lastTransitionTime moves only on a change)."""
    conditions = obj.setdefault("status", {}).setdefault("conditions", [])
    now = rfc3339()
    for cond in conditions:
        if cond.get("type") == type_:
            if cond.get("status") != status:
                cond["lastTransitionTime"] = now
            cond["status"] = status
            cond["lastProbeTime"] = None
            _set_optional(cond, reason, message)
            return
    cond = {"type": type_, "status": status, "lastProbeTime": None, "lastTransitionTime": now}
    _set_optional(cond, reason, message)
    conditions.append(cond)


def _set_optional(cond: Obj, reason: str, message: str) -> None:
    for key, value in (("reason", reason), ("message", message)):
        if value:
            cond[key] = value
        else:
            cond.pop(key, None)


def _all_types() -> list[ResourceType]:
    from bigk.emulator.resources import RESOURCES

    return list(RESOURCES)


__all__ = ["Api", "lookup", "set_condition", "PODS", "NODES", "CONFIGMAPS"]
