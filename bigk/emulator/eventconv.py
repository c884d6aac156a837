"""events.k8s.io/v1 Events are a view of core/v1 Events, as in Kubernetes: one storage, two shapes.

An Event posted through either API is listed, watched and described through both
(`kubectl describe pod` reads core/v1). Field names follow Kubernetes' own conversion.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

# events.k8s.io/v1 field -> core/v1 field
_RENAMED = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
_SHARED = ("metadata", "eventTime", "series", "reportingInstance", "action", "reason", "related", "type")
_BACK = {core: v1 for v1, core in _RENAMED.items()}


def _converted(event: Obj, api_version: str, renamed: dict[str, str]) -> Obj:
    """An Event of `api_version` with the fields of `event` that it has: renamed ones under their new name."""
    out: Obj = {"apiVersion": api_version, "kind": "Event"}
    for key, value in event.items():
        if key in renamed:
            out[renamed[key]] = value
        elif key in _SHARED:
            out[key] = value
    return out


def to_core(event: Any) -> Any:
    """An events.k8s.io/v1 Event body in core/v1 shape (non-objects pass through for validation to reject)."""
    if not isinstance(event, dict):
        return event
    core = _converted(event, "v1", _RENAMED)
    core.setdefault("involvedObject", {})
    return core


def from_core(event: Obj) -> Obj:
    """A stored core/v1 Event in events.k8s.io/v1 shape."""
    v1 = _converted(event, "events.k8s.io/v1", _BACK)
    if not v1.get("eventTime"):
        # events.k8s.io requires eventTime; a core Event without one shows its last or first time
        stamp = event.get("lastTimestamp") or event.get("firstTimestamp") or event["metadata"].get("creationTimestamp")
        if isinstance(stamp, str) and stamp.endswith("Z") and "." not in stamp:
            stamp = stamp[:-1] + ".000000Z"
        v1["eventTime"] = stamp
    return v1
