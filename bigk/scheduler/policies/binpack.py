"""`binpack`: kube-scheduler's MostAllocated scoring.

Each node scores the mean, over resources, of the fraction in use after placing
the pod; the fullest node that still fits wins, which keeps whole nodes empty
for large pods.
"""

from __future__ import annotations

from bigk.scheduler.policies._common import ScoredPolicy, place_default
from bigk.scheduler.policies.base import register
from bigk.scheduler.policies.spread import allocated_fractions


@register("binpack")
class BinpackPolicy(ScoredPolicy):
    """Most allocated first; a fractional pod takes the fullest GPU it fits on."""

    name = "binpack"
    scores = staticmethod(allocated_fractions)
    place = staticmethod(place_default)

