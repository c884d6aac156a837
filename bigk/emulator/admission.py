"""Validation and defaulting of objects on create and update (the emulator's admission).

Only the checks clients and schedulers observe are made: names, required pod
fields, pod spec immutability, and the defaults the real server fills in
(schedulerName, phase, qosClass, priority from a PriorityClass, service IPs).
"""

from __future__ import annotations

import itertools
import random
import re
import string
from typing import Any

from bigk.emulator.errors import ApiError, bad_request, invalid
from bigk.emulator.resources import ResourceType
from bigk.emulator.storage import DEFAULTS as STORAGE_DEFAULTS
from bigk.emulator.storage import STATUS_KEYS as STORAGE_STATUS_KEYS

Obj = dict[str, Any]

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_service_ips = itertools.count(10)

# Pod spec fields that may change after creation (besides schedulingGates removal).
_MUTABLE_POD_SPEC = ("activeDeadlineSeconds", "tolerations", "schedulingGates", "terminationGracePeriodSeconds")


def _random_suffix() -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=5))


def prepare_create(rt: ResourceType, namespace: str, body: Any) -> Obj:
    """Check a create body and fill defaults; returns the object to store."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    kind = body.get("kind")
    if kind and kind != rt.kind:
        raise bad_request(
            f"the API version in the data ({body.get('apiVersion')}) does not match the expected "
            f"API version ({rt.api_version}) / kind {rt.kind}"
        )
    obj = dict(body)
    obj["kind"] = rt.kind
    obj["apiVersion"] = rt.api_version
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
    meta = dict(meta)
    obj["metadata"] = meta
    for stale in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
        meta.pop(stale, None)
    if rt.namespaced:
        body_ns = meta.get("namespace")
        if body_ns and body_ns != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    if not meta.get("name"):
        if meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{_random_suffix()}"
        else:
            raise invalid(rt.kind, "", "metadata.name", "Required value: name or generateName is required", rt.group)
    _check_meta(rt, meta)
    defaults = _DEFAULTS.get(rt.key)
    if defaults is not None:
        defaults(obj)
    return obj


def _check_meta(rt: ResourceType, meta: Obj) -> None:
    name = meta["name"]
    pattern = _DNS_LABEL if rt.plural in ("namespaces", "services") else _DNS_SUBDOMAIN
    if not isinstance(name, str) or len(name) > 253 or not pattern.match(name):
        raise invalid(
            rt.kind,
            str(name),
            "metadata.name",
            f'Invalid value: "{name}": a lowercase RFC 1123 name must consist of lower case alphanumeric '
            "characters, '-' or '.', and must start and end with an alphanumeric character",
            rt.group,
        )
    labels = meta.get("labels") or {}
    if not isinstance(labels, dict):
        raise invalid(rt.kind, name, "metadata.labels", "Invalid value: must be a map of strings", rt.group)
    for k, v in labels.items():
        prefix, _, short = k.rpartition("/")
        if not _LABEL_NAME.match(short) or len(short) > 63 or (prefix and not _DNS_SUBDOMAIN.match(prefix)):
            raise invalid(
                rt.kind,
                name,
                "metadata.labels",
                f"Invalid value: \"{k}\": name part must consist of alphanumeric characters, '-', '_' or '.'",
                rt.group,
            )
        if not isinstance(v, str) or len(v) > 63 or not _LABEL_VALUE.match(v):
            raise invalid(
                rt.kind,
                name,
                "metadata.labels",
                f'Invalid value: "{v}": a valid label must be an empty '
                "string or consist of alphanumeric characters, '-', '_' or '.'",
                rt.group,
            )
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, dict) or any(not isinstance(v, str) for v in annotations.values()):
        raise invalid(rt.kind, name, "metadata.annotations", "Invalid value: must be a map of strings", rt.group)


def _qos_class(spec: Obj) -> str:
    requests_set = limits_set = False
    guaranteed = True
    for c in spec.get("containers", []):
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        requests_set = requests_set or bool(req)
        limits_set = limits_set or bool(lim)
        for r in ("cpu", "memory"):
            if r not in lim or req.get(r, lim.get(r)) != lim.get(r):
                guaranteed = False
    if not requests_set and not limits_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _pod_defaults(obj: Obj) -> None:
    name = obj["metadata"]["name"]
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise invalid("Pod", name, "spec.containers", "Required value")
    spec = dict(spec)
    obj["spec"] = spec
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        raise invalid("Pod", name, "spec.containers", "Required value")
    for i, c in enumerate(containers):
        if not isinstance(c, dict) or not c.get("name"):
            raise invalid("Pod", name, f"spec.containers[{i}].name", "Required value")
        if not c.get("image"):
            raise invalid("Pod", name, f"spec.containers[{i}].image", "Required value")
        c.setdefault("imagePullPolicy", "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        res = c.setdefault("resources", {})
        if isinstance(res, dict) and isinstance(res.get("limits"), dict):
            requests = dict(res.get("requests") or {})
            for resource, amount in res["limits"].items():
                requests.setdefault(resource, amount)  # a request defaults to its limit
            res["requests"] = requests
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    spec.setdefault("tolerations", [])
    spec["tolerations"] = list(spec["tolerations"]) + [
        {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
        if not any(t.get("key") == key for t in spec["tolerations"] if isinstance(t, dict))
    ]
    status: Obj = obj["status"] if isinstance(obj.get("status"), dict) else {}
    obj["status"] = {
        "phase": "Pending",
        "qosClass": _qos_class(spec),
        **{k: v for k, v in status.items() if k == "conditions"},
    }


def _node_defaults(obj: Obj) -> None:
    obj.setdefault("spec", {})
    status = obj.setdefault("status", {})
    status.setdefault("capacity", {})
    status.setdefault("allocatable", dict(status["capacity"]))
    status.setdefault("conditions", [])


def _namespace_defaults(obj: Obj) -> None:
    obj.setdefault("spec", {"finalizers": ["kubernetes"]})
    obj["status"] = {"phase": "Active"}
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]


def _service_defaults(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec.get("clusterIP") is None or spec.get("clusterIP") == "":
        n = next(_service_ips)
        spec["clusterIP"] = f"10.96.{(n >> 8) & 255}.{n & 255}"
    if spec["clusterIP"] != "None":
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    obj.setdefault("status", {"loadBalancer": {}})


def _event_defaults(obj: Obj) -> None:
    if obj["apiVersion"] == "v1" and not isinstance(obj.get("involvedObject"), dict):
        raise invalid("Event", obj["metadata"]["name"], "involvedObject", "Required value")


_DEFAULTS = {
    "pods": _pod_defaults,
    "nodes": _node_defaults,
    "namespaces": _namespace_defaults,
    "services": _service_defaults,
    "events": _event_defaults,
    **STORAGE_DEFAULTS,
}


def prepare_update(rt: ResourceType, old: Obj, body: Any, subresource: str = "") -> Obj:
    """Check a full replacement body; keeps what the endpoint may not change."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    name = old["metadata"]["name"]
    meta: Obj = body["metadata"] if isinstance(body.get("metadata"), dict) else {}
    if meta.get("name", name) != name:
        raise bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})")
    if rt.namespaced and meta.get("namespace", old["metadata"].get("namespace")) != old["metadata"].get("namespace"):
        raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
    if meta.get("uid") and meta["uid"] != old["metadata"]["uid"]:
        raise ApiError(
            409,
            "Conflict",
            f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {old['metadata']['uid']}",
        )
    if subresource == "status":
        # the status endpoint changes status only
        new = dict(old)
        new["metadata"] = dict(old["metadata"])
        if "status" in body:
            new["status"] = body["status"]
        return new
    new = dict(body)
    new["kind"] = rt.kind
    new["apiVersion"] = rt.api_version
    new_meta = dict(meta)
    new_meta["name"] = name
    for server_owned in ("deletionTimestamp", "deletionGracePeriodSeconds"):
        new_meta.pop(server_owned, None)  # only deletion sets these (the store keeps existing ones)
    if rt.namespaced:
        new_meta["namespace"] = old["metadata"]["namespace"]
    new["metadata"] = new_meta
    _check_meta(rt, new_meta)
    if rt.key in ("pods", "nodes", "namespaces", "services", *STORAGE_STATUS_KEYS) and "status" in old:
        new["status"] = old["status"]  # the main endpoint ignores status, as in Kubernetes
    if rt.key == "pods":
        _check_pod_update(name, old.get("spec") or {}, new.get("spec") or {})
    return new


def _check_pod_update(name: str, old: Obj, new: Obj) -> None:
    def frozen(spec: Obj) -> Obj:
        rest = {k: v for k, v in spec.items() if k not in _MUTABLE_POD_SPEC}
        rest["containers"] = [{k: v for k, v in c.items() if k != "image"} for c in spec.get("containers") or []]
        return rest

    if frozen(old) != frozen(new):
        raise invalid(
            "Pod",
            name,
            "spec",
            "Forbidden: pod updates may not change fields other than "
            "`spec.containers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions "
            "to existing tolerations), `spec.terminationGracePeriodSeconds`, `spec.schedulingGates`",
        )
    old_gates = {g.get("name") for g in old.get("schedulingGates") or []}
    new_gates = {g.get("name") for g in new.get("schedulingGates") or []}
    if not new_gates <= old_gates:
        raise invalid("Pod", name, "spec.schedulingGates", "Forbidden: only deletion is allowed")
