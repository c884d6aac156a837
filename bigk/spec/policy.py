"""What a spec repository may ask of the cluster: namespaces and Pod Security Standards.

Write access to the spec repo is a data engineer's right, not a cluster admin's. So
the install (not the repo) says which namespaces jobs may use and which Pod Security
Standards level (https://kubernetes.io/docs/concepts/security/pod-security-standards/)
their pods must meet: `restricted` unless the install allows `baseline` or
`privileged` for a namespace or a queue. Where a pod lands and what it requests is
bigk's business: `nodeName` in a template is refused (it would skip bigk's
scheduler), `schedulerName` and container `resources` are overwritten by bigk with a
warning.

The checks are pure (no I/O): `check_job` returns findings with the field path inside
the spec, so `bigk validate` prints FILE:LINE:COL and the service refuses the same
job again at submission. Policy files are YAML:

    namespaces:            # the allow-list; a namespace not named here is refused
      default: restricted
      ml-gpu: baseline
    queues:                # optional: a more permissive level for jobs in a queue
      platform: privileged
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from bigk.spec.errors import SpecError

Level = Literal["restricted", "baseline", "privileged"]
LEVELS: tuple[Level, ...] = ("restricted", "baseline", "privileged")
POLICY_ENV = "BIGK_SPEC_POLICY"
DEFAULT_NAMESPACES: Mapping[str, Level] = {"default": "restricted"}
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})

# Pod Security Standards, v1.30 definitions.
BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "SETFCAP",
    "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})
RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
})
RESTRICTED_VOLUMES = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
})
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
_APPARMOR_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")

Loc = tuple[str | int, ...]


def _map(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """obj[key] when it is a mapping, else an empty one (templates are free-form: anything may be anywhere)."""
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _seq(obj: Mapping[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class Finding:
    """One thing a job asks that the install does not allow (error) or that bigk overrides (warning)."""

    loc: Loc
    message: str
    severity: str = "error"


class PolicyError(SpecError):
    """A policy file that cannot be read or makes no sense."""


@dataclass(frozen=True)
class SpecPolicy:
    """The install's rules for specs: allowed namespaces and the PSS level per namespace or queue."""

    namespaces: Mapping[str, Level] = field(default_factory=lambda: dict(DEFAULT_NAMESPACES))
    queues: Mapping[str, Level] = field(default_factory=dict)
    source: str = "built-in default"

    def level_for(self, namespace: str, queue: str) -> Level:
        """The most permissive level the install grants the job's namespace or its queue."""
        granted = [self.namespaces.get(namespace, "restricted"), self.queues.get(queue, "restricted")]
        return max(granted, key=LEVELS.index)

    def describe(self) -> str:
        names = ", ".join(f"{n} ({lvl})" for n, lvl in sorted(self.namespaces.items())) or "none"
        return f"allowed namespaces: {names} [policy: {self.source}]"


def _levels(raw: Any, what: str, path: str) -> dict[str, Level]:
    if raw is None:
        return {}
    if isinstance(raw, list):
        raw = {str(name): "restricted" for name in raw}
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: {what}: expected a mapping of name to level ({', '.join(LEVELS)})")
    out: dict[str, Level] = {}
    for name, level in raw.items():
        if isinstance(level, dict):
            level = level.get("level", "restricted")
        if level not in LEVELS:
            raise PolicyError(f"{path}: {what}.{name}: level {level!r} is not one of {', '.join(LEVELS)}")
        out[str(name)] = level
    return out


def load_policy(path: str | Path | None = None) -> SpecPolicy:
    """The policy in `path` (else `$BIGK_SPEC_POLICY`, else the built-in default: namespace default, restricted)."""
    where = path if path is not None else (os.environ.get(POLICY_ENV) or None)
    if where is None:
        return SpecPolicy()
    file = Path(where)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")[:1_000_000]) or {}
    except OSError as exc:
        raise PolicyError(f"{file}: cannot read the spec policy: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{file}: the spec policy is not valid YAML: {' '.join(str(exc).split())[:200]}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{file}: expected a mapping with namespaces: and queues:")
    unknown = sorted(set(data) - {"namespaces", "queues"})
    if unknown:
        raise PolicyError(f"{file}: unknown field {unknown[0]!r} (known: namespaces, queues)")
    return SpecPolicy(namespaces=_levels(data.get("namespaces"), "namespaces", str(file)),
                      queues=_levels(data.get("queues"), "queues", str(file)), source=str(file))


# ---- checks ------------------------------------------------------------------------------------


def check_job(job: Any, policy: SpecPolicy) -> list[Finding]:
    """Everything `job` (a JobSpec) asks that `policy` refuses, plus what bigk will override."""
    namespace = job.metadata.namespace
    findings: list[Finding] = []
    if namespace not in policy.namespaces:
        system = " (a system namespace)" if namespace in SYSTEM_NAMESPACES else ""
        findings.append(Finding(("metadata", "namespace"),
                                f"namespace {namespace!r}{system} is not allowed for specs; {policy.describe()}"))
    level = policy.level_for(namespace, job.spec.queue)
    for role in ("driver", "executor"):
        pod = getattr(job.spec, role)
        if pod.template:
            findings += check_template(pod.template, level, ("spec", role, "template"))
    findings += _check_spark_conf(job.spec.sparkConf, level)
    return findings


def _check_spark_conf(conf: Mapping[str, str], level: Level) -> list[Finding]:
    """Spark's own settings can mount host paths too: `spark.kubernetes.*.volumes.hostPath.*`."""
    if level == "privileged":
        return []
    kinds = ("hostPath",) if level == "baseline" else ("hostPath", "nfs")  # restricted: no nfs volumes either
    return [Finding(("spec", "sparkConf", key), f"{kind} volumes are not allowed at the {level} level (Pod "
                    "Security Standards); use a persistentVolumeClaim")
            for key in conf for kind in kinds if f".volumes.{kind}." in key]


def _containers(spec: Mapping[str, Any], base: Loc) -> Iterable[tuple[Loc, Mapping[str, Any]]]:
    for kind in _CONTAINER_LISTS:
        items = spec.get(kind)
        if isinstance(items, list):
            for i, item in enumerate(items):
                if isinstance(item, dict):
                    yield (*base, "spec", kind, i), item


def check_template(template: Any, level: Level, base: Loc = ()) -> list[Finding]:
    """Findings for one pod template (a plain dict as written in the spec)."""
    if not isinstance(template, dict):
        return []
    out: list[Finding] = []
    meta = _map(template, "metadata")
    spec = _map(template, "spec")
    if meta.get("namespace") is not None:
        out.append(Finding((*base, "metadata", "namespace"), "a template cannot choose its namespace: use "
                           "metadata.namespace of the job"))
    out += _bigk_fields(spec, base)
    if level != "privileged":
        out += _baseline(meta, spec, base, level)
    if level == "restricted":
        out += _restricted(spec, base)
    return out


def _bigk_fields(spec: Mapping[str, Any], base: Loc) -> list[Finding]:
    out = []
    if spec.get("nodeName"):
        out.append(Finding((*base, "spec", "nodeName"), "nodeName is bigk's to choose (it would skip bigk's "
                           "scheduler); use nodeSelector or pools"))
    if spec.get("schedulerName") not in (None, "bigk"):
        out.append(Finding((*base, "spec", "schedulerName"), "schedulerName is overwritten with bigk: bigk schedules "
                           "every pod of a job", "warning"))
    for loc, container in _containers(spec, base):
        if container.get("resources"):
            out.append(Finding((*loc, "resources"), "container resources are bigk's (computed from cores, memory "
                               "and gpu): removed from the template", "warning"))
    return out


def _security_contexts(spec: Mapping[str, Any], base: Loc) -> Iterable[tuple[Loc, Mapping[str, Any]]]:
    pod_sc = spec.get("securityContext")
    if isinstance(pod_sc, dict):
        yield (*base, "spec", "securityContext"), pod_sc
    for loc, container in _containers(spec, base):
        sc = container.get("securityContext")
        if isinstance(sc, dict):
            yield (*loc, "securityContext"), sc


def _baseline(meta: Mapping[str, Any], spec: Mapping[str, Any], base: Loc, level: Level) -> list[Finding]:
    why = f"not allowed at the {level} level (Pod Security Standards)"
    out = []
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key) is True:
            out.append(Finding((*base, "spec", key), f"{key} true: {why}"))
    volumes = spec.get("volumes")
    for i, volume in enumerate(volumes if isinstance(volumes, list) else []):
        if isinstance(volume, dict) and "hostPath" in volume:
            out.append(Finding((*base, "spec", "volumes", i, "hostPath"), f"hostPath volumes: {why}"))
    for loc, container in _containers(spec, base):
        ports = container.get("ports")
        for j, port in enumerate(ports if isinstance(ports, list) else []):
            if isinstance(port, dict) and port.get("hostPort") not in (None, 0):
                out.append(Finding((*loc, "ports", j, "hostPort"), f"hostPort: {why}"))
        sc = _map(container, "securityContext")
        if sc.get("privileged") is True:
            out.append(Finding((*loc, "securityContext", "privileged"), f"privileged containers: {why}"))
        caps = _map(sc, "capabilities")
        added = _seq(caps, "add")
        allowed = BASELINE_CAPABILITIES if level == "baseline" else RESTRICTED_CAPABILITIES
        for j, cap in enumerate(added):
            if str(cap).upper().removeprefix("CAP_") not in allowed:
                out.append(Finding((*loc, "securityContext", "capabilities", "add", j),
                                   f"capability {cap}: {why}"))
        if sc.get("procMount") not in (None, "Default"):
            out.append(Finding((*loc, "securityContext", "procMount"), f"procMount {sc.get('procMount')}: {why}"))
    for loc, sc in _security_contexts(spec, base):
        seccomp = _map(sc, "seccompProfile")
        if seccomp.get("type") == "Unconfined":
            out.append(Finding((*loc, "seccompProfile", "type"), f"seccomp Unconfined: {why}"))
        apparmor = _map(sc, "appArmorProfile")
        if apparmor.get("type") == "Unconfined":
            out.append(Finding((*loc, "appArmorProfile", "type"), f"AppArmor Unconfined: {why}"))
        selinux = _map(sc, "seLinuxOptions")
        if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
            out.append(Finding((*loc, "seLinuxOptions"), f"custom SELinux options: {why}"))
        windows = _map(sc, "windowsOptions")
        if windows.get("hostProcess") is True:
            out.append(Finding((*loc, "windowsOptions", "hostProcess"), f"hostProcess: {why}"))
    pod_sc = _map(spec, "securityContext")
    sysctls = _seq(pod_sc, "sysctls")
    for j, sysctl in enumerate(sysctls):
        name = sysctl.get("name") if isinstance(sysctl, dict) else sysctl
        if name not in SAFE_SYSCTLS:
            out.append(Finding((*base, "spec", "securityContext", "sysctls", j), f"sysctl {name}: {why}"))
    annotations = _map(meta, "annotations")
    for key, value in annotations.items():
        if str(key).startswith(_APPARMOR_PREFIX) and not (value == "runtime/default"
                                                           or str(value).startswith("localhost/")):
            out.append(Finding((*base, "metadata", "annotations", key), f"AppArmor profile {value}: {why}"))
    return out


def _restricted(spec: Mapping[str, Any], base: Loc) -> list[Finding]:
    why = "not allowed at the restricted level (Pod Security Standards)"
    out = []
    volumes = spec.get("volumes")
    for i, volume in enumerate(volumes if isinstance(volumes, list) else []):
        if isinstance(volume, dict):
            kinds = [k for k in volume if k != "name" and k != "hostPath"]
            for kind in kinds:
                if kind not in RESTRICTED_VOLUMES:
                    out.append(Finding((*base, "spec", "volumes", i, kind), f"{kind} volumes: {why}; allowed: "
                                       f"{', '.join(sorted(RESTRICTED_VOLUMES))}"))
    for loc, sc in _security_contexts(spec, base):
        if sc.get("runAsNonRoot") is False:
            out.append(Finding((*loc, "runAsNonRoot"), f"runAsNonRoot false: {why}"))
        if sc.get("runAsUser") == 0:
            out.append(Finding((*loc, "runAsUser"), f"runAsUser 0 (root): {why}"))
        seccomp = _map(sc, "seccompProfile")
        if seccomp and seccomp.get("type") not in ("RuntimeDefault", "Localhost", "Unconfined"):
            out.append(Finding((*loc, "seccompProfile", "type"), f"seccomp profile {seccomp.get('type')}: {why}"))
    for loc, container in _containers(spec, base):
        sc = _map(container, "securityContext")
        if sc.get("allowPrivilegeEscalation") is True:
            out.append(Finding((*loc, "securityContext", "allowPrivilegeEscalation"),
                               f"allowPrivilegeEscalation true: {why}"))
    return out


class PolicyViolation(SpecError):
    """A job the install's spec policy refuses, caught again at submission (a kept or older definition)."""


def _dotted(loc: Loc) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def enforce(job: Any, policy: SpecPolicy | None) -> Level:
    """The level `job` runs at; PolicyViolation if the policy refuses it. Called for every submission."""
    policy = policy if policy is not None else SpecPolicy()
    errors = [f for f in check_job(job, policy) if f.severity == "error"]
    if errors:
        more = f" (and {len(errors) - 1} more; run bigk validate)" if len(errors) > 1 else ""
        raise PolicyViolation(f"refused by the spec policy: {_dotted(errors[0].loc)}: {errors[0].message}{more}")
    return policy.level_for(job.metadata.namespace, job.spec.queue)


# ---- what bigk writes into every pod ----------------------------------------------------------

RESTRICTED_POD_CONTEXT: Mapping[str, Any] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER_CONTEXT: Mapping[str, Any] = {"allowPrivilegeEscalation": False,
                                                   "capabilities": {"drop": ["ALL"]}}


def harden_template(template: dict[str, Any], level: Level) -> list[str]:
    """Make a rendered pod template bigk's: drop nodeName and container resources; at `restricted`, fill in
    the security settings the level requires where the spec left them out. Returns what was removed."""
    removed = []
    spec = template.setdefault("spec", {})
    if spec.pop("nodeName", None):
        removed.append("spec.nodeName")
    for kind in _CONTAINER_LISTS:
        for container in spec.get(kind) or []:
            if isinstance(container, dict) and container.pop("resources", None):
                removed.append(f"spec.{kind}[{container.get('name', '?')}].resources")
    if level == "restricted":
        pod_sc = spec.setdefault("securityContext", {})
        for key, value in RESTRICTED_POD_CONTEXT.items():
            pod_sc.setdefault(key, value)
        for kind in _CONTAINER_LISTS:
            for container in spec.get(kind) or []:
                if isinstance(container, dict):
                    sc = container.setdefault("securityContext", {})
                    sc.setdefault("allowPrivilegeEscalation", False)
                    caps = sc.setdefault("capabilities", {})
                    drop = caps.setdefault("drop", [])
                    if "ALL" not in drop:
                        drop.append("ALL")
    return removed


__all__ = [
    "LEVELS",
    "Finding",
    "Level",
    "PolicyError",
    "PolicyViolation",
    "SpecPolicy",
    "check_job",
    "check_template",
    "enforce",
    "harden_template",
    "load_policy",
]
