"""The per-node inputs of the `bigk` policy, kept in step with a `ClusterState` row by row.

A decision changes one node, yet recomputing free GPU shares, whole free GPUs
and per-model totals from the state's arrays costs several passes over every
node and GPU slot per decision. `NodeView` reads the state's change journal
(`ClusterState.rows_changed_since`) and refreshes only the nodes that changed,
stamping them with its own row versions, so per-shape score caches
(`ViewCache`) learn which rows to recompute without comparing arrays. Another
state, or a copy of it, is compared by content once and then followed the same way.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np

from bigk.cluster.model import MILLI_GPU
from bigk.cluster.state import ClusterState
from bigk.scheduler.policies.rows import row_count, row_sum


class NodeView:
    """Free CPU, memory and GPU per node for one state and `now`, updated incrementally."""

    def __init__(self) -> None:
        self._state: weakref.ref[ClusterState] | None = None
        self._seen = -1  # the state's journal version already applied
        self._usable: np.ndarray | None = None
        self.version = 0  # bumped per refresh; rows refreshed get it in row_version
        self.row_version = np.zeros(0, dtype=np.int64)
        self.n = -1
        self.gpu_model = np.zeros(0, dtype=np.int64)
        self.cpu_free = np.zeros(0, dtype=np.int64)
        self.mem_free = np.zeros(0, dtype=np.int64)
        self.left = np.zeros((0, 0), dtype=np.int64)  # free milli-GPU per usable slot, 0 elsewhere
        self.full = np.zeros(0, dtype=np.int64)  # usable GPUs with nothing allocated
        self.gpu_mem_free = np.zeros((0, 0), dtype=np.int64)
        self.idle = np.zeros(0, dtype=np.int64)  # free milli-GPU per node, all present GPUs (usable or not)
        self.live_max = np.zeros(0)  # latest reading time per node
        self.model_cap: np.ndarray = np.zeros(0)  # milli-GPU capacity per GPU model
        self.model_free = np.zeros(0, dtype=np.int64)  # sum of `idle` per GPU model

    def sync(self, state: ClusterState, now: float | None) -> None:
        """Bring the view to `state` at `now`."""
        usable = state.usable_gpus(now)
        if self._state is None or self._state() is not state or self.left.shape != state.gpu_milli_used.shape:
            self._rebuild(state, usable)
            return
        rows = state.rows_changed_since(self._seen)
        if usable is not self._usable:
            assert self._usable is not None
            moved = np.flatnonzero(row_count(usable != self._usable))
            rows = np.union1d(rows, moved) if len(rows) else moved
            self._usable = usable
        self._seen = state.version
        if len(rows):
            self._refresh(state, rows)

    def _rebuild(self, state: ClusterState, usable: np.ndarray) -> None:
        old = (self.cpu_free, self.mem_free, self.left, self.gpu_model, self.gpu_mem_free, self.live_max)
        self._state = weakref.ref(state)
        self._seen = state.version
        self._usable = usable
        n = state.size
        self.gpu_model = state.gpu_model.copy()
        self.cpu_free = state.cpu_cap - state.cpu_used
        self.mem_free = state.mem_cap - state.mem_used
        raw = state.gpu_milli_free
        self.left = np.where(usable, raw, 0)
        self.full = row_count(self.left >= MILLI_GPU)
        self.gpu_mem_free = state.gpu_mem_cap - state.gpu_mem_used
        self.idle = row_sum(raw)
        self.live_max = state.live_at.max(axis=1) if n else np.zeros(0)
        has = self.gpu_model >= 0
        n_models = len(state.models)
        self.model_cap = np.bincount(self.gpu_model[has], weights=state.gpu_count[has] * 1000.0, minlength=n_models)
        self.model_free = np.bincount(self.gpu_model[has], weights=self.idle[has], minlength=n_models).astype(np.int64)
        self.version += 1
        if n == self.n and all(a.shape == b.shape for a, b in zip(old, (self.cpu_free, self.mem_free, self.left,
                                                                          self.gpu_model, self.gpu_mem_free,
                                                                          self.live_max), strict=True)):
            same = (old[0] == self.cpu_free) & (old[1] == self.mem_free) & (old[3] == self.gpu_model)
            same &= row_count(old[2] != self.left) == 0
            same &= row_count(old[4] != self.gpu_mem_free) == 0
            same &= old[5] == self.live_max
            self.row_version[~same] = self.version
        else:
            self.n = n
            self.row_version = np.full(n, self.version, dtype=np.int64)

    def _refresh(self, state: ClusterState, rows: np.ndarray) -> None:
        usable = self._usable
        assert usable is not None
        if len(rows) == 1:  # the usual case (one allocation since the last decision): scalar updates
            self._refresh_one(state, int(rows[0]), usable)
            return
        self.cpu_free[rows] = state.cpu_cap[rows] - state.cpu_used[rows]
        self.mem_free[rows] = state.mem_cap[rows] - state.mem_used[rows]
        raw = state.gpu_present[rows] * MILLI_GPU - state.gpu_milli_used[rows]  # gpu_milli_free's rows
        left = raw * usable[rows]
        self.left[rows] = left
        self.full[rows] = row_count(left >= MILLI_GPU)
        self.gpu_mem_free[rows] = state.gpu_mem_cap[rows] - state.gpu_mem_used[rows]
        idle = row_sum(raw)
        model = self.gpu_model[rows]
        has = model >= 0
        np.add.at(self.model_free, model[has], idle[has] - self.idle[rows][has])
        self.idle[rows] = idle
        self.live_max[rows] = state.live_at[rows].max(axis=1)
        self.version += 1
        self.row_version[rows] = self.version

    def _refresh_one(self, state: ClusterState, i: int, usable: np.ndarray) -> None:
        """`_refresh` of one row, with scalar bookkeeping."""
        self.cpu_free[i] = state.cpu_cap[i] - state.cpu_used[i]
        self.mem_free[i] = state.mem_cap[i] - state.mem_used[i]
        raw = state.gpu_present[i] * MILLI_GPU - state.gpu_milli_used[i]
        left = raw * usable[i]
        self.left[i] = left
        self.full[i] = np.count_nonzero(left >= MILLI_GPU)
        self.gpu_mem_free[i] = state.gpu_mem_cap[i] - state.gpu_mem_used[i]
        idle = int(raw.sum())
        model = int(self.gpu_model[i])
        if model >= 0:
            self.model_free[model] += idle - int(self.idle[i])
        self.idle[i] = idle
        self.live_max[i] = state.live_at[i].max()
        self.version += 1
        self.row_version[i] = self.version

    def any_fresh(self, now: float | None, stale_after_s: float) -> bool:
        """`state.fresh_readings(now).any()`, from the latest reading per node."""
        if now is None or self.n <= 0:
            return False
        return bool((now - self.live_max.max()) <= stale_after_s)

    def changed_since(self, version: int) -> np.ndarray:
        """Rows refreshed after `version` of this view."""
        return np.flatnonzero(self.row_version > version)


def _compute_distinct(view: NodeView, compute: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """`compute` over all rows, evaluating each distinct (free CPU, GPU model, free shares) row once."""
    key = np.empty((view.n, view.left.shape[1] + 2), dtype=np.int64)
    key[:, 0] = view.cpu_free
    key[:, 1] = view.gpu_model
    key[:, 2:] = view.left
    rows = key.view(np.dtype((np.void, key.shape[1] * key.itemsize))).reshape(-1)  # one bytes value per row
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    return np.array(compute(first))[inverse.reshape(-1)]


class ViewCache:
    """Per-node results of a pure per-row function of the view, recomputed only for refreshed rows.

    (Looking refreshed rows up by content saved nothing: on the Alibaba trace a shape's few
    refreshed rows almost never all repeat an earlier row's content, free CPU being so varied.)
    """

    def __init__(self) -> None:
        self._view: weakref.ref[NodeView] | None = None
        self._seen = -1
        self._n = -1
        self._out: np.ndarray | None = None

    def get_rows(self, view: NodeView) -> np.ndarray | None:
        """Rows refreshed since the last call, or None when everything must be computed afresh."""
        if self._view is None or self._view() is not view or self._n != view.n:
            self._view = weakref.ref(view)
            self._n = view.n
            self._seen = view.version
            return None
        rows = view.changed_since(self._seen)
        self._seen = view.version
        return rows

    def get(self, view: NodeView, compute: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """`compute(rows)` for every row, recomputing only rows refreshed since the last call."""
        rows = self.get_rows(view)
        if rows is None or self._out is None:
            self._out = _compute_distinct(view, compute)
        elif len(rows):
            self._out[rows] = compute(rows)
        return self._out
