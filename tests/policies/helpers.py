"""Tiny clusters for policy tests."""

from __future__ import annotations

from bigk.cluster.model import Gpu, Node, PodRequest
from bigk.cluster.state import ClusterState


def gpu_node(name: str, gpus: int = 4, cpu: int = 32_000, mem: int = 256_000, model: str = "T4") -> Node:
    return Node(name, cpu, mem, gpus=[Gpu(i, model, 16_000) for i in range(gpus)])


def cpu_node(name: str, cpu: int = 32_000, mem: int = 256_000) -> Node:
    return Node(name, cpu, mem)


def put(state: ClusterState, key: str, req: PodRequest, node: int, gpus: tuple[int, ...] = ()) -> None:
    state.allocate(key, req, state.placement_for(node, req, gpus))


WHOLE = PodRequest(4_000, 8_000, gpu_count=1, gpu_milli=1000)
HALF = PodRequest(2_000, 4_000, gpu_count=1, gpu_milli=500)
CPU_ONLY = PodRequest(4_000, 8_000)
