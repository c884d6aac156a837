"""`meta.k8s.io/v1` Table answers, so `kubectl get` prints familiar columns.

kubectl asks for `application/json;as=Table;...`; the real server renders the
columns. Pods and nodes get their usual columns, everything else Name and Age.
"""

from __future__ import annotations

import calendar
import time
from typing import Any

from bigk.emulator.store import Obj


def _age(ts: str | None) -> str:
    if not ts:
        return "<unknown>"
    try:
        created = calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return "<unknown>"
    seconds = max(0, int(time.time() - created))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _col(name: str, type_: str = "string", priority: int = 0, fmt: str = "") -> dict[str, Any]:
    col: dict[str, Any] = {"name": name, "type": type_, "format": fmt, "description": name, "priority": priority}
    return col


def _pod_row(pod: Obj) -> list[Any]:
    status = pod.get("status") or {}
    containers = (pod.get("spec") or {}).get("containers") or []
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    shown = status.get("phase", "Pending")
    for s in statuses:
        state = s.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason"):
            shown = state["waiting"]["reason"]
        elif "terminated" in state and state["terminated"].get("reason"):
            shown = state["terminated"]["reason"]
    if pod["metadata"].get("deletionTimestamp"):
        shown = "Terminating"
    spec = pod.get("spec") or {}
    if spec.get("schedulingGates") and not spec.get("nodeName"):
        shown = "SchedulingGated"
    return [
        pod["metadata"]["name"],
        f"{ready}/{len(containers)}",
        shown,
        restarts,
        _age(pod["metadata"].get("creationTimestamp")),
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        "<none>",
    ]


def _node_row(node: Obj) -> list[Any]:
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    shown = "Ready" if ready and ready.get("status") == "True" else "NotReady"
    if (node.get("spec") or {}).get("unschedulable"):
        shown += ",SchedulingDisabled"
    labels = node["metadata"].get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    info = (node.get("status") or {}).get("nodeInfo") or {}
    addresses = (node.get("status") or {}).get("addresses") or []
    ip = next((a.get("address") for a in addresses if a.get("type") == "InternalIP"), "<none>")
    return [
        node["metadata"]["name"],
        shown,
        ",".join(roles) or "<none>",
        _age(node["metadata"].get("creationTimestamp")),
        info.get("kubeletVersion", ""),
        ip,
    ]


def _event_row(event: Obj) -> list[Any]:
    involved = event.get("involvedObject") or event.get("regarding") or {}
    last = event.get("lastTimestamp") or event.get("eventTime") or event["metadata"].get("creationTimestamp")
    stamp = str(last)[:19] + "Z" if last else None
    return [
        _age(stamp),
        event.get("type", ""),
        event.get("reason", ""),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        event.get("message", event.get("note", "")),
    ]


_COLUMNS = {
    "Pod": [
        _col("Name", fmt="name"),
        _col("Ready"),
        _col("Status"),
        _col("Restarts", "integer"),
        _col("Age"),
        _col("IP", priority=1),
        _col("Node", priority=1),
        _col("Nominated Node", priority=1),
        _col("Readiness Gates", priority=1),
    ],
    "Event": [_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"), _col("Message")],
    "Node": [
        _col("Name", fmt="name"),
        _col("Status"),
        _col("Roles"),
        _col("Age"),
        _col("Version"),
        _col("Internal-IP", priority=1),
    ],
}
_ROWS = {"Pod": _pod_row, "Node": _node_row, "Event": _event_row}


def table(kind: str, items: list[Obj], list_meta: dict[str, Any]) -> dict[str, Any]:
    """A Table of `items` (objects of one kind), rows carrying PartialObjectMetadata."""
    columns = _COLUMNS.get(kind, [_col("Name", fmt="name"), _col("Age")])
    render = _ROWS.get(kind, lambda o: [o["metadata"]["name"], _age(o["metadata"].get("creationTimestamp"))])
    rows = [
        {
            "cells": render(obj),
            "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]},
        }
        for obj in items
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": rows,
    }
