"""Choosing preemption victims: the fewest, lowest-priority ones that let a gang fit.

Victims come in groups: an extra executor (above its gang's minimum) alone, or a
whole gang (driver, every executor and its reservations), or a lone pod. Groups
are tried extras first, then by lowest priority, smallest, newest first; a group is only
eligible when its priority is strictly lower than the preemptor's and evicting it
keeps its queue within its guarantee. The search is node by node (a pod needs
its room on one node), and once the preemptor fits, groups that turn out
unnecessary are put back, so the set is small.
Nothing is evicted here: the caller turns the result into `Eviction`s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import NamedTuple

import numpy as np

from bigk.cluster.fit import NodeUsage
from bigk.cluster.model import Pod, PodRequest
from bigk.cluster.state import ClusterState, Placement
from bigk.cluster.usage import ZERO, Tally, Usage
from bigk.scheduler.placement import Placed, Placer
from bigk.scheduler.queueing import QueueBook, usage_on
from bigk.scheduler.units import GangView, Item, extras_first

MAX_NODES = 32  # nodes simulated per item of a preemptor (after a vectorised pre-filter)


@dataclass
class VictimGroup:
    """Pods evicted together (and reservation keys dropped with them)."""

    name: str
    queue: str
    priority: int
    extra: bool
    created_at: float
    pods: list[Pod]
    keys: list[str]  # allocation keys: the pods' keys, then reservation keys
    reservation_keys: list[str] = field(default_factory=list)
    nodes: set[int] = field(default_factory=set)
    evicted: bool = False  # chosen by a plan this cycle: its pods are being evicted (each pod is in one group)

    def usage(self, state: ClusterState) -> Usage:
        total = Tally()
        for key in self.keys:
            entry = state.allocations.get(key)
            if entry is not None:
                total.add(usage_on(state, entry.request, entry.placement.node))
        return total.frozen()


def gang_victims(state: ClusterState, views: dict[str, GangView], reservations: dict[str, list[str]],
                 skip: set[str]) -> list[VictimGroup]:
    """Victim groups of gangs: each extra executor alone, then the rest of the gang as one group."""
    groups: list[VictimGroup] = []
    allocations, index = state.allocations, state.index
    for view in views.values():
        if not view.bound and not reservations.get(view.gang):
            continue
        minimum = view.info.min_executors if view.info is not None else 0
        extras = extras_first(view.bound_executors, minimum) if view.info is not None else []
        extra_keys = set()
        for pod in extras:
            key = pod.key
            extra_keys.add(key)
            if key not in skip and key in allocations:
                groups.append(VictimGroup(key, view.queue, view.priority, True, pod.created_at, [pod], [key],
                                          nodes={index[pod.node]}))
        rest = [p for p in view.bound if p.key not in extra_keys and p.key not in skip]
        res_keys = list(reservations.get(view.gang, []))
        if rest or res_keys:
            keys = [p.key for p in rest] + res_keys
            nodes = {allocations[k].placement.node for k in keys if k in allocations}
            created = view.driver.created_at if view.driver else min((p.created_at for p in rest), default=0.0)
            groups.append(VictimGroup(view.gang, view.queue, view.priority, False, created, rest, keys, res_keys,
                                      nodes))
    return groups


def _order(g: VictimGroup) -> tuple[object, ...]:
    """Try order: extras first, then lowest priority, smallest, newest."""
    return (not g.extra, g.priority, len(g.keys), -g.created_at, g.name)


class VictimIndex:
    """The cycle's possible victims by node, and what evicting them could free (per priority, lazily).

    Gang groups are built up front (there are few); lone pods, usually the bulk,
    become groups only on the nodes a preemption actually examines.
    `candidates()` narrows the nodes worth simulating for one pod with a
    vectorised optimistic bound: the node's free room plus everything that pods
    below the preemptor's priority hold there.
    """

    def __init__(self, state: ClusterState, gangs: list[VictimGroup], lone_bound: list[Pod], skip: set[str]) -> None:
        self.state = state
        self.gangs = gangs
        self.skip = skip
        self._gangs_on: dict[int, list[VictimGroup]] = {}
        for g in gangs:
            for n in g.nodes:
                self._gangs_on.setdefault(n, []).append(g)
        self._lone_on: dict[int, list[Pod]] = {}
        for pod in lone_bound:
            i = state.index.get(pod.node)
            if i is not None:
                self._lone_on.setdefault(i, []).append(pod)
        prios = [g.priority for g in gangs] + [p.priority for p in lone_bound]
        self.lowest = min(prios, default=None)
        self.above_all = max(prios, default=0) + 1  # a bound under which every victim falls (reclaim)
        self._on: dict[int, list[VictimGroup]] = {}
        self._freeable: dict[int, tuple[np.ndarray, ...]] = {}

    def groups_on(self, node: int) -> list[VictimGroup]:
        """Every victim group with something on `node`, in try order."""
        cached = self._on.get(node)
        if cached is None:
            cached = list(self._gangs_on.get(node, []))
            allocations = self.state.allocations
            for pod in self._lone_on.get(node, []):
                key = pod.key
                if key not in self.skip and key in allocations:
                    cached.append(VictimGroup(key, pod.queue, pod.priority, False, pod.created_at, [pod], [key],
                                              nodes={node}))
            cached.sort(key=_order)
            self._on[node] = cached
        return cached

    def freeable(self, below: int) -> tuple[np.ndarray, ...]:
        """(cpu, memory, pods, victim pods, per-slot milli-GPU, per-slot GPU memory) held below `below`."""
        cached = self._freeable.get(below)
        if cached is not None:
            return cached
        s = self.state
        n, g = s.gpu_milli_used.shape
        cpu, mem, pods = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
        milli, gmem = np.zeros((n, g), np.int64), np.zeros((n, g), np.int64)
        keys = [k for group in self.gangs if group.priority < below for k in group.keys]
        keys += [p.key for lone in self._lone_on.values() for p in lone if p.priority < below]
        for key in keys:
            entry = s.allocations.get(key)
            if entry is None or key in self.skip:
                continue
            req, placement = entry
            i = placement.node
            cpu[i] += req.cpu_milli
            mem[i] += req.memory_mib
            pods[i] += 1
            for slot in placement.gpus:
                milli[i, slot] += placement.gpu_milli
                gmem[i, slot] += placement.gpu_memory_mib
        out = (cpu, mem, pods, pods.copy(), milli, gmem)
        self._freeable[below] = out
        return out

    def candidates(self, item: Item, below: int, placer: Placer) -> np.ndarray:
        """Nodes where `item` could fit if every pod below `below` there left, fewest such pods first.

        The fit rule under the usage left once they are gone (their scalars and host ports
        leave with them; live GPU memory cannot show what they would free yet).
        """
        s, f = self.state, placer.filters
        cpu, mem, pods, count, milli, gmem = self.freeable(below)
        left = NodeUsage(s.cpu_used - cpu, s.mem_used - mem, s.pods_used - pods, s.gpu_milli_used - milli,
                         s.gpu_mem_used - gmem, held_extras=False)
        ok = f.nodes(item.request, placer.static(item), left, live=False) & (count > 0)
        nodes = np.flatnonzero(ok)
        return nodes[np.argsort(count[nodes], kind="stable")]


@dataclass
class PreemptionPlan:
    victims: list[VictimGroup]
    slots: list[tuple[int, tuple[int, ...]]]  # where each of the unit's items would go


class Released(NamedTuple):
    """A victim's allocation taken out of the state during a preemption trial, to be put back."""

    key: str
    request: PodRequest
    placement: Placement



class _Releaser:
    """Releases victim groups from the state and puts them back exactly."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state

    def release(self, group: VictimGroup) -> list[Released]:
        out = []
        for key in group.keys:
            entry = self.state.allocations.get(key)
            if entry is not None:
                self.state.release(key)
                out.append(Released(key, entry.request, entry.placement))
        return out

    def restore(self, entries: list[Released]) -> None:
        for key, req, placement in reversed(entries):
            self.state.allocate(key, req, placement)


def plan_preemption(state: ClusterState, book: QueueBook, index: VictimIndex, below: int, placer: Placer,
                    items: list[Item], keys: list[str], skip: Callable[[VictimGroup], bool], queue: str = "",
                    reclaim: Callable[[VictimGroup], bool] | None = None) -> PreemptionPlan | None:
    """Find victims item by item, node by node; the state is left exactly as it was found.

    Victims have a priority below `below`, or, when `reclaim` is given (the
    preemptor's `queue` is under its guarantee), are groups it accepts whatever
    their priority; either way never inside a guarantee (`QueueBook.protected`).

    Each item of the preemptor is placed, in order, where it fits now (after the
    victims already chosen for earlier items) or else on the node where it fits
    after evicting the cheapest victims there: those whose highest priority is
    lowest, then the fewest pods. Whole groups are released, so evicting a gang for
    one item frees its other nodes for the next items. At most `MAX_NODES` nodes
    are examined per item. Finally, groups that turn out unnecessary are dropped.
    """
    rel = _Releaser(state)
    chosen: list[tuple[VictimGroup, list[Released]]] = []
    taken: dict[str, Usage] = {}
    placed: Placed = []

    def eligible(g: VictimGroup, also: Mapping[str, Usage]) -> bool:
        """May `g` go, after the victims already chosen and `also` (chosen on the node being tried)?"""
        if skip(g) or any(g is c for c, _ in chosen):
            return False
        if g.priority >= below and (reclaim is None or not reclaim(g)):
            return False
        if not book.guarded(g.queue):  # no guarantee on its path: nothing to protect, no usage to add up
            return True
        return not book.protected(g.queue, g.usage(state), _merged(taken, also), queue)

    def take(g: VictimGroup) -> None:
        usage = counted_usage(g, book, state)
        chosen.append((g, rel.release(g)))
        taken[g.queue] = taken.get(g.queue, ZERO) + usage

    def undo() -> None:
        placer.rollback(placed)
        for _, entries in reversed(chosen):
            rel.restore(entries)

    for item, key in zip(items, keys, strict=True):
        placement = placer.choose(item)
        if placement is None:
            bound = below if reclaim is None else index.above_all
            best = _cheapest_node(placer, item, index.candidates(item, bound, placer), index, eligible, rel, book)
            if best is None:
                undo()
                return None
            node, victims = best
            for g in victims:
                take(g)
            placement = placer.choose_on(item, node)
        if placement is None or not placer.allocate(key, item.request, placement):
            undo()
            return None
        placed.append((key, item, placement))
    slots = [(p.node, p.gpus) for _, _, p in placed]
    placer.rollback(placed)
    placed = []
    # Drop victims that are not needed after all (latest choices are tried first).
    for idx in range(len(chosen) - 1, -1, -1):
        group, entries = chosen[idx]
        rel.restore(entries)
        trial = placer.place_all(items, keys)
        if trial is not None:
            slots = [(p.node, p.gpus) for _, _, p in trial]
            placer.rollback(trial)
            del chosen[idx]
        else:
            rel.release(group)
    victims = [g for g, _ in chosen]
    for _, entries in reversed(chosen):
        rel.restore(entries)
    return PreemptionPlan(victims, slots)


def counted_usage(g: VictimGroup, book: QueueBook, state: ClusterState) -> Usage:
    """What evicting `g` takes from its queue, as guarantee checks count it: ZERO for a queue with no guarantee on
    its path (no check ever reads it there, `QueueBook.guarded`), so the sum over its pods is skipped."""
    return g.usage(state) if book.guarded(g.queue) else ZERO


def _merged(a: Mapping[str, Usage], b: Mapping[str, Usage]) -> dict[str, Usage]:
    out = dict(a)
    for q, u in b.items():
        out[q] = out.get(q, ZERO) + u
    return out


def _cheapest_node(placer: Placer, item: Item, nodes: np.ndarray, index: VictimIndex,
                   eligible: Callable[[VictimGroup, Mapping[str, Usage]], bool], rel: _Releaser, book: QueueBook
                   ) -> tuple[int, list[VictimGroup]] | None:
    """Among candidate `nodes`, the one where evicting the cheapest eligible victims lets `item` fit.

    Every node with an eligible victim counts towards `MAX_NODES`; only those that could beat the best plan
    so far are simulated, and only as long as they still can (the others could not change the answer).
    """
    best: tuple[tuple[int, int, int], int, list[VictimGroup]] | None = None
    tried = 0
    none: dict[str, Usage] = {}
    for node in (int(n) for n in nodes):
        # Eligibility is read lazily: releasing a group changes neither the usage of another nor the
        # queues' margins, which the loop below re-checks with the victims picked here.
        candidates = (g for g in index.groups_on(node) if eligible(g, none))
        first = next(candidates, None)
        if first is None:
            continue
        tried += 1
        # The first candidate always goes (below), so the cost here is at least (its priority, its pods, node):
        # a node that cannot beat the best so far is not simulated (it still counts as tried).
        if best is not None and (first.priority, len(first.pods), node) >= best[0]:
            if tried >= MAX_NODES:
                break
            continue
        released: list[tuple[VictimGroup, list[Released]]] = []
        here: dict[str, Usage] = {}
        ok = beaten = False
        top, pods = first.priority, 0
        for g in chain((first,), candidates):
            usage = counted_usage(g, book, rel.state)
            if here and not eligible(g, here):  # the victims already picked here used up its queue's margin
                continue
            released.append((g, rel.release(g)))
            here = _merged(here, {g.queue: usage})
            top, pods = max(top, g.priority), pods + len(g.pods)
            # The cost only grows with each victim: once it reaches the best plan's, this node cannot win.
            beaten = best is not None and (top, pods, node) >= best[0]
            ok = placer.fits_on(item, node)
            if ok or beaten:
                break
        for _, entries in reversed(released):
            rel.restore(entries)
        if ok and not beaten:
            best = ((top, pods, node), node, [g for g, _ in released])
        if tried >= MAX_NODES:
            break
    return None if best is None else (best[1], best[2])
