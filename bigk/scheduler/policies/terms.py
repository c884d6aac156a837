"""The pod-independent half of the `bigk` score, kept per node and refreshed row by row.

The bigk score of a placement is "future-unusable GPU before" minus "after". The
"before" value and the node's fragmentation parts (idle total, GPUs fitting each
typical pod's share, idle milli-GPU on GPUs too small, copies of each share the
node holds) depend on the node's state only, not on the pod being placed. Each
decision changes one node, and every pod shape's score cache would otherwise
recompute these for that node again; `NodeTerms` computes them once per node
state, so a shape's cache computes only the "after" half.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bigk.cluster.model import MILLI_GPU, PodRequest
from bigk.scheduler.policies.frag import FillModel, FragModel, cpu_starved_gpu
from bigk.scheduler.policies.nodeview import NodeView, ViewCache


class NodeTerms:
    """Per node: fragmentation parts and the weighted "before" score, for one workload model."""

    def __init__(self, model: FragModel, fill: FillModel, models: Sequence[str], ratio: float,
                 weights: tuple[float, float, float]) -> None:
        self.model, self.fill, self.ratio, self.weights = model, fill, ratio, weights
        self.access_by_model = model.access(models)
        self._rows = ViewCache()
        k = len(model.milli)
        self.total = np.zeros(0, dtype=np.int64)  # idle usable milli-GPU
        self.fits = np.zeros((0, k), dtype=np.int64)
        self.small = np.zeros((0, k), dtype=np.int64)
        self.copies = np.zeros((0, k), dtype=np.int64)
        self.access = np.zeros((0, k), dtype=bool)
        self.before = np.zeros(0)  # one-step x w1 + fill + CPU starvation x w3, before any placement

    def update(self, view: NodeView) -> None:
        """Bring the terms in step with `view` (recomputing only rows it refreshed)."""
        rows = self._rows.get_rows(view)
        if rows is None or len(self.total) != view.n:
            n, k = view.n, len(self.model.milli)
            self.total = np.zeros(n, dtype=np.int64)
            self.fits = np.zeros((n, k), dtype=np.int64)
            self.small = np.zeros((n, k), dtype=np.int64)
            self.copies = np.zeros((n, k), dtype=np.int64)
            self.access = np.zeros((n, k), dtype=bool)
            self.before = np.zeros(n)
            rows = np.arange(n)
        if len(rows) == 0:
            return
        c, g = view.cpu_free[rows], view.left[rows]
        access = self.access_by_model[view.gpu_model[rows]]
        total, fits, small = self.model.parts(c, g)
        copies = self.fill.copies(g)
        w1, w2, w3 = self.weights
        b1 = self.model.combine(c, total, fits, small, access)
        b2 = self.fill.frag_of(c, total, copies, access)
        b3 = cpu_starved_gpu(c, total, self.ratio)
        self.total[rows], self.fits[rows], self.small[rows] = total, fits, small
        self.copies[rows], self.access[rows] = copies, access
        self.before[rows] = w1 * b1 + w2 * b2 + w3 * b3

    def whole_gain(self, req: PodRequest, cpu_left: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Per row: before minus after for a pod taking whole GPUs (or none), weighted as `before`.

        The same arithmetic as `FragModel.after`, `FillModel.after_copies` and
        `cpu_starved_gpu` (so the same scores), with what they share computed once.
        """
        model, fill = self.model, self.fill
        w1, w2, w3 = self.weights
        count = req.gpu_count if req.is_gpu else 0
        cpu_after = cpu_left - req.cpu_milli
        total = self.total[rows] - req.total_gpu_milli
        access = self.access[rows]
        ok = (self.fits[rows] - count >= model.count) & (cpu_after[:, None] >= model.cpu) & access
        a1 = model.cpu_only_freq * total + (np.where(ok, self.small[rows], total[:, None]) * model.freq).sum(axis=-1)
        copies = self.copies[rows] - count * (MILLI_GPU // fill.milli) if count else self.copies[rows]
        by_cpu = np.maximum(cpu_after, 0)[:, None] // fill.per_cpu + fill.no_cpu
        n = np.minimum(copies // fill.count, by_cpu) * access
        a2 = fill.freq_total * total - (n * fill.unit) @ fill.freq
        a3 = cpu_starved_gpu(cpu_after, total, self.ratio)
        return self.before[rows] - (w1 * a1 + w2 * a2 + w3 * a3)
