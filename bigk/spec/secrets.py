"""Settings that look like secrets: warned about in specs, redacted wherever bigk shows a spec.

A spec lives in git; a password written into `sparkConf` or `env` is readable by
everyone who can read the repo, and used to come back from every API read. bigk
cannot know what is secret, so it goes by the name, as most tools do: anything
whose name says secret, password, token, credential or ends in `.key` / `_key`.
`bigk validate` warns and points at Kubernetes Secrets; API reads and `describe`
show `***` instead of the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

REDACTED = "***"
_SECRET_NAME = re.compile(
    r"(secret|passw(or)?d|passwd|token|credential|api[._-]?key|private[._-]?key|"
    r"(^|[._-])key$|signature|auth[._-]?header|sasl\.jaas)",
    re.IGNORECASE,
)
_HINT = ("keep secrets out of git: reference a Kubernetes Secret (env valueFrom.secretKeyRef in the template, or "
         "spark.kubernetes.driver.secretKeyRef.ENV=secret:key)")
_CONF_FIELDS = (("sparkConf",), ("hadoopConf",), ("rapids", "conf"))
_ROLES = ("driver", "executor")


# Names that point at a secret rather than hold one: Spark's secretKeyRef / secrets mounts, file paths.
_REFERENCE = re.compile(r"(secretkeyref|\.secrets\.|(file|path|dir|ref|name)$)", re.IGNORECASE)


def looks_secret(name: str) -> bool:
    """True for names such as `fs.s3a.secret.key`, `DB_PASSWORD`, `spark.authenticate.secret`."""
    return bool(_SECRET_NAME.search(name)) and not _REFERENCE.search(name)


def _literal(value: Any) -> bool:
    """A value written out in the spec: not empty, not already redacted, not a file path or a ${reference}."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    return text != "" and text != REDACTED and not text.startswith(("/", "${"))


def _template_env(template: Any) -> Iterator[tuple[tuple[str | int, ...], dict[str, Any]]]:
    """(path inside the template, env entry) for every literal env value in the template's containers."""
    spec = template.get("spec") if isinstance(template, dict) else None
    if not isinstance(spec, dict):
        return
    for kind in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(kind) or []):
            if not isinstance(container, dict):
                continue
            for j, entry in enumerate(container.get("env") or []):
                if isinstance(entry, dict) and "value" in entry:
                    yield ("spec", kind, i, "env", j, "value"), entry


def _env_items(env: Any) -> Iterator[tuple[tuple[str | int, ...], str, Any]]:
    """(path candidates joined as one tuple key, name, value) of a pod's `env`: a map, or a list of EnvVar/dicts.

    The path is where the value was written: `env.NAME` in the map form, `env[i].value` in the list form."""
    if isinstance(env, dict):
        for key, value in env.items():
            yield (key,), str(key), value
        return
    for i, var in enumerate(env or []):
        if isinstance(var, dict):
            name, value, source = var.get("name", ""), var.get("value"), var.get("valueFrom")
        else:
            name, value, source = getattr(var, "name", ""), getattr(var, "value", None), getattr(var, "valueFrom", None)
        if source is None:
            yield (i, "value"), str(name), value


Locs = tuple[tuple[str | int, ...], ...]


def literal_secrets(job: Any) -> list[tuple[Locs, str]]:
    """(field paths, warning) for every secret-looking setting written as a literal value in a JobSpec.

    Each finding carries candidate paths, best first (an env map entry may have been written as a list)."""
    out: list[tuple[Locs, str]] = []
    spec = job.spec
    for path in _CONF_FIELDS:
        holder: Any = spec
        for part in path:
            holder = getattr(holder, part, None) if holder is not None else None
        for key, value in (holder or {}).items():
            if looks_secret(key) and _literal(value):
                out.append(((("spec", *path, key),), f"{key} looks like a secret written in the spec; {_HINT}"))
    for role in _ROLES:
        pod = getattr(spec, role)
        for where, name, value in _env_items(getattr(pod, "env", None)):
            if looks_secret(name) and _literal(value):
                locs = (("spec", role, "env", *where), ("spec", role, "env", name))
                out.append((locs, f"env {name} looks like a secret written in the spec; {_HINT}"))
        for loc, entry in _template_env(pod.template):
            if looks_secret(str(entry.get("name", ""))) and _literal(entry.get("value")):
                out.append(((("spec", role, "template", *loc),),
                            f"env {entry.get('name')} looks like a secret written in the spec; {_HINT}"))
    return out


def redact_spec(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of a dumped JobSpec (`model_dump(mode='json')`) with secret-looking values replaced by ***."""
    import copy

    out = copy.deepcopy(data)
    spec = out.get("spec")
    if not isinstance(spec, dict):
        return out
    for path in _CONF_FIELDS:
        holder: Any = spec
        for part in path:
            holder = holder.get(part) if isinstance(holder, dict) else None
        if isinstance(holder, dict):
            for key in holder:
                if looks_secret(key) and _literal(holder[key]):
                    holder[key] = REDACTED
    for role in _ROLES:
        pod = spec.get(role)
        if not isinstance(pod, dict):
            continue
        env = pod.get("env")
        if isinstance(env, dict):
            for key in env:
                if looks_secret(key) and _literal(env[key]):
                    env[key] = REDACTED
        elif isinstance(env, list):
            for var in env:
                if isinstance(var, dict) and looks_secret(str(var.get("name", ""))) and _literal(var.get("value")):
                    var["value"] = REDACTED
        for _, entry in _template_env(pod.get("template")):
            if looks_secret(str(entry.get("name", ""))) and _literal(entry.get("value")):
                entry["value"] = REDACTED
    args = spec.get("arguments")
    if isinstance(args, list):  # `--password x` style arguments: redact the value after a secret-looking flag
        for i in range(1, len(args)):
            if isinstance(args[i - 1], str) and args[i - 1].startswith("-") and looks_secret(args[i - 1]):
                args[i] = REDACTED
    return out


def redact_conf(conf: dict[str, Any]) -> dict[str, Any]:
    """A copy of a flat settings map (Spark conf, env) with secret-looking values replaced by ***."""
    return {k: (REDACTED if looks_secret(str(k)) and _literal(v) else v) for k, v in conf.items()}


__all__ = ["REDACTED", "literal_secrets", "looks_secret", "redact_conf", "redact_spec"]
