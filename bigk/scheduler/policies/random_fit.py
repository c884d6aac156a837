"""`random`: the Random-fit baseline of the FGD paper.

Any feasible node, uniformly at random; a fractional pod takes a uniformly
random GPU among those it fits on, whole-GPU pods the lowest-index free GPUs.
The generator is seeded (constructor or `seed()`), so runs are repeatable.
"""

from __future__ import annotations

import numpy as np

from bigk.cluster.model import PodRequest
from bigk.cluster.state import ClusterState, Placement
from bigk.scheduler.policies._common import BasePolicy, whole_gpus_lowest
from bigk.scheduler.policies.base import register


@register("random")
class RandomPolicy(BasePolicy):
    """Uniformly random feasible node and GPU."""

    name = "random"

    def __init__(self, seed: int | None = 0) -> None:
        super().__init__()
        self.rng = np.random.default_rng(seed)

    def seed(self, seed: int | None) -> None:
        """Restart the generator from `seed` (the simulator seeds one per run)."""
        self.rng = np.random.default_rng(seed)

    def select(self, state: ClusterState, req: PodRequest, feasible: np.ndarray,
               now: float | None = None) -> Placement | None:
        nodes = np.flatnonzero(feasible)
        if len(nodes) == 0:
            return None
        node = int(nodes[self.rng.integers(len(nodes))])
        if req.is_fractional:
            slots = np.flatnonzero(state.gpu_slot_fit(req, now)[node])
            if len(slots) == 0:
                return None
            return state.placement_for(node, req, (int(slots[self.rng.integers(len(slots))]),))
        gpus = whole_gpus_lowest(state, node, req, now) if req.is_gpu else ()
        return None if gpus is None else state.placement_for(node, req, gpus)
