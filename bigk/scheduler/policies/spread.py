"""`spread`: kube-scheduler's LeastAllocated scoring.

Each node scores the mean, over resources, of the fraction that would stay free
after placing the pod (CPU and memory; GPUs too for GPU pods). The emptiest node
wins, which spreads load and keeps blast radius small at the cost of packing.
"""

from __future__ import annotations

import numpy as np

from bigk.cluster.model import MILLI_GPU, PodRequest
from bigk.cluster.state import ClusterState, Placement
from bigk.scheduler.policies._common import BasePolicy, gpu_cap_total, gpu_free_total, ratio
from bigk.scheduler.policies.base import register


def allocated_fractions(state: ClusterState, req: PodRequest, now: float | None) -> np.ndarray:
    """Per node, the mean fraction of each resource in use after placing `req`."""
    cpu = ratio(state.cpu_used + req.cpu_milli, state.cpu_cap)
    mem = ratio(state.mem_used + req.memory_mib, state.mem_cap)
    parts = [cpu, mem]
    if req.is_gpu:
        cap = gpu_cap_total(state)
        used = cap - gpu_free_total(state, now)
        parts.append(ratio(used + req.total_gpu_milli, cap))
    return np.mean(np.vstack(parts), axis=0)


@register("spread")
class SpreadPolicy(BasePolicy):
    """Least allocated first; a fractional pod takes the emptiest fitting GPU."""

    name = "spread"

    def select(self, state: ClusterState, req: PodRequest, feasible: np.ndarray,
               now: float | None = None) -> Placement | None:
        node = self.chooser.best(-allocated_fractions(state, req, now), feasible)
        if node is None:
            return None
        if req.is_fractional:
            fit = state.gpu_slot_fit(req, now)[node]
            room = np.where(fit, MILLI_GPU - state.gpu_milli_used[node], -1)
            return state.placement_for(node, req, (int(np.argmax(room)),))
        gpus = state.default_gpus(node, req, now)
        return None if gpus is None else state.placement_for(node, req, gpus)

