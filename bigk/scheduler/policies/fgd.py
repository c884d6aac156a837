"""`fgd`: Fragmentation Gradient Descent (Weng et al., USENIX ATC '23), as in its artifact.

FGD places a pod where it increases the node's expected GPU fragmentation the
least (see `frag.py`): score = int(100 * sigmoid((frag_before - frag_after) /
1000)), and a GPU share goes to the GPU of that node with the best score (first
index on ties). Whole GPUs are the lowest-index free ones. The target workload
comes from `observe_workload` (the artifact uses the trace's pods); without it,
FGD learns the distribution from the requests it is asked to place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

from bigk.cluster.model import PodRequest
from bigk.cluster.state import ClusterState, Placement
from bigk.scheduler.policies._common import BasePolicy, whole_gpus_lowest
from bigk.scheduler.policies.base import register
from bigk.scheduler.policies.frag import FragModel, RowCache, Shape, shape_of, sigmoid, typical_pods

ONLINE_REFRESH = 64  # without an observed workload, rebuild the model at 64, 128, 256, ... requests
MAX_CACHED_SHAPES = 512

C = TypeVar("C")


def shape_cache(caches: dict[tuple[Shape, tuple[str, ...]], C], req: PodRequest, state: ClusterState,
                make: Callable[[], C]) -> C:
    """The cache of `req`'s shape on `state`'s GPU models in `caches`, made on first use.

    At MAX_CACHED_SHAPES shapes the caches start over rather than grow (unbounded shape variety).
    """
    key = (shape_of(req), tuple(state.models))
    cache = caches.get(key)
    if cache is None:
        if len(caches) >= MAX_CACHED_SHAPES:
            caches.clear()
        cache = caches[key] = make()
    return cache


class FragAwarePolicy(BasePolicy):
    """Shared machinery: a workload model and per-shape caches of per-node scores."""

    def __init__(self) -> None:
        super().__init__()
        self.model = FragModel([])
        self._observed = False
        self._online: list[PodRequest] = []
        self._caches: dict[tuple[Shape, tuple[str, ...]], RowCache] = {}

    def observe_workload(self, requests: list[PodRequest]) -> None:
        pods = typical_pods(requests)
        self._observed = True
        if pods != self.model.pods:  # same distribution: keep the score caches
            self.model = FragModel(pods)
            self._caches.clear()

    def _learn(self, req: PodRequest) -> None:
        if self._observed:
            return
        self._online.append(req)
        n = len(self._online)
        if self.model.empty or (n >= ONLINE_REFRESH and n & (n - 1) == 0):  # at 64, 128, 256, ... requests
            self.model = FragModel(typical_pods(self._online))
            self._caches.clear()

    def _cache(self, req: PodRequest, state: ClusterState) -> RowCache:
        return shape_cache(self._caches, req, state, RowCache)


@register("fgd")
class FgdPolicy(FragAwarePolicy):
    """Least expected fragmentation growth first (integer scores, as the artifact)."""

    name = "fgd"

    def scores(self, state: ClusterState, req: PodRequest) -> np.ndarray:
        """Integer FGD score per node (N,), or per node and GPU (N, G) for a GPU share."""
        cpu_left, left = state.cpu_free, state.gpu_milli_free

        def compute(rows: np.ndarray) -> np.ndarray:
            before, after = self.model.frag_after(req, cpu_left[rows], left[rows], state.gpu_model[rows],
                                                  state.models)
            delta = (before[:, None] - after) if after.ndim == 2 else before - after
            return np.trunc(sigmoid(delta / 1000.0) * 100.0)

        return self._cache(req, state).get([cpu_left, left, state.gpu_model], compute)

    def select(self, state: ClusterState, req: PodRequest, feasible: np.ndarray,
               now: float | None = None) -> Placement | None:
        self._learn(req)
        scores = self.scores(state, req)
        if req.is_fractional:
            fit = state.gpu_slot_fit(req, now)
            per_gpu = np.where(fit, scores, -1.0)
            node = self.chooser.best(per_gpu.max(axis=1), feasible & fit.any(axis=1))
            if node is None:
                return None
            return state.placement_for(node, req, (int(np.argmax(per_gpu[node])),))
        node = self.chooser.best(scores, feasible)
        if node is None:
            return None
        gpus = whole_gpus_lowest(state, node, req, now) if req.is_gpu else ()
        return None if gpus is None else state.placement_for(node, req, gpus)
