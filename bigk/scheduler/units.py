"""Turning a snapshot's pods into units of scheduling work.

A unit is what the queue orders and what is placed all-or-nothing:
  - an *admission*: a gang whose driver is pending, with the executors of its
    minimum (pods already created, plus "phantom" executors not created yet,
    whose places become reservations);
  - a *top-up*: executors still missing from the minimum of an admitted gang
    whose reservation was lost (placed as far as they fit);
  - a lone pod (not in a gang, or in a gang bigk knows nothing about).
Executors above the minimum are *extras*, placed after all units when room
is left, and never with preemption.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from bigk.cluster.affinity import REASON_NODE_AFFINITY, PodConstraints
from bigk.cluster.model import Gang, Pod, PodRequest, Role, Toleration
from bigk.cluster.state import ClusterState

RESOURCES = ("cpu", "memory", "gpu")


@dataclass(frozen=True)
class Item:
    """One thing to place: a pending pod, or a phantom executor (pod is None)."""

    request: PodRequest
    selector: dict[str, str]
    tolerations: tuple[Toleration, ...]
    pools: tuple[str, ...]
    pod: Pod | None = None
    constraints: PodConstraints | None = None  # node affinity, volume topology, refusals

    @cached_property
    def shape(self) -> tuple[object, ...]:  # cached: compared many times per cycle; the item is frozen
        return (self.request, tuple(sorted(self.selector.items())), self.tolerations, self.pools, self.constraints)


@dataclass
class Unit:
    """A gang admission, a top-up or a lone pod, as ordered by the queue."""

    name: str  # gang id, or pod key for a lone pod
    gang: str  # "" for a lone pod
    queue: str
    priority: int
    created_at: float
    items: list[Item]
    all_or_nothing: bool
    driver_pending: bool = False
    phantoms: int = 0

    @property
    def executors(self) -> int:
        return sum(1 for it in self.items if it.pod is None or it.pod.role is Role.EXECUTOR)

    def need(self) -> tuple[int, int, int]:
        cpu = sum(it.request.cpu_milli for it in self.items)
        mem = sum(it.request.memory_mib for it in self.items)
        gpu = sum(it.request.total_gpu_milli for it in self.items)
        return cpu, mem, gpu


@dataclass
class GangView:
    """Everything the snapshot says about one gang."""

    gang: str
    info: Gang | None
    driver: Pod | None = None
    bound: list[Pod] = field(default_factory=list)
    pending: list[Pod] = field(default_factory=list)

    @property
    def bound_executors(self) -> list[Pod]:
        return [p for p in self.bound if p.role is Role.EXECUTOR]

    @property
    def pending_executors(self) -> list[Pod]:
        return [p for p in self.pending if p.role is Role.EXECUTOR]

    @property
    def queue(self) -> str:
        return self.info.queue if self.info is not None else self._first_pod().queue

    @property
    def priority(self) -> int:
        return self.info.priority if self.info is not None else self._first_pod().priority

    def _first_pod(self) -> Pod:
        """Where the queue and priority come from without a gang info: the driver, else the first pod seen."""
        return self.driver or (self.bound + self.pending)[0]


def group_gangs(pods: Iterable[Pod], gangs: dict[str, Gang]) -> tuple[dict[str, GangView], list[Pod], list[Pod]]:
    """Split pods into gang views, bound pods and lone pending pods (in input order)."""
    views: dict[str, GangView] = {}
    bound: list[Pod] = []
    lone: list[Pod] = []
    for pod in pods:
        if pod.node:
            bound.append(pod)
        if not pod.gang:
            if not pod.node:
                lone.append(pod)
            continue
        view = views.get(pod.gang)
        if view is None:
            view = views[pod.gang] = GangView(pod.gang, gangs.get(pod.gang))
        if pod.role is Role.DRIVER:
            view.driver = pod
        (view.bound if pod.node else view.pending).append(pod)
    return views, bound, lone


def pod_item(pod: Pod) -> Item:
    return Item(pod.request, pod.node_selector, tuple(pod.tolerations), tuple(pod.preferred_pools), pod,
                pod.constraints)


def phantom_item(view: GangView) -> Item:
    """A not-yet-created executor, constrained like the gang's executors."""
    info = view.info
    assert info is not None
    like = next(iter(view.pending_executors + view.bound_executors), None)
    if like is not None:
        return Item(info.executor, like.node_selector, tuple(like.tolerations), tuple(like.preferred_pools),
                    constraints=_node_constraints(like.constraints))
    return Item(info.executor, info.node_selector, tuple(info.tolerations), tuple(info.preferred_pools))


def _node_constraints(constraints: PodConstraints | None) -> PodConstraints | None:
    """What a not-yet-created executor shares with one that exists: node affinity, not volumes or refusals."""
    if constraints is None:
        return None
    mine = tuple(c for c in constraints.clauses if c.reason == REASON_NODE_AFFINITY)
    return PodConstraints(mine) if mine else None


def lone_unit(pod: Pod, gang: str = "", queue: str | None = None, priority: int | None = None) -> Unit:
    return Unit(pod.key, gang, queue if queue is not None else pod.queue,
                pod.priority if priority is None else priority, pod.created_at, [pod_item(pod)], True)


def usage_of(req: PodRequest) -> tuple[int, int, int]:
    return req.cpu_milli, req.memory_mib, req.total_gpu_milli


def extras_first(executors: list[Pod], minimum: int) -> list[Pod]:
    """The bound executors above the gang minimum: the newest ones."""
    ordered = sorted(executors, key=lambda p: (p.created_at, p.name))
    return ordered[minimum:][::-1]


def cluster_totals(state: ClusterState) -> tuple[int, int, int]:
    return int(state.cpu_cap.sum()), int(state.mem_cap.sum()), int(state.gpu_count.sum()) * 1000
