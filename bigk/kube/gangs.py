"""Gangs and snapshots from what the informers see: Spark applications as scheduling units.

A gang is the set of pods with one `spark-app-selector`. Its minimum comes from
the driver's `bigk.io/min-executors` annotation (`bigk.io/max-executors` beside
it is for people and tools: the scheduler needs no maximum, since Spark creates
at most that many executors and those above the minimum are extras); the
request of one executor comes from an executor pod when one exists (exact),
else from the driver's `bigk.io/executor-request` annotation (written by the
spec renderer), else it is estimated as the driver's own request (logged), so
that executors not yet created can still be reserved.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

from bigk.cluster import labels as L
from bigk.cluster.executor_request import decode_executor_request
from bigk.cluster.model import Gang, Node, Pod, Queue, Role
from bigk.kube.cache import PodEntry
from bigk.scheduler.types import Snapshot

log = logging.getLogger(__name__)

_warned: set[str] = set()


def _int_annotation(entry: PodEntry, name: str) -> int | None:
    text = entry.annotations.get(name, "").strip()
    if not text:
        return None
    try:
        return max(0, int(text))
    except ValueError:
        return None


class GangMemo:
    """The gangs of the last snapshot, so that a gang whose driver and model executor did not change is the same
    object in the next one. The core tells changed gangs by identity (`bigk.scheduler.tracker`): gangs built
    afresh every cycle made every waiting gang "changed" whenever any one was, and each cycle re-read them all."""

    def __init__(self) -> None:
        self._built: dict[str, tuple[PodEntry, PodEntry | None, Gang]] = {}

    def gang(self, name: str, driver: PodEntry, model: PodEntry | None) -> Gang:
        was = self._built.get(name)
        if was is not None and was[0] is driver and was[1] is model:
            return was[2]
        gang = _gang(name, driver, model)
        if was is not None and was[2] == gang:  # the same gang from new entries (an assumed bind, a resync)
            gang = was[2]
        self._built[name] = (driver, model, gang)
        return gang

    def forget_except(self, names: Iterable[str]) -> None:
        keep = set(names)
        for name in [n for n in self._built if n not in keep]:
            del self._built[name]


def gangs_from_entries(entries: Iterable[PodEntry], memo: GangMemo | None = None) -> dict[str, Gang]:
    """One Gang per Spark application that has a driver (bound or pending); with `memo`, unchanged gangs are the
    objects of the last call."""
    members: dict[str, list[PodEntry]] = {}
    for entry in entries:
        if entry.pod.gang:
            members.setdefault(entry.pod.gang, []).append(entry)
    gangs: dict[str, Gang] = {}
    for name, group in members.items():
        driver = next((e for e in group if e.pod.role is Role.DRIVER), None)
        if driver is None:
            continue  # executors without a driver: placed one by one
        executors = [e for e in group if e.pod.role is Role.EXECUTOR]
        model = min(executors, key=lambda e: e.pod.name) if executors else None
        gangs[name] = memo.gang(name, driver, model) if memo is not None else _gang(name, driver, model)
    if memo is not None:
        memo.forget_except(gangs)
    return gangs


def _gang(name: str, driver: PodEntry, model_entry: PodEntry | None) -> Gang:
    """The gang of `driver`; `model_entry`: its executor with the smallest name (its request is the gang's)."""
    d = driver.pod
    minimum = _int_annotation(driver, L.MIN_EXECUTORS_ANNOTATION) or 0
    selector, tolerations, pools = d.node_selector, d.tolerations, d.preferred_pools
    if model_entry is not None:
        model = model_entry.pod
        request = model.request
        selector, tolerations, pools = model.node_selector, model.tolerations, model.preferred_pools
    else:
        decoded = decode_executor_request(driver.annotations.get(L.EXECUTOR_REQUEST_ANNOTATION, ""))
        if decoded is not None:
            request, selector, tolerations = decoded
        else:
            request = d.request
            if minimum and name not in _warned:
                _warned.add(name)
                log.warning("event=executor_request_estimated gang=%s reason=no_%s_annotation", name,
                            L.EXECUTOR_REQUEST_ANNOTATION.replace("bigk.io/", ""))
    return Gang(name=name, queue=d.queue, priority=d.priority, driver=d.request, executor=request,
                min_executors=minimum, namespace=d.namespace, created_at=d.created_at,
                node_selector=dict(selector), tolerations=list(tolerations), preferred_pools=tuple(pools))


QueueSource = Mapping[str, Queue] | Callable[[], Mapping[str, Queue]] | None


def build_snapshot(nodes: list[Node], entries: list[PodEntry], queues: QueueSource = None,
                   memo: GangMemo | None = None) -> Snapshot:
    """The core's input: nodes, bound and pending pods, gangs, queues (`memo`: a scheduling loop's, kept across
    its cycles)."""
    resolved = queues() if callable(queues) else queues
    pods: list[Pod] = [e.pod for e in entries]
    return Snapshot(nodes=nodes, pods=pods, queues=dict(resolved or {}), gangs=gangs_from_entries(entries, memo))
