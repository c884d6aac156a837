"""`gpuclustering`: the GPU-Clustering baseline of the FGD paper's artifact.

Pods are tagged by GPU shape (a GPU share, or 1/2/4/8 whole GPUs). A pod prefers
a node hosting only its own tag, then a node hosting its tag among others, then
an idle node, then any other node; within each band, nodes with less free GPU
rank higher. CPU-only pods score 0 everywhere. Integer scores as in the
artifact; best-fit GPU choice.

The tags on each node come from `ClusterState.allocations`, tracked
incrementally (new allocations are appended to that dict), so a decision does
not rescan every bound pod.
"""

from __future__ import annotations

import numpy as np

from bigk.cluster.model import PodRequest
from bigk.cluster.state import ClusterState, Placement
from bigk.scheduler.policies._common import MAX_SPEC_GPU_MILLI, BasePolicy, gpu_free_total, place_best_fit_gpu
from bigk.scheduler.policies.base import register

_TAGS = ("share", "1", "2", "4", "8", "other")


def gpu_tag(req: PodRequest) -> int:
    """Index of a GPU pod's affinity tag in `_TAGS` (-1 for CPU-only pods)."""
    if not req.is_gpu:
        return -1
    if req.is_fractional:
        return 0
    return {1: 1, 2: 2, 4: 3, 8: 4}.get(req.gpu_count, 5)


class NodeTagCounts:
    """Per node, how many bound pods carry each GPU tag; follows a ClusterState incrementally."""

    def __init__(self) -> None:
        self._state_id = -1
        self._seen: dict[str, tuple[PodRequest, Placement]] = {}
        self.counts = np.zeros((0, len(_TAGS)), dtype=np.int64)

    def sync(self, state: ClusterState) -> np.ndarray:
        if id(state) != self._state_id or len(self.counts) != state.size:
            self._reset(state)
        allocs = state.allocations
        for key in reversed(allocs):
            req, placement = allocs[key]
            seen = self._seen.get(key)
            if seen is not None and seen[1] is placement:
                break
            self._add(key, req, placement)
        if len(self._seen) != len(allocs):  # something was released: rebuild
            self._reset(state)
            for key, (req, placement) in allocs.items():
                self._add(key, req, placement)
        return self.counts

    def _reset(self, state: ClusterState) -> None:
        self._state_id = id(state)
        self._seen = {}
        self.counts = np.zeros((state.size, len(_TAGS)), dtype=np.int64)

    def _add(self, key: str, req: PodRequest, placement: Placement) -> None:
        old = self._seen.get(key)
        if old is not None and gpu_tag(old[0]) >= 0:  # released and placed again under the same key
            self.counts[old[1].node, gpu_tag(old[0])] -= 1
        self._seen[key] = (req, placement)
        tag = gpu_tag(req)
        if tag >= 0:
            self.counts[placement.node, tag] += 1


def clustering_scores(state: ClusterState, req: PodRequest, counts: np.ndarray,
                      now: float | None) -> np.ndarray:
    """Integer clustering score per node."""
    tag = gpu_tag(req)
    if tag < 0:
        return np.zeros(state.size)
    base = (100 // 4) * (MAX_SPEC_GPU_MILLI - gpu_free_total(state, now)) // MAX_SPEC_GPU_MILLI
    present = counts > 0
    kinds = present.sum(axis=1)
    mine = present[:, tag]
    band = np.where(mine, np.where(kinds == 1, 3, 2), np.where(kinds == 0, 1, 0))
    return (base + band * (100 // 4)).astype(np.float64)


@register("gpuclustering")
class GpuClusteringPolicy(BasePolicy):
    """Keep pods of the same GPU shape together."""

    name = "gpuclustering"

    def __init__(self) -> None:
        super().__init__()
        self.tags = NodeTagCounts()

    def observe_workload(self, requests: list[PodRequest]) -> None:
        """A new workload usually means a new cluster state: forget tracked tags."""
        self.tags = NodeTagCounts()

    def select(self, state: ClusterState, req: PodRequest, feasible: np.ndarray,
               now: float | None = None) -> Placement | None:
        counts = self.tags.sync(state)
        node = self.chooser.best(clustering_scores(state, req, counts, now), feasible)
        return place_best_fit_gpu(state, req, node, now)

