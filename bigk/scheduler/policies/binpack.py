"""`binpack`: kube-scheduler's MostAllocated scoring.

Each node scores the mean, over resources, of the fraction in use after placing
the pod; the fullest node that still fits wins, which keeps whole nodes empty
for large pods.
"""

from __future__ import annotations

import numpy as np

from bigk.cluster.model import PodRequest
from bigk.cluster.state import ClusterState, Placement
from bigk.scheduler.policies._common import BasePolicy, place_default
from bigk.scheduler.policies.base import register
from bigk.scheduler.policies.spread import allocated_fractions


@register("binpack")
class BinpackPolicy(BasePolicy):
    """Most allocated first; a fractional pod takes the fullest GPU it fits on."""

    name = "binpack"

    def select(self, state: ClusterState, req: PodRequest, feasible: np.ndarray,
               now: float | None = None) -> Placement | None:
        node = self.chooser.best(allocated_fractions(state, req, now), feasible)
        return place_default(state, req, node, now)

