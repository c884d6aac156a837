"""What the scheduler remembers between cycles, and nothing else.

Executor reservations of admitted gangs (with their expiry), preemption plans,
evictions in flight, the gangs this scheduler admitted, and the incrementally
maintained `ClusterState` (through `StateSync`). Losing all of it (a restart, a
new leader) is safe: the next cycle rebuilds the state from the snapshot and
reserves again for running gangs.
"""

from __future__ import annotations

from dataclasses import dataclass

from bigk.cluster.model import Pod, PodRequest
from bigk.cluster.state import ClusterState
from bigk.scheduler.queueing import UnitOrder
from bigk.scheduler.sync import StateSync
from bigk.scheduler.types import ReservedSlot
from bigk.scheduler.units import GangView, Item, Unit, lone_unit


@dataclass
class Reservation:
    """Room held for one executor a gang's driver has not created yet."""

    key: str  # allocation key in the state, "~res/<gang>/<n>"
    gang: str
    item: Item  # the phantom executor it stands for
    slot: ReservedSlot
    queue: str


@dataclass
class Plan:
    """A preemptor's intended places, held while its victims terminate."""

    slots: list[tuple[str, tuple[int, ...]]]  # (node name, GPU indices) per item: names survive a rebuild
    requests: list[PodRequest]
    victims: set[str]
    expires_at: float


class Memory:
    """The scheduler's state across cycles."""

    def __init__(self) -> None:
        self.sync = StateSync()
        self.reservations: dict[str, list[Reservation]] = {}
        self.plans: dict[str, Plan] = {}
        self.evicting: dict[str, tuple[str, float]] = {}  # pod key -> (for whom, when)
        self.admitted: dict[str, float] = {}  # gangs admitted by this scheduler, and when
        self.displaced: list[Reservation] = []  # knocked out of the state; re-placed this cycle
        self._seq = 0
        self._lone: dict[str, tuple[Pod, Unit]] = {}  # pod key -> (pod object, its unit)
        # Kept across cycles with the retry filter (`Cycle.refresh_units`): every waiting unit by name, in
        # queue order; per gang, the names of its units and its extra executors; gangs to build again.
        self.units: dict[str, Unit] = {}
        self.order = UnitOrder()
        self.gang_units: dict[str, list[str]] = {}
        self.gang_extras: dict[str, list[tuple[GangView, Pod]]] = {}
        self.touched: set[str] = set()

    def lone_units(self, pods: list[Pod]) -> list[Unit]:
        """The units of lone pending pods, the same `Unit` object for the same pod object from one cycle to
        the next (snapshots reuse unchanged pods), so that a backlog of lone pods is not rebuilt every cycle
        and a parked unit is recognised unchanged by identity."""
        have = self._lone
        fresh: dict[str, tuple[Pod, Unit]] = {}
        out = []
        for pod in pods:
            cached = have.get(pod.key)
            if cached is None or cached[0] is not pod:
                cached = (pod, lone_unit(pod))
            fresh[pod.key] = cached
            out.append(cached[1])
        self._lone = fresh
        return out

    def lone_unit(self, pod: Pod) -> Unit:
        """The unit of one lone pending pod: the same `Unit` as long as the pod object is the same."""
        cached = self._lone.get(pod.key)
        if cached is None or cached[0] is not pod:
            cached = self._lone[pod.key] = (pod, lone_unit(pod))
        return cached[1]

    def forget_lone(self, key: str) -> None:
        self._lone.pop(key, None)

    def next_key(self, kind: str, name: str) -> str:
        self._seq += 1
        return f"~{kind}/{name}/{self._seq}"

    def make_room(self, state: ClusterState, node: int) -> list[str]:
        """Release reservations on `node` so a pod bound by someone else can be accounted."""
        freed = []
        for rs in self.reservations.values():
            for r in rs:
                entry = state.allocations.get(r.key)
                if entry is not None and entry.placement.node == node:
                    state.release(r.key)
                    self.displaced.append(r)
                    freed.append(r.key)
        return freed

    def reservation_slots(self) -> dict[str, list[ReservedSlot]]:
        return {g: [r.slot for r in rs] for g, rs in self.reservations.items() if rs}
