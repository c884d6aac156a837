"""The snapshot's pods grouped across cycles: gang views, bound pods, lone pending pods.

`group_gangs` walks every pod of every snapshot; under a backlog that walk, and
everything built from it, is most of a cycle in which nothing changed.
`PodTracker` keeps the grouping from one cycle to the next and applies only the
difference: pods are told apart by identity (a snapshot reuses the object of a
pod that did not change, as the informer cache, the simulator and the benchmark
do), so finding what changed is a few C-level dictionary operations over the
object ids, not a Python loop over the pods. A pod edited in place is not seen
as changed, with one exception the callers rely on: a pod the scheduler bound
itself may have `node` and `gpus` set in place (the simulators do), so the keys
of the last cycle's binds are looked at again.

Within a gang view, pods keep the snapshot's order (as `group_gangs` gives
them); views are kept in the order their gangs were first seen (`first_seen`
gives `group_gangs`' order where it matters).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bigk.cluster.model import Gang, Pod, Role
from bigk.scheduler.units import GangView


@dataclass
class Delta:
    """What changed since the last snapshot."""

    gangs: set[str] = field(default_factory=set)  # gangs whose pods or gang info changed (or that went away)
    lone: set[str] = field(default_factory=set)  # keys of lone pending pods added, changed or gone
    bound_new: list[Pod] = field(default_factory=list)  # bound pods added or changed (the new objects)
    bound_gone: list[str] = field(default_factory=list)  # keys of bound pods gone or changed
    everything: bool = False  # the first snapshot: all of it is new
    infos: bool = False  # some gang's info (queue, priority, minimum) changed

    @property
    def victims(self) -> bool:
        """Could possible preemption victims differ (bound pods or gang infos changed)?"""
        return bool(self.bound_new or self.bound_gone or self.infos or self.everything)


class PodTracker:
    """`group_gangs`' result, kept in step with successive snapshots."""

    def __init__(self) -> None:
        self._pods: list[Pod] = []
        self._pos: dict[int, int] = {}  # id(pod) -> its position in `_pods`
        self._gangs: dict[str, Gang] = {}
        self._fresh = True
        self.views: dict[str, GangView] = {}
        self.bound: dict[str, Pod] = {}
        self.lone: dict[str, Pod] = {}
        self._key: dict[str, Pod] = {}  # every pod by key

    def update(self, pods: Sequence[Pod], gangs: Mapping[str, Gang], recheck: Iterable[str] = ()) -> Delta:
        """Apply the difference from the last snapshot; `recheck`: keys of pods the scheduler bound last cycle
        (they may have been bound in place)."""
        delta = Delta(everything=self._fresh)
        self._fresh = False
        same_pods = len(pods) == len(self._pods) and pods == self._pods  # identity first: C speed when unchanged
        if not same_pods:
            pos = dict(zip(map(id, pods), range(len(pods)), strict=True))
            old, old_pods = self._pos, self._pods
            gone = [old_pods[old[i]] for i in old.keys() - pos.keys()]
            new_ids = pos.keys() - old.keys()
            self._pods = list(pods)
            self._pos = pos
            for pod in gone:
                self._remove(pod, delta)
            for pod in sorted((self._pods[pos[i]] for i in new_ids), key=lambda p: pos[id(p)]):
                self._add(pod, gangs, delta)
        for key in recheck:
            mine = self._key.get(key)
            if mine is not None and mine.node and key not in self.bound:  # bound in place
                self._remove(mine, delta)
                self._add(mine, gangs, delta)
        if gangs != self._gangs:  # identity first per value
            for name in self._gangs.keys() | gangs.keys():
                if self._gangs.get(name) is not gangs.get(name):
                    delta.infos = True
                    view = self.views.get(name)
                    if view is not None:
                        view.info = gangs.get(name)
                    delta.gangs.add(name)
            self._gangs = dict(gangs)
        for name in delta.gangs:
            view = self.views.get(name)
            if view is not None:  # the snapshot's order within the gang; its last driver is the driver
                order = self._pos.get
                view.bound.sort(key=lambda p: order(id(p), -1))
                view.pending.sort(key=lambda p: order(id(p), -1))
                drivers = [p for p in view.bound + view.pending if p.role is Role.DRIVER]
                view.driver = max(drivers, key=lambda p: order(id(p), -1)) if drivers else None
        return delta

    def first_seen(self, gang: str) -> int:
        """Where the gang's first pod is in the snapshot (`group_gangs` orders views so; `views` keeps the order
        in which gangs were first seen, which differs once a gang's first pods are gone)."""
        view = self.views.get(gang)
        if view is None:
            return -1
        order = self._pos.get
        return min((order(id(p), -1) for p in view.bound + view.pending), default=-1)

    def _add(self, pod: Pod, gangs: Mapping[str, Gang], delta: Delta) -> None:
        key = pod.key
        self._key[key] = pod
        if pod.node:
            self.bound[key] = pod
            delta.bound_new.append(pod)
        if not pod.gang:
            if not pod.node:
                self.lone[key] = pod
                delta.lone.add(key)
            return
        view = self.views.get(pod.gang)
        if view is None:
            view = self.views[pod.gang] = GangView(pod.gang, gangs.get(pod.gang))
        (view.bound if pod.node else view.pending).append(pod)
        delta.gangs.add(pod.gang)

    def _remove(self, pod: Pod, delta: Delta) -> None:
        key = pod.key
        if self._key.get(key) is pod:
            del self._key[key]
        if self.bound.get(key) is pod:
            del self.bound[key]
            delta.bound_gone.append(key)
        if not pod.gang:
            if self.lone.get(key) is pod:
                del self.lone[key]
                delta.lone.add(key)
            return
        view = self.views.get(pod.gang)
        if view is None:
            return
        for group in (view.bound, view.pending):
            for n, p in enumerate(group):
                if p is pod:
                    del group[n]
                    break
        if not view.bound and not view.pending:
            del self.views[pod.gang]
        delta.gangs.add(pod.gang)
