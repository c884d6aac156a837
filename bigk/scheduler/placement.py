"""Placing items on the state: through the policy, all-or-nothing trials, and holds.

Trials never copy the state: placements are allocated one by one and released
again on failure, so a gang trial costs as many vectorised decisions as the gang
has pods, whatever the size of the cluster's history.

A *hold* keeps room for a unit that cannot run yet (the head of the queue, or a
preemptor waiting for its victims): on a chosen node it allocates whatever part
of the unit's request is free now, so backfill cannot take it; as running pods
leave, each cycle's hold grows until the unit fits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from bigk.cluster.model import MILLI_GPU, PodRequest
from bigk.cluster.state import ClusterState, OvercommitError, Placement
from bigk.scheduler.filters import Filters
from bigk.scheduler.policies.base import Policy
from bigk.scheduler.units import Item

log = logging.getLogger(__name__)


@dataclass
class Failure:
    """The first item of a trial that found no place, and how the nodes refused it."""

    index: int
    item: Item
    nodes_fit: int
    reasons: dict[str, int] = field(default_factory=dict)


Placed = list[tuple[str, Item, Placement]]


class Placer:
    """Places items for one cycle with a policy, on a state, through the cycle's filters."""

    def __init__(self, state: ClusterState, filters: Filters, policy: Policy, now: float) -> None:
        self.state = state
        self.filters = filters
        self.policy = policy
        self.now = now
        self._static: dict[tuple[object, ...], np.ndarray] = {}

    def static(self, item: Item) -> np.ndarray:
        key = (tuple(sorted(item.selector.items())), item.tolerations, item.request.gpu_models, item.constraints)
        mask = self._static.get(key)
        if mask is None:
            mask = self._static[key] = self.filters.static(item.selector, item.tolerations, item.request.gpu_models,
                                                           item.constraints)
        return mask

    def choose(self, item: Item) -> Placement | None:
        """The policy's placement for `item` among nodes where it fits (preferred pools first)."""
        feasible = self.filters.nodes(item.request, self.static(item))
        if item.pools:
            preferred = feasible & self.filters.pools(item.pools)
            if preferred.any():
                feasible = preferred
        if self.state.soft_taints:  # PreferNoSchedule: such nodes only when no other node fits
            preferred = feasible & self.state.preferred_mask(item.tolerations)
            if preferred.any():
                feasible = preferred
        if not feasible.any():
            return None
        placement = self.policy.select(self.state, item.request, feasible, self.now)
        if placement is not None and not feasible[placement.node]:
            log.error("event=policy-bug policy=%s node=%s reason=infeasible-node", self.policy.name,
                      self.state.nodes[placement.node].name)
            return None
        return self.checked_gpus(item.request, placement)

    def checked_gpus(self, req: PodRequest, placement: Placement | None) -> Placement | None:
        """The placement, with its GPUs re-chosen if the policy picked a slot the filters refuse.

        Health, live free memory and staleness are judged here with the scheduler's
        own `stale_after_s`, so no policy can put a pod on a sick or busy GPU.
        """
        if placement is None or not req.is_gpu:
            return placement
        fit = self.filters.slots(req, placement.node)
        if len(placement.gpus) == req.gpu_count and all(fit[g] for g in placement.gpus):
            return placement
        slots = np.flatnonzero(fit)
        if len(slots) < req.gpu_count:
            return None
        if req.is_fractional:
            room = MILLI_GPU - self.state.gpu_milli_used[placement.node, slots]
            gpus: tuple[int, ...] = (int(slots[int(np.argmin(room))]),)
        else:
            gpus = tuple(int(g) for g in slots[: req.gpu_count])
        return self.state.placement_for(placement.node, req, gpus)

    def choose_on(self, item: Item, node: int) -> Placement | None:
        """The policy's placement for `item` restricted to one node."""
        if not self.fits_on(item, node):
            return None
        feasible = np.zeros(self.state.size, dtype=bool)
        feasible[node] = True
        placement = self.policy.select(self.state, item.request, feasible, self.now)
        return self.checked_gpus(item.request, placement) if placement is not None and placement.node == node else None

    def fits_on(self, item: Item, node: int) -> bool:
        """Does `item` fit on `node` right now? (One row of `Filters.nodes`.)"""
        return self.filters.fits_row(item.request, self.static(item), node)

    def allocate(self, key: str, req: PodRequest, placement: Placement) -> bool:
        try:
            self.state.allocate(key, req, placement)
        except OvercommitError as err:
            log.error("event=policy-bug policy=%s error=%r", self.policy.name, str(err))
            return False
        return True

    def trial(self, items: list[Item], keys: list[str], all_or_nothing: bool) -> tuple[Placed, Failure | None]:
        """Place items in order; on a failure roll back (all-or-nothing) or keep what fit."""
        placed, index = self._place(items, keys)
        if index is None:
            return placed, None
        failure = self.failure(index, items[index])  # explained with the items before it still placed
        if all_or_nothing:
            self.rollback(placed)
            placed = []
        return placed, failure

    def place_all(self, items: list[Item], keys: list[str]) -> Placed | None:
        """`trial`, all or nothing, for a caller that only asks whether (no failure is explained)."""
        placed, index = self._place(items, keys)
        if index is None:
            return placed
        self.rollback(placed)
        return None

    def _place(self, items: list[Item], keys: list[str]) -> tuple[Placed, int | None]:
        """Items placed in order up to the first that finds no place (its index, or None when all did)."""
        placed: Placed = []
        for index, (item, key) in enumerate(zip(items, keys, strict=True)):
            placement = self.choose(item)
            if placement is None or not self.allocate(key, item.request, placement):
                return placed, index
            placed.append((key, item, placement))
        return placed, None

    def exact(self, items: list[Item], keys: list[str], slots: list[tuple[int, tuple[int, ...]]]) -> Placed | None:
        """Place items exactly on planned (node, GPUs) slots, all or nothing."""
        placed: Placed = []
        for item, key, (node, gpus) in zip(items, keys, slots, strict=True):
            if not self.filters.fits_row(item.request, self.static(item), node):
                self.rollback(placed)
                return None
            placement = self.state.placement_for(node, item.request, gpus)
            try:
                self.state.allocate(key, item.request, placement)
            except OvercommitError:
                self.rollback(placed)
                return None
            placed.append((key, item, placement))
        return placed

    def rollback(self, placed: Placed) -> None:
        for key, _, _ in reversed(placed):
            self.state.release(key)

    def failure(self, index: int, item: Item) -> Failure:
        fit, reasons = self.filters.reasons(item.request, item.selector, item.tolerations, item.constraints)
        return Failure(index, item, fit, reasons)

    def never_fits(self, items: list[Item]) -> Item | None:
        """The first item that no node could hold even empty, if any."""
        for item in items:
            if not self.filters.could_ever_fit(item.request, self.static(item)).any():
                return item
        return None

    # ---- holds ---------------------------------------------------------------------------
    def hold_unit(self, items: list[Item], prefix: str) -> list[str]:
        """Hold room for every item on the node closest to fitting it; returns the hold keys."""
        keys: list[str] = []
        for n, item in enumerate(items):
            node = self._closest_node(item)
            if node is None:
                continue
            gpus = self._free_gpus(node, item.request, None)
            key = self.hold(f"{prefix}/{n}", node, item.request, gpus)
            if key:
                keys.append(key)
        return keys

    def hold_slot(self, key: str, node: int, req: PodRequest, planned: tuple[int, ...]) -> str | None:
        """Hold the free part of a planned (node, GPUs) slot."""
        return self.hold(key, node, req, self._free_gpus(node, req, planned))

    def hold(self, key: str, node: int, req: PodRequest, gpus: tuple[tuple[int, int, int], ...]) -> str | None:
        """Allocate min(request, free) on `node`; `gpus` is ((slot, milli, memory), ...)."""
        s = self.state
        if s.pods_used[node] >= s.pods_cap[node]:
            return None
        cpu = int(max(0, min(req.cpu_milli, s.cpu_cap[node] - s.cpu_used[node])))
        mem = int(max(0, min(req.memory_mib, s.mem_cap[node] - s.mem_used[node])))
        slots = tuple(g for g, _, _ in gpus)
        milli = min((m for _, m, _ in gpus), default=0)
        gmem = min((m for _, _, m in gpus), default=0)
        if not cpu and not mem and not slots:
            return None
        hreq = PodRequest(cpu, mem, len(slots), milli if slots else 0, gmem if milli < MILLI_GPU else 0)
        try:
            s.allocate(key, hreq, s.placement_for(node, hreq, slots))
        except OvercommitError:
            return None
        return key

    def _free_gpus(self, node: int, req: PodRequest, planned: tuple[int, ...] | None
                   ) -> tuple[tuple[int, int, int], ...]:
        if not req.is_gpu:
            return ()
        s = self.state
        usable = self.filters.usable[node]
        used = s.gpu_milli_used[node]
        candidates = np.flatnonzero(usable) if planned is None else np.array(planned, dtype=np.int64)
        if req.is_fractional:
            best = [int(g) for g in candidates if usable[g] and used[g] < MILLI_GPU]
            if not best:
                return ()
            g = max(best, key=lambda x: (MILLI_GPU - int(used[x]), -x))
            memfree = int(s.gpu_mem_cap[node, g] - s.gpu_mem_used[node, g])
            return ((g, min(req.gpu_milli, MILLI_GPU - int(used[g])), max(0, min(req.gpu_memory_mib, memfree))),)
        free = [int(g) for g in candidates if usable[g] and used[g] == 0]
        return tuple((g, MILLI_GPU, 0) for g in free[: req.gpu_count])

    def _closest_node(self, item: Item) -> int | None:
        """The node that could hold the item and lacks the least of it now."""
        s = self.state
        req = item.request
        ever = self.filters.could_ever_fit(req, self.static(item))
        if not ever.any():
            return None
        deficit = np.maximum(0, req.cpu_milli - (s.cpu_cap - s.cpu_used)) / max(req.cpu_milli, 1)
        deficit = deficit + np.maximum(0, req.memory_mib - (s.mem_cap - s.mem_used)) / max(req.memory_mib, 1)
        if req.is_fractional:
            room = np.where(self.filters.usable, MILLI_GPU - s.gpu_milli_used, 0).max(axis=1)
            deficit = deficit + np.maximum(0, req.gpu_milli - room) / req.gpu_milli
        elif req.is_gpu:
            whole = np.count_nonzero(self.filters.usable & (s.gpu_milli_used == 0), axis=1)
            deficit = deficit + np.maximum(0, req.gpu_count - whole) / req.gpu_count
        deficit = deficit + (s.pods_used >= s.pods_cap)
        if item.pools:
            deficit = deficit + 0.01 * ~self.filters.pools(item.pools)
        return int(np.argmin(np.where(ever, deficit, np.inf)))
