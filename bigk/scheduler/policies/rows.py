"""Per-node reductions over the few GPU slots of a node, fast.

numpy's `x.sum(axis=1)` / `x.max(axis=1)` on an (N, 8) array loops over short
rows and costs ~100-230 us at 5,000 nodes; a loop over the G columns, each a
contiguous-stride vector op over N, costs a fifth of that. The results are
exactly those of numpy's reductions (max, integer sums, boolean counts), so
decisions do not change.
"""

from __future__ import annotations

import numpy as np

from bigk.scheduler.filters import row_count as _row_count_bool

FEW_ROWS = 64  # below this, numpy's own reduction has less call overhead than a loop over columns


def row_max(x: np.ndarray) -> np.ndarray:
    """`x.max(axis=1)` for a 2-D array with at least one column."""
    if x.shape[0] < FEW_ROWS:
        return np.asarray(x.max(axis=1))
    out = x[:, 0].copy()
    for j in range(1, x.shape[1]):
        np.maximum(out, x[:, j], out=out)
    return out


def row_sum(x: np.ndarray) -> np.ndarray:
    """`x.sum(axis=1)` for a 2-D integer array (exact, so the order of addition does not matter)."""
    if x.dtype.kind not in "iu":
        raise TypeError("row_sum is exact only for integers; use x.sum(axis=1)")
    if x.shape[0] < FEW_ROWS:
        return np.asarray(x.sum(axis=1, dtype=np.int64))
    out = x[:, 0].astype(np.int64)
    for j in range(1, x.shape[1]):
        np.add(out, x[:, j], out=out)
    return out


def row_count(mask: np.ndarray) -> np.ndarray:
    """True values per row of a bool (N, G) mask, as int64."""
    if mask.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    return _row_count_bool(np.ascontiguousarray(mask)).astype(np.int64)
