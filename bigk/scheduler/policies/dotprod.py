"""`dotprod`: the Dot-Product (Tetris) baseline of the FGD paper's artifact.

Free node resources and the pod's request, each as a (CPU, GPU) vector scaled
by a large node (128 vCPU, 8 GPUs); the node whose free vector has the
smallest dot product with the request wins (it is the most "used up" in the
pod's dimensions). Scores are integers 0..100 as in the artifact; fractional
pods take the fitting GPU with the least room left.
"""

from __future__ import annotations

import numpy as np

from bigk.cluster.model import PodRequest
from bigk.cluster.state import ClusterState
from bigk.scheduler.policies._common import MAX_SPEC_CPU_MILLI, MAX_SPEC_GPU_MILLI, ScoredPolicy, gpu_free_total
from bigk.scheduler.policies.base import register


def dotprod_scores(state: ClusterState, req: PodRequest, now: float | None) -> np.ndarray:
    """Integer score per node: 100 * (1 - dot(free, request) / 2)."""
    cpu = (state.cpu_free / MAX_SPEC_CPU_MILLI) * (req.cpu_milli / MAX_SPEC_CPU_MILLI)
    gpu = (gpu_free_total(state, now) / MAX_SPEC_GPU_MILLI) * (req.total_gpu_milli / MAX_SPEC_GPU_MILLI)
    return np.trunc(100.0 * (1.0 - (cpu + gpu) / 2.0))


@register("dotprod")
class DotProductPolicy(ScoredPolicy):
    """Smallest dot product of free resources and request first."""

    name = "dotprod"
    scores = staticmethod(dotprod_scores)
