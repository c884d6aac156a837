"""Informers and a cache for the storage objects the volume filters read: claims, volumes, classes, CSINodes.

Objects are translated once per event into `bigk.kube.volumes` records. Each cycle
the loop asks `resolve` to fold the volume filters' verdict into the pods that
mount claims (their node constraints, a refusal, their CSI attachments) and
`nodes` to add CSINode attach limits to the nodes; a cluster whose pods mount
no claims pays one dictionary check per pod.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, cast

from kubernetes import client

from bigk.cluster.model import Node, Pod, PodRequest
from bigk.cluster.state import ATTACH_PREFIX
from bigk.kube.cache import PodEntry
from bigk.kube.informer import CallbackHandler, Informer
from bigk.kube.volumes import (
    ClaimInfo,
    StorageView,
    apply,
    attach_limits_from_v1,
    claim_from_v1,
    claim_users,
    class_from_v1,
    resolve_pod,
    volume_from_v1,
)

log = logging.getLogger(__name__)

NOT_SYNCED = "VolumeBinding: bigk has not listed PersistentVolumeClaims, PersistentVolumes and StorageClasses yet"


def _name(obj: Any) -> str:
    meta = getattr(obj, "metadata", None)
    return (getattr(meta, "name", None) or "") if meta is not None else ""


def _claim_key(obj: Any) -> str:
    return f"{obj.metadata.namespace or 'default'}/{obj.metadata.name}"


class _Table:
    """One kind of object, translated, by key; `on_change` runs after every change."""

    def __init__(self, kind: str, translate: Callable[[Any], Any], key: Callable[[Any], str],
                 lock: threading.Lock, on_change: Callable[[], None]) -> None:
        self.kind = kind
        self.items: dict[str, Any] = {}
        self._translate = translate
        self._key = key
        self._lock = lock
        self._on_change = on_change

    def _one(self, obj: Any) -> Any:
        try:
            return self._translate(obj)
        except (AttributeError, TypeError, ValueError) as exc:
            log.warning("event=skip_object kind=%s name=%s error=%s", self.kind, _name(obj), exc)
            return None

    def replace(self, objs: Iterable[Any]) -> None:
        fresh = {}
        for obj in objs:
            item = self._one(obj)
            if item is not None:
                fresh[self._key(obj)] = item
        with self._lock:
            self.items = fresh
        self._on_change()

    def upsert(self, obj: Any) -> None:
        item = self._one(obj)
        with self._lock:
            if item is None:
                self.items.pop(self._key(obj), None)
            else:
                self.items[self._key(obj)] = item
        self._on_change()

    def delete(self, obj: Any) -> None:
        with self._lock:
            self.items.pop(self._key(obj), None)
        self._on_change()

    def handler(self) -> CallbackHandler:
        return CallbackHandler(self.replace, self.upsert, self.delete)


class StorageCache:
    """Claims, volumes, classes and CSI attach limits, safe to read while informers write."""

    def __init__(self, on_change: Callable[[], None] = lambda: None) -> None:
        self._on_change = on_change
        self._lock = threading.Lock()
        self.claims = _Table("PersistentVolumeClaim", claim_from_v1, _claim_key, self._lock, on_change)
        self.volumes = _Table("PersistentVolume", volume_from_v1, _name, self._lock, on_change)
        self.classes = _Table("StorageClass", class_from_v1, _name, self._lock, on_change)
        self.csinodes = _Table("CSINode", attach_limits_from_v1, _name, self._lock, on_change)
        self.synced: Callable[[], bool] = lambda: True
        self._merged: dict[str, tuple[Node, tuple[tuple[str, int], ...], Node]] = {}
        self._assumed: dict[str, ClaimInfo] = {}  # claim key -> the ClaimInfo with our selected node, until seen

    def assume_selected(self, namespace: str, claims: Iterable[str], node: str) -> None:
        """Show `claims` as pinned to `node` at once, before the claim informer sees bigk's selected-node write,
        so the next cycle (which runs while that write is in flight) keeps their other users on that node
        (kube-scheduler's assume cache does the same for its PVC updates)."""
        with self._lock:
            for claim in claims:
                key = f"{namespace}/{claim}"
                info = self.claims.items.get(key)
                if info is not None and not info.selected_node:
                    self.claims.items[key] = self._assumed[key] = replace(info, selected_node=node)
        self._on_change()

    def forget_selected(self, namespace: str, claims: Iterable[str]) -> None:
        """Undo `assume_selected` for claims whose write failed, unless the informer has replaced them since."""
        with self._lock:
            for claim in claims:
                key = f"{namespace}/{claim}"
                assumed = self._assumed.pop(key, None)
                if assumed is not None and self.claims.items.get(key) is assumed:
                    self.claims.items[key] = replace(cast(ClaimInfo, assumed), selected_node="")
        self._on_change()

    def view(self) -> StorageView:
        with self._lock:
            return StorageView(dict(self.claims.items), dict(self.volumes.items), dict(self.classes.items),
                               dict(self.csinodes.items))

    def resolve(self, entries: list[PodEntry]) -> list[PodEntry]:
        """Entries whose pods mount claims, with the volume filters' verdict folded in (see `volumes.apply`)."""
        if not any(e.pod.claims for e in entries):
            return entries
        view = self.view()
        synced = self.synced()
        users = claim_users(e.pod for e in entries)
        out = []
        for entry in entries:
            pod = entry.pod
            if pod.claims:
                resolved = resolve_pod(pod, view, users)
                if not synced and not pod.node:
                    resolved = replace(resolved, refusal=NOT_SYNCED)
                pod = apply(pod, resolved, bound=bool(pod.node))
                if pod is not entry.pod:
                    entry = replace(entry, pod=pod)
            out.append(entry)
        return out

    def nodes(self, nodes: list[Node]) -> list[Node]:
        """Nodes with their CSI attach limits as scalars; the same objects while nothing changed."""
        with self._lock:
            if not self.csinodes.items and not self._merged:
                return nodes
            limits = {name: tuple(sorted((ATTACH_PREFIX + driver, count) for driver, count in drivers.items()))
                      for name, drivers in self.csinodes.items.items()}
        out = []
        merged: dict[str, tuple[Node, tuple[tuple[str, int], ...], Node]] = {}
        for node in nodes:
            extra = limits.get(node.name, ())
            if not extra:
                out.append(node)
                continue
            hit = self._merged.get(node.name)
            if hit is not None and hit[0] is node and hit[1] == extra:
                merged[node.name] = hit
                out.append(hit[2])
                continue
            both = replace(node, scalars={**node.scalars, **dict(extra)})
            merged[node.name] = (node, extra, both)
            out.append(both)
        self._merged = merged
        return out

    def claims_to_select(self, namespace: str, claims: Iterable[str]) -> tuple[str, ...]:
        """Claims of a pod about to be bound that still need `volume.kubernetes.io/selected-node`."""
        probe = Pod("~probe", PodRequest(0, 0), namespace=namespace, claims=tuple(claims))
        return resolve_pod(probe, self.view()).to_select


class StorageInformers:
    """The four informers that feed a `StorageCache` (claims of one namespace, or of all)."""

    def __init__(self, api: client.ApiClient, cache: StorageCache, *, claims_list: Callable[..., Any] | None = None,
                 watch_timeout_s: int = 300) -> None:
        """`claims_list`: how to list claims (default: of every namespace)."""
        core, storage = client.CoreV1Api(api), client.StorageV1Api(api)
        claims_list = claims_list or core.list_persistent_volume_claim_for_all_namespaces
        self.informers = [
            Informer("persistentvolumeclaims", claims_list, cache.claims.handler(), watch_timeout_s=watch_timeout_s),
            Informer("persistentvolumes", core.list_persistent_volume, cache.volumes.handler(),
                     watch_timeout_s=watch_timeout_s),
            Informer("storageclasses", storage.list_storage_class, cache.classes.handler(),
                     watch_timeout_s=watch_timeout_s),
            Informer("csinodes", storage.list_csi_node, cache.csinodes.handler(), watch_timeout_s=watch_timeout_s),
        ]
        cache.synced = lambda: all(i.has_synced for i in self.informers)

    def start(self) -> None:
        for informer in self.informers:
            informer.start()

    def wait_for_sync(self, timeout: float) -> bool:
        return all(informer.wait_for_sync(timeout) for informer in self.informers)

    def stop(self) -> None:
        for informer in self.informers:
            informer.stop()
