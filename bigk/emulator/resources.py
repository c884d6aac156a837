"""The resource types the emulated API serves, and their discovery metadata.

One table drives routing, discovery documents (`/api/v1`, `/apis/GROUP/VERSION`)
and storage, so a type added here is served everywhere at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_STATUS_VERBS = ("get", "patch", "update")
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One served resource (e.g. core/v1 pods)."""

    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: dict[str, tuple[str, str, str, tuple[str, ...]]] = field(default_factory=dict)
    # subresource -> (group, version, kind, verbs); group/version "" = same as parent
    categories: tuple[str, ...] = ()
    view_of: str = ""  # stored as another resource (events.k8s.io Events are core Events)

    @property
    def store_key(self) -> str:
        """Where objects of this type live in the store."""
        return self.view_of or self.key

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Storage key: `pods`, `leases.coordination.k8s.io`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular(self) -> str:
        return self.kind.lower()


RESOURCES: tuple[ResourceType, ...] = (
    ResourceType(
        "",
        "v1",
        "namespaces",
        "Namespace",
        False,
        ("ns",),
        {"status": ("", "", "Namespace", ("get", "patch", "update"))},
    ),
    ResourceType(
        "",
        "v1",
        "pods",
        "Pod",
        True,
        ("po",),
        {
            "binding": ("", "", "Binding", ("create",)),
            "status": ("", "", "Pod", ("get", "patch", "update")),
            "eviction": ("policy", "v1", "Eviction", ("create",)),
            "log": ("", "", "Pod", ("get",)),  # simulated container logs (bigk.emulator.podlogs)
        },
        ("all",),
    ),
    ResourceType("", "v1", "nodes", "Node", False, ("no",), {"status": ("", "", "Node", ("get", "patch", "update"))}),
    ResourceType("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    ResourceType(
        "",
        "v1",
        "services",
        "Service",
        True,
        ("svc",),
        {"status": ("", "", "Service", ("get", "patch", "update"))},
        ("all",),
    ),
    ResourceType("", "v1", "events", "Event", True, ("ev",)),
    ResourceType("events.k8s.io", "v1", "events", "Event", True, ("ev",), view_of="events"),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True),
    ResourceType("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ("netpol",)),
    ResourceType("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False, ("pc",)),
    # RBAC objects: stored so SubjectAccessReviews are decided by them (bigk.emulator.reviews)
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    # Storage objects read by the volume filters (defaults and checks: bigk.emulator.storage).
    ResourceType("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",),
                 {"status": ("", "", "PersistentVolumeClaim", _STATUS_VERBS)}),
    ResourceType("", "v1", "persistentvolumes", "PersistentVolume", False, ("pv",),
                 {"status": ("", "", "PersistentVolume", _STATUS_VERBS)}),
    ResourceType("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, ("sc",)),
    ResourceType("storage.k8s.io", "v1", "csinodes", "CSINode", False),
    ResourceType("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass", False),  # bigk.emulator.runtimeclass
)

_BY_PATH: dict[tuple[str, str, str], ResourceType] = {(r.group, r.version, r.plural): r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    """The resource served at /api[s]/GROUP/VERSION/PLURAL, or None."""
    return _BY_PATH.get((group, version, plural))


def by_key(key: str) -> ResourceType:
    """The resource type stored under `key` (`pods`, `leases.coordination.k8s.io`)."""
    for r in RESOURCES:
        if r.key == key:
            return r
    raise KeyError(key)


def groups() -> list[tuple[str, str]]:
    """Every (group, version) served outside the core group, in a stable order."""
    seen: list[tuple[str, str]] = []
    for r in RESOURCES:
        if r.group and (r.group, r.version) not in seen:
            seen.append((r.group, r.version))
    return seen


def resource_list(group: str, version: str) -> dict[str, object] | None:
    """The APIResourceList discovery document for one group version."""
    items = [r for r in RESOURCES if r.group == group and r.version == version]
    if not items:
        return None
    resources: list[dict[str, object]] = []
    for r in items:
        entry: dict[str, object] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(ALL_VERBS),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        resources.append(entry)
        for sub, (sgroup, sversion, skind, verbs) in r.subresources.items():
            sub_entry: dict[str, object] = {
                "name": f"{r.plural}/{sub}",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": skind,
                "verbs": list(verbs),
            }
            if sgroup:
                sub_entry["group"] = sgroup
                sub_entry["version"] = sversion
            resources.append(sub_entry)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }
