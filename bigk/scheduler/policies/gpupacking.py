"""`gpupacking`: the GPU-Packing baseline of the FGD paper's artifact.

Prefer, in this order: sharing an already used GPU (the fuller the better),
then free GPUs on a node that is already in use (fewer fresh GPUs better),
then an entirely free node (fewer GPUs better). CPU-only pods score 0
everywhere. Integer scores as in the artifact; best-fit GPU choice.
"""

from __future__ import annotations

import numpy as np

from bigk.cluster.model import MILLI_GPU, PodRequest
from bigk.cluster.state import ClusterState
from bigk.scheduler.policies._common import ScoredPolicy
from bigk.scheduler.policies.base import register


def packing_scores(state: ClusterState, req: PodRequest, now: float | None) -> np.ndarray:
    """Integer packing score per node (higher = better packed)."""
    n = state.size
    if not req.is_gpu:
        return np.zeros(n)
    left = np.where(state.usable_gpus(now), state.gpu_milli_free, 0)
    fully_free = ((left == MILLI_GPU) & state.gpu_present).sum(axis=1)
    free_node = fully_free == state.gpu_count
    case3 = np.maximum(100 // 3 - fully_free, fully_free)
    if req.is_fractional:
        fits = state.gpu_slot_fit(req, now)
        tightest = np.where(fits, left, MILLI_GPU + 1).min(axis=1)
        uses_fresh = tightest >= MILLI_GPU
        shared = np.maximum(100 - (tightest * 100 // MILLI_GPU) // 10, 100 // 2)
        partial = np.where(uses_fresh, np.maximum(100 // 2 - 1, 100 // 3), shared)
    else:
        partial = np.full(n, max(100 // 2 - req.gpu_count, 100 // 3))
    return np.where(free_node, case3, partial).astype(np.float64)


@register("gpupacking")
class GpuPackingPolicy(ScoredPolicy):
    """Shared GPUs first, then used nodes, then empty nodes."""

    name = "gpupacking"
    scores = staticmethod(packing_scores)
