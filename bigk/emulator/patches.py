"""PATCH bodies: JSON merge patch, strategic merge patch, JSON patch, server-side apply.

Strategic merge is simplified: lists whose Kubernetes patch strategy is "merge"
(conditions, containers, env, ports, volumes, ...) merge by their key; every
other list is replaced; `$patch: delete|replace` and `$setElementOrder`/
`$retainKeys` directives are honoured or dropped. Server-side apply keeps no
field ownership: it creates the object or strategic-merges the applied fields into it.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from bigk.emulator.errors import ApiError, bad_request

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (MERGE_PATCH, STRATEGIC_PATCH, JSON_PATCH, APPLY_PATCH)

# list field name -> merge key, for the lists Kubernetes merges by key
_MERGE_KEYS = {
    "conditions": "type",
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "ownerReferences": "uid",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "tolerations": "",  # replaced wholesale (no merge key) — listed for clarity
    "containerStatuses": "name",
    "initContainerStatuses": "name",
    "addresses": "type",
    "finalizers": "",
}


def clone(value: Any) -> Any:
    """A deep copy of JSON-like data (dicts, lists, scalars); faster than copy.deepcopy."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return clone(patch)
    result = clone(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any, field: str = "") -> Any:
    """Kubernetes strategic merge patch, simplified (see module docstring)."""
    if isinstance(patch, list):
        key = _MERGE_KEYS.get(field, "")
        if key and isinstance(target, list):
            return _merge_list(target, patch, key, field)
        return [clone(item) for item in patch if not (isinstance(item, dict) and "$patch" in item)]
    if not isinstance(patch, dict):
        return clone(patch)
    if patch.get("$patch") == "replace":
        return {k: clone(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = clone(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if name.startswith("$setElementOrder/") or name.startswith("$retainKeys") or name == "$patch":
            continue
        if name.startswith("$deleteFromPrimitiveList/"):
            real = name.split("/", 1)[1]
            if isinstance(result.get(real), list) and isinstance(value, list):
                result[real] = [v for v in result[real] if v not in value]
            continue
        if value is None:
            result.pop(name, None)
            continue
        merged = strategic_merge_patch(result.get(name), value, name)
        if merged is None:
            result.pop(name, None)
        else:
            result[name] = merged
    return result


def _merge_list(target: list[Any], patch: list[Any], key: str, field: str) -> list[Any]:
    if field == "ports" and all(isinstance(i, dict) and "port" in i and key not in i for i in patch):
        key = "port"  # service ports merge on port, container ports on containerPort
    if not all(isinstance(item, dict) and key in item for item in patch):
        return [clone(item) for item in patch if not (isinstance(item, dict) and "$patch" in item)]
    result = [clone(item) for item in target]
    for item in patch:
        index = next((i for i, cur in enumerate(result) if isinstance(cur, dict) and cur.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
            continue
        if index is None:
            result.append({k: clone(v) for k, v in item.items() if k != "$patch"})
        else:
            result[index] = strategic_merge_patch(result[index], item, field)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(doc, list):
            try:
                doc = doc[int(part)]
            except (ValueError, IndexError):
                raise bad_request(f"JSON patch path element {part!r} not found") from None
        elif isinstance(doc, dict):
            if part not in doc:
                raise bad_request(f"JSON patch path element {part!r} not found")
            doc = doc[part]
        else:
            raise bad_request(f"JSON patch path element {part!r} not found")
    return doc


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    if not isinstance(ops, list):
        raise bad_request("a JSON patch must be a list of operations")
    doc = clone(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"invalid JSON patch operation {op!r}")
        kind, parts = op["op"], _pointer(op["path"])
        if kind == "test":
            if _walk(doc, parts) != op.get("value"):
                raise ApiError(422, "Invalid", f"JSON patch test failed at {op['path']}")
            continue
        if kind in ("move", "copy"):
            source = _pointer(op.get("from", ""))
            value = clone(_walk(doc, source))
            if kind == "move":
                doc = _remove(doc, source)
            doc = _add(doc, parts, value)
        elif kind == "add":
            doc = _add(doc, parts, clone(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, parts)
        elif kind == "replace":
            _walk(doc, parts)
            doc = _remove(doc, parts)
            doc = _add(doc, parts, clone(op.get("value")))
        else:
            raise bad_request(f"unknown JSON patch operation {kind!r}")
    return doc


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            try:
                parent.insert(int(last), value)
            except ValueError:
                raise bad_request(f"invalid list index {last!r}") from None
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise bad_request(f"cannot add at {'/'.join(parts)}")
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return None
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    try:
        if isinstance(parent, list):
            parent.pop(int(last))
        elif isinstance(parent, dict):
            del parent[last]
        else:
            raise KeyError(last)
    except (KeyError, ValueError, IndexError):
        raise bad_request(f"JSON patch path {'/'.join(parts)!r} not found") from None
    return doc


def parse_body(raw: bytes, content_type: str) -> Any:
    """Decode a request body: JSON, or YAML for apply patches (fabric8 sends JSON there too)."""
    if not raw:
        raise bad_request("request body is empty")
    try:
        if content_type.startswith(APPLY_PATCH) or "yaml" in content_type:
            return yaml.safe_load(raw.decode("utf-8"))
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise bad_request(f"cannot decode request body: {exc}") from None


def apply_patch(target: Any, patch: Any, content_type: str) -> Any:
    """Apply a PATCH body of the given content type to the current object."""
    base = content_type.split(";", 1)[0].strip()
    if base == JSON_PATCH:
        return json_patch(target, patch)
    if not isinstance(patch, dict):
        raise bad_request("patch body must be a JSON object")
    if base == MERGE_PATCH:
        return merge_patch(target, patch)
    if base in (STRATEGIC_PATCH, APPLY_PATCH):  # apply merges keyed lists (containers by name), like SSA
        return strategic_merge_patch(target, patch)
    raise ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(PATCH_TYPES)}",
    )
