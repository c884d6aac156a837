"""`bestfit`: the Best-Fit baseline of the FGD paper's artifact.

Score = 1 - [0.5 (free CPU - request)/128 vCPU + 0.5 (free GPU - request)/8 GPUs],
scaled to 0..100 and truncated to an integer as the artifact does (so nearly
equal nodes tie, and ties go to node order). The node left with the least room
wins; a fractional pod takes the fitting GPU with the least room left.
"""

from __future__ import annotations

import numpy as np

from bigk.cluster.model import PodRequest
from bigk.cluster.state import ClusterState
from bigk.scheduler.policies._common import MAX_SPEC_CPU_MILLI, MAX_SPEC_GPU_MILLI, ScoredPolicy, gpu_free_total
from bigk.scheduler.policies.base import register


def bestfit_scores(state: ClusterState, req: PodRequest, now: float | None) -> np.ndarray:
    """Artifact best-fit score per node, 0..100 integers, higher = tighter fit."""
    cpu_left = (state.cpu_free - req.cpu_milli) / MAX_SPEC_CPU_MILLI
    gpu_left = (gpu_free_total(state, now) - req.total_gpu_milli) / MAX_SPEC_GPU_MILLI
    return np.trunc((1.0 - (0.5 * cpu_left + 0.5 * gpu_left)) * 100.0)


@register("bestfit")
class BestFitPolicy(ScoredPolicy):
    """Least leftover (CPU and GPU, normalised) first."""

    name = "bestfit"
    scores = staticmethod(bestfit_scores)

