"""The scheduling cycle's filters: the fit rule (`bigk.cluster.fit.Fit`) plus per-cycle caches.

`Filters` is the one `Fit` a cycle hands to its placer, preemption and explanations:
the GPU health and freshness masks depend only on the readings and `now`, so they
are computed once per cycle instead of once per pod; static masks (labels, taints,
models, constraints) and preferred-pool masks are cached by shape. For a pod that
fits nowhere, `reasons()` counts the first failing filter of every node, in the
order kube-scheduler reports them, so an explanation can say e.g. "31 insufficient
nvidia.com/gpu".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bigk.cluster.affinity import PodConstraints
from bigk.cluster.fit import Fit, row_count
from bigk.cluster.model import MILLI_GPU, PodRequest, Toleration
from bigk.cluster.state import ClusterState

__all__ = ["Filters", "describe_request", "row_count"]


class Filters(Fit):
    """The fit rule over all nodes of a `ClusterState` for one cycle's `now`, with the cycle's caches."""

    def __init__(self, state: ClusterState, now: float, stale_after_s: float | None = None) -> None:
        super().__init__(state, now, stale_after_s)
        self._pool_masks: dict[tuple[str, ...], np.ndarray] = {}

    def static(self, selector: dict[str, str], tolerations: Sequence[Toleration],
               gpu_models: frozenset[str], constraints: PodConstraints | None = None) -> np.ndarray:
        """Nodes whose labels, taints, GPU model and node constraints admit the pod (cached by the state)."""
        return self.state.static_mask(selector, tuple(tolerations), gpu_models, constraints)

    def pools(self, pools: tuple[str, ...]) -> np.ndarray:
        """Nodes in any of `pools`."""
        mask = self._pool_masks.get(pools)
        if mask is None:
            ids = [i for i, p in enumerate(self.state.pools) if p in pools]
            mask = np.isin(self.state.pool, ids)
            self._pool_masks[pools] = mask
        return mask


def describe_request(req: PodRequest) -> str:
    """A short human phrase for what one pod needs, e.g. "2 free GPUs" or "0.5 GPU + 8192 MiB GPU memory"."""
    if req.is_fractional:
        text = f"{req.gpu_milli / MILLI_GPU:g} GPU"
        if req.gpu_memory_mib:
            text += f" + {req.gpu_memory_mib} MiB GPU memory"
        return text + " free"
    if req.is_gpu:
        return f"{req.gpu_count} free GPU" + ("s" if req.gpu_count > 1 else "")
    return f"{req.cpu_milli / 1000:g} CPU + {req.memory_mib} MiB free"
