"""What goes into a scheduling cycle and what comes out of it.

The Kubernetes backend and the simulator build a `Snapshot` from what they see,
call `Scheduler.cycle(snapshot, now)`, and act on the `CycleResult`: bind,
evict, publish explanations. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bigk.cluster.model import Gang, Node, Pod, PodRequest, Queue
from bigk.cluster.usage import Usage


@dataclass
class Snapshot:
    """The cluster as the caller sees it at one instant.

    `pods` holds bound pods (`node` set, `gpus` set for GPU pods) and pending pods
    (`node` empty) that bigk should place. Gang membership is `Pod.gang` (the
    Spark application id) and `Pod.role`; `gangs` maps that id to the gang's
    minimum, maximum, executor request, priority and queue, built by the caller
    from pod annotations (`bigk.cluster.labels`). A gang id missing from `gangs`
    is treated as a gang with no minimum (each pod placed when it fits).
    Queues missing from `queues` get weight 1 and no guarantee or maximum.
    """

    nodes: list[Node]
    pods: list[Pod]
    queues: dict[str, Queue] = field(default_factory=dict)
    gangs: dict[str, Gang] = field(default_factory=dict)


@dataclass(frozen=True)
class Bind:
    """Bind pod `pod_key` ("namespace/name") to `node`, using GPU indices `gpus`."""

    pod_key: str
    node: str
    gpus: tuple[int, ...] = ()


@dataclass(frozen=True)
class Eviction:
    """Evict `pod_key` so that `for_gang` can run; `reason` is one line for Events."""

    pod_key: str
    reason: str
    for_gang: str


@dataclass(frozen=True)
class ReservedSlot:
    """Room held on a node for an executor the driver has not created yet."""

    node: str
    gpus: tuple[int, ...]
    request: PodRequest
    expires_at: float


@dataclass
class Explanation:
    """Why a gang (or a lone pod, keyed by pod key) waits, structured and as one line.

    `state` is one of:
      - "unschedulable": it does not fit now and no preemption can help;
      - "never-fits": no node could hold one of its pods even when empty;
      - "queue-maximum": its queue would exceed its maximum;
      - "preempting": victims are being evicted for it;
      - "held": it is the head of the queue; room is being held for it;
      - "behind-head": a higher-ordered gang holds the room it would need.
    `reasons` counts, per reason, the nodes that cannot take the first pod that
    did not fit (`failing_request`).
    """

    gang: str
    queue: str
    priority: int
    state: str
    drivers: int  # 0 or 1: whether the driver still needs a place
    executors: int  # executors (min, still missing) that need a place
    executors_fit: int  # how many of those fit after the driver, in the trial
    gpus: int  # whole GPUs the waiting part asks for (fractions count as 1)
    gpu_models: tuple[str, ...] = ()
    nodes_total: int = 0
    nodes_fit: int = 0  # nodes where `failing_request` fits
    failing_request: PodRequest | None = None
    reasons: dict[str, int] = field(default_factory=dict)
    victims: int = 0  # pods being evicted for it (state "preempting")
    message: str = ""

    @property
    def reason(self) -> str:
        """The main reason, for counting: the commonest node reason if any, else the state."""
        if self.state in ("unschedulable", "never-fits", "held", "behind-head") and self.reasons:
            return max(self.reasons.items(), key=lambda kv: (kv[1], kv[0]))[0]
        return self.state


@dataclass(frozen=True)
class Admission:
    """A gang admitted whole this cycle, and how long it waited since its first pod appeared."""

    gang: str
    queue: str
    waited_s: float


@dataclass(frozen=True)
class QueueUsage:
    """What a queue (with its whole subtree) holds after the cycle: bound pods plus reservations.

    `usage` is CPU, memory and GPUs, the GPUs also split by GPU product
    (`Usage.gpu_by_model`); `dominant_share` is the largest of CPU, memory and GPUs as
    a fraction of the cluster (not divided by the weight).
    """

    usage: Usage
    dominant_share: float


@dataclass
class CycleResult:
    """Decisions of one cycle. Binds are in decision order; apply them in that order.

    The rest is what the rim counts and shows: gangs admitted (with their wait),
    reservations dropped because their executors never came, and every queue's
    usage (`queues`, for all declared queues and any queue a pod names) against
    the cluster `totals`.
    """

    binds: list[Bind] = field(default_factory=list)
    evictions: list[Eviction] = field(default_factory=list)
    reservations: dict[str, list[ReservedSlot]] = field(default_factory=dict)
    waiting: dict[str, Explanation] = field(default_factory=dict)
    admitted: list[Admission] = field(default_factory=list)
    reservations_expired: int = 0
    queues: dict[str, QueueUsage] = field(default_factory=dict)
    totals: tuple[int, int, int] = (0, 0, 0)
