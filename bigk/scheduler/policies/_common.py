"""Shared helpers for placement policies: choosing the best node and its GPUs.

Every policy scores all nodes at once (numpy) and picks the highest score among
the feasible ones. Ties go to the lowest node index, so decisions are
deterministic for a given state.
"""

from __future__ import annotations

import numpy as np

from bigk.cluster.model import MILLI_GPU, PodRequest
from bigk.cluster.state import ClusterState, Placement

# Normalisation constants of the FGD artifact (a large node: 128 vCPU, 8 GPUs).
MAX_SPEC_CPU_MILLI = 128_000
MAX_SPEC_GPU_MILLI = 8 * MILLI_GPU


class Chooser:
    """Picks the best feasible node, the lowest index on ties.

    This is also what the FGD artifact does: its kube-scheduler fork picks the
    lexicographically smallest node name among ties, and it prefixes node names
    with a seeded permutation, so ties go to the first node in a shuffled order.
    """

    def best(self, scores: np.ndarray, feasible: np.ndarray) -> int | None:
        """Index of the highest-scoring feasible node, or None when none is feasible."""
        if not feasible.any():
            return None
        return int(np.argmax(np.where(feasible, scores.astype(np.float64), -np.inf)))


class BasePolicy:
    """Base for policies: a name, a chooser, and no workload model by default."""

    name = ""

    def __init__(self) -> None:
        self.chooser = Chooser()

    def observe_workload(self, requests: list[PodRequest]) -> None:
        """Most policies need no workload model."""


class ScoredPolicy(BasePolicy):
    """A policy that scores every node at once and places the pod on the best feasible one.

    A subclass gives `scores` (per node, higher is better) and, unless the
    artifact's best-fit GPU choice (`place_best_fit_gpu`) is its rule, `place`.
    """

    def scores(self, state: ClusterState, req: PodRequest, now: float | None) -> np.ndarray:
        raise NotImplementedError

    def place(self, state: ClusterState, req: PodRequest, node: int | None, now: float | None) -> Placement | None:
        return place_best_fit_gpu(state, req, node, now)

    def select(self, state: ClusterState, req: PodRequest, feasible: np.ndarray,
               now: float | None = None) -> Placement | None:
        return self.place(state, req, self.chooser.best(self.scores(state, req, now), feasible), now)


_CHOOSER = Chooser()


def best_node(scores: np.ndarray, feasible: np.ndarray) -> int | None:
    """Index of the highest-scoring feasible node (lowest index on ties), or None."""
    return _CHOOSER.best(scores, feasible)


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


def whole_gpus_lowest(state: ClusterState, node: int, req: PodRequest, now: float | None) -> tuple[int, ...] | None:
    """The lowest-index fitting GPUs (the artifact's exclusive GPU choice)."""
    slots = np.flatnonzero(state.gpu_slot_fit(req, now)[node])
    if len(slots) < req.gpu_count:
        return None
    return tuple(int(s) for s in slots[: req.gpu_count])


def fraction_best_fit(state: ClusterState, node: int, req: PodRequest, now: float | None) -> int | None:
    """The fitting GPU with the least room left (lowest index on ties)."""
    fit = state.gpu_slot_fit(req, now)[node]
    if not fit.any():
        return None
    room = np.where(fit, MILLI_GPU - state.gpu_milli_used[node], MILLI_GPU + 1)
    return int(np.argmin(room))


def place_best_fit_gpu(state: ClusterState, req: PodRequest, node: int | None,
                       now: float | None) -> Placement | None:
    """Placement on `node` with the artifact's default GPU choice ("best")."""
    if node is None:
        return None
    if req.is_fractional:
        gpu = fraction_best_fit(state, node, req, now)
        return None if gpu is None else state.placement_for(node, req, (gpu,))
    gpus = whole_gpus_lowest(state, node, req, now) if req.is_gpu else ()
    return None if gpus is None else state.placement_for(node, req, gpus)
