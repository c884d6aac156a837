"""Choosing preemption victims: the fewest, lowest-priority ones that let a gang fit.

Victims come in groups: an extra executor (above its gang's minimum) alone, or a
whole gang (driver, every executor and its reservations), or a lone pod. Groups
are tried extras first, then by lowest priority, smallest, newest first; a group is only
eligible when its priority is strictly lower than the preemptor's and evicting it
keeps its queue within its guarantee. Once the preemptor fits, groups that turn
out unnecessary are put back (newest choice kept), so the set is small.
Nothing is evicted here: the caller turns the result into `Eviction`s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bigk.cluster.model import MILLI_GPU, Pod, PodRequest
from bigk.cluster.state import ClusterState, Placement
from bigk.scheduler.queueing import QueueBook, Usage
from bigk.scheduler.units import GangView, extras_first, usage_of

MAX_TRIALS = 64  # bound the work one preemption attempt may cost


@dataclass
class VictimGroup:
    """Pods evicted together (and reservation keys dropped with them)."""

    name: str
    queue: str
    priority: int
    extra: bool
    created_at: float
    pods: list[Pod]
    reservation_keys: list[str] = field(default_factory=list)
    nodes: set[int] = field(default_factory=set)

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.pods] + self.reservation_keys

    def usage(self, state: ClusterState) -> Usage:
        cpu = mem = gpu = 0
        for key in self.keys:
            entry = state.allocations.get(key)
            if entry is not None:
                c, m, g = usage_of(entry[0])
                cpu, mem, gpu = cpu + c, mem + m, gpu + g
        return cpu, mem, gpu


def victim_groups(state: ClusterState, views: dict[str, GangView], lone_bound: list[Pod],
                  reservations: dict[str, list[str]], below: int, skip: set[str]) -> list[VictimGroup]:
    """Every group with priority < `below`, in the order they would be tried."""
    groups: list[VictimGroup] = []

    def node_of(key: str) -> int | None:
        entry = state.allocations.get(key)
        return None if entry is None else entry[1].node

    for view in views.values():
        if view.priority >= below or not view.bound and not reservations.get(view.gang):
            continue
        minimum = view.info.min_executors if view.info is not None else 0
        extras = extras_first(view.bound_executors, minimum) if view.info is not None else []
        extra_keys = {p.key for p in extras}
        for pod in extras:
            if pod.key not in skip and pod.key in state.allocations:
                groups.append(VictimGroup(pod.key, view.queue, view.priority, True, pod.created_at, [pod]))
        rest = [p for p in view.bound if p.key not in extra_keys and p.key not in skip]
        res_keys = list(reservations.get(view.gang, []))
        if rest or res_keys:
            created = view.driver.created_at if view.driver else min((p.created_at for p in rest), default=0.0)
            groups.append(VictimGroup(view.gang, view.queue, view.priority, False, created, rest, res_keys))
    for pod in lone_bound:
        if pod.priority < below and pod.key not in skip:
            groups.append(VictimGroup(pod.key, pod.queue, pod.priority, False, pod.created_at, [pod]))
    for g in groups:
        g.nodes = {n for n in (node_of(k) for k in g.keys) if n is not None}
    groups.sort(key=lambda g: (not g.extra, g.priority, len(g.pods) + len(g.reservation_keys), -g.created_at, g.name))
    return groups


@dataclass
class PreemptionPlan:
    victims: list[VictimGroup]
    slots: list[tuple[int, tuple[int, ...]]]  # where each of the unit's items would go


def plan_preemption(state: ClusterState, book: QueueBook, groups: list[VictimGroup], nodes: np.ndarray,
                    need: Usage, usable: np.ndarray,
                    try_fit: Callable[[], list[Placement] | None]) -> PreemptionPlan | None:
    """Release groups until `try_fit` succeeds, then put back the ones not needed.

    `nodes` masks the nodes the preemptor could ever use; groups with nothing there
    are skipped. The state is left exactly as it was found.
    """
    released: list[tuple[str, PodRequest, Placement]] = []

    def release(group: VictimGroup) -> list[tuple[str, PodRequest, Placement]]:
        out = []
        for key in group.keys:
            entry = state.allocations.get(key)
            if entry is not None:
                state.release(key)
                out.append((key, entry[0], entry[1]))
        return out

    def restore(entries: list[tuple[str, PodRequest, Placement]]) -> None:
        for key, req, placement in reversed(entries):
            state.allocate(key, req, placement)

    def enough() -> bool:
        cpu = int((state.cpu_cap - state.cpu_used)[nodes].sum())
        mem = int((state.mem_cap - state.mem_used)[nodes].sum())
        gpu = int(np.where(usable, MILLI_GPU - state.gpu_milli_used, 0)[nodes].sum())
        return cpu >= need[0] and mem >= need[1] and gpu >= need[2]

    chosen: list[tuple[VictimGroup, list[tuple[str, PodRequest, Placement]]]] = []
    taken: dict[str, list[int]] = {}
    fit: list[Placement] | None = None
    trials = 0
    for group in groups:
        if not any(nodes[n] for n in group.nodes):
            continue
        usage = group.usage(state)
        already = taken.setdefault(group.queue, [0, 0, 0])
        if book.protected(group.queue, usage, (already[0], already[1], already[2])):
            continue
        entries = release(group)
        released.extend(entries)
        chosen.append((group, entries))
        for i in range(3):
            already[i] += usage[i]
        if not enough():
            continue
        trials += 1
        fit = try_fit()
        if fit is not None or trials >= MAX_TRIALS:
            break
    if fit is None:
        restore(released)
        return None
    # Put back groups that are not needed, the earliest choices (least preferred to keep) last.
    kept: list[VictimGroup] = [chosen[-1][0]]
    for group, entries in reversed(chosen[:-1]):
        restore(entries)
        again = try_fit() if trials < MAX_TRIALS else None
        trials += 1
        if again is not None:
            fit = again
            released = [e for e in released if e not in entries]
        else:
            for key, _, _ in entries:
                state.release(key)
            kept.append(group)
    restore(released)
    return PreemptionPlan(kept[::-1], [(p.node, p.gpus) for p in fit])
