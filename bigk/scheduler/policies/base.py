"""The placement-policy contract and registry.

A policy answers one question: of the nodes where a pod fits, which node and
which GPUs should it take? Filtering (resources, selectors, taints, GPU model,
health, live memory) is done before a policy is asked, by
`ClusterState.feasible`; the policy only scores and chooses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from bigk.cluster.model import PodRequest
from bigk.cluster.state import ClusterState, Placement


class Policy(Protocol):
    """A placement policy. Implementations must be deterministic for a given state."""

    name: str

    def select(self, state: ClusterState, req: PodRequest, feasible: np.ndarray,
               now: float | None = None) -> Placement | None:
        """Choose a placement among `feasible` nodes (bool mask), or None if none is acceptable."""
        ...

    def observe_workload(self, requests: list[PodRequest]) -> None:
        """Tell the policy what workload to expect (FGD's target distribution); others ignore it."""
        ...


_REGISTRY: dict[str, Callable[[], Policy]] = {}


def register(name: str) -> Callable[[Callable[[], Policy]], Callable[[], Policy]]:
    """Class/factory decorator: `@register("binpack")`."""

    def wrap(factory: Callable[[], Policy]) -> Callable[[], Policy]:
        _REGISTRY[name] = factory
        return factory

    return wrap


def policy_names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def make_policy(name: str) -> Policy:
    """A fresh policy instance by name; raises KeyError listing the known names."""
    _load_builtin()
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise KeyError(f"unknown policy {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def _load_builtin() -> None:
    import bigk.scheduler.policies  # noqa: F401  (importing the package registers the built-ins)
