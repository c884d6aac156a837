"""Shared helpers for placement policies: choosing the best node and its GPUs.

Every policy scores all nodes at once (numpy) and picks the highest score among
the feasible ones; ties go to the lowest node index so that decisions are
deterministic for a given state (the simulator shuffles node order per seed).
"""

from __future__ import annotations

import numpy as np

from bigk.cluster.model import MILLI_GPU, PodRequest
from bigk.cluster.state import ClusterState, Placement

# Normalisation constants of the FGD artifact (a large node: 128 vCPU, 8 GPUs).
MAX_SPEC_CPU_MILLI = 128_000
MAX_SPEC_GPU_MILLI = 8 * MILLI_GPU


def best_node(scores: np.ndarray, feasible: np.ndarray) -> int | None:
    """Index of the highest-scoring feasible node (lowest index on ties), or None."""
    if not feasible.any():
        return None
    masked = np.where(feasible, scores.astype(np.float64), -np.inf)
    return int(np.argmax(masked))


def place_default(state: ClusterState, req: PodRequest, node: int | None,
                  now: float | None) -> Placement | None:
    """A placement on `node` with the state's default GPU choice."""
    if node is None:
        return None
    gpus = state.default_gpus(node, req, now)
    if gpus is None:
        return None
    return state.placement_for(node, req, gpus)


def gpu_free_total(state: ClusterState, now: float | None = None) -> np.ndarray:
    """Free milli-GPU per node, summed over usable GPUs."""
    free = np.where(state.usable_gpus(now), state.gpu_milli_free, 0)
    return free.sum(axis=1)


def gpu_cap_total(state: ClusterState) -> np.ndarray:
    """milli-GPU capacity per node."""
    return state.gpu_count * MILLI_GPU


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den is 0 (nodes without a resource)."""
    den_f = den.astype(np.float64)
    return np.divide(num.astype(np.float64), den_f, out=np.zeros(len(den_f)), where=den_f > 0)
