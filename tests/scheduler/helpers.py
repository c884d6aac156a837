"""Small builders for scheduler tests: nodes, pods, gangs and a cycle driver that applies decisions."""

from __future__ import annotations

from dataclasses import replace

from bigk.cluster.model import GPU_MODEL_LABEL, POOL_LABEL, Gang, Gpu, Node, Pod, PodRequest, Role, Taint, Toleration
from bigk.scheduler import CycleResult, Scheduler, Snapshot

GPU_TOL = [Toleration("nvidia.com/gpu", operator="Exists")]


def gpu_node(name: str, gpus: int = 8, model: str = "A100", cpu: int = 64_000, mem: int = 512_000,
             gpu_mem: int = 81_920, pool: str = "gpu", taint: bool = False) -> Node:
    return Node(name, cpu, mem, 110, [Gpu(i, model, gpu_mem, f"{name}-gpu{i}") for i in range(gpus)],
                {POOL_LABEL: pool, GPU_MODEL_LABEL: model},
                [Taint("nvidia.com/gpu", "present")] if taint else [])


def cpu_node(name: str, cpu: int = 32_000, mem: int = 128_000, pool: str = "cpu") -> Node:
    return Node(name, cpu, mem, 110, [], {POOL_LABEL: pool})


def pod(name: str, cpu: int = 1000, mem: int = 1024, gpus: int = 0, milli: int = 0, gpu_mem: int = 0,
        models: frozenset[str] = frozenset(), on: str = "", slots: tuple[int, ...] = (), **kw: object) -> Pod:
    """A pod; `on`/`slots` make it already bound to a node and GPU indices."""
    if gpus and not milli:
        milli = 1000
    return Pod(name, PodRequest(cpu, mem, gpus, milli, gpu_mem, models), node=on, gpus=slots,
               **kw)  # type: ignore[arg-type]


def gang(app: str, executors: int, *, queue: str = "default", priority: int = 0, created_at: float = 0.0,
         executor: PodRequest | None = None, driver: PodRequest | None = None,
         tolerations: list[Toleration] | None = None) -> tuple[Gang, Pod]:
    """A gang with minimum `executors` and its pending driver pod."""
    drv = driver or PodRequest(1000, 2048)
    exe = executor or PodRequest(4000, 8192, 1, 1000)
    info = Gang(app, queue, priority, drv, exe, executors, created_at=created_at, tolerations=tolerations or [])
    d = Pod(f"{app}-driver", drv, queue=queue, priority=priority, gang=app, role=Role.DRIVER,
            created_at=created_at, tolerations=tolerations or [])
    return info, d


def executor_pods(info: Gang, count: int, start: int = 1, created_at: float = 0.0) -> list[Pod]:
    return [Pod(f"{info.name}-exec-{i}", info.executor, queue=info.queue, priority=info.priority, gang=info.name,
                role=Role.EXECUTOR, created_at=created_at, tolerations=list(info.tolerations))
            for i in range(start, start + count)]


class World:
    """A tiny stand-in for the cluster: applies binds and evictions between cycles."""

    def __init__(self, nodes: list[Node], policy: str = "binpack", reservation_ttl_s: float = 300.0,
                 stale_after_s: float = 60.0) -> None:
        self.nodes = nodes
        self.pods: dict[str, Pod] = {}
        self.gangs: dict[str, Gang] = {}
        self.queues: dict = {}
        self.sched = Scheduler(policy, reservation_ttl_s=reservation_ttl_s, stale_after_s=stale_after_s)

    def add(self, *pods: Pod) -> None:
        for p in pods:
            self.pods[p.key] = p

    def add_gang(self, info: Gang, driver: Pod) -> None:
        self.gangs[info.name] = info
        self.add(driver)

    def snapshot(self) -> Snapshot:
        return Snapshot(self.nodes, list(self.pods.values()), self.queues, self.gangs)

    def cycle(self, now: float = 0.0, evict: bool = True) -> CycleResult:
        result = self.sched.cycle(self.snapshot(), now)
        for b in result.binds:
            self.pods[b.pod_key] = replace(self.pods[b.pod_key], node=b.node, gpus=b.gpus)
        if evict:
            for e in result.evictions:
                self.pods.pop(e.pod_key, None)
        return result

    def bound(self) -> list[Pod]:
        return [p for p in self.pods.values() if p.node]
