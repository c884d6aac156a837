"""GPU fragmentation as the FGD paper (Weng et al., ATC '23) defines it.

A workload is summarised by its *typical pods*: the most common request shapes
(CPU, GPUs per pod, milli-GPU per GPU, allowed models) that together make up at
least 95% of pods, each with its frequency (the artifact's defaults: CPU-only
pods included, popularity threshold 95%, step 1).

For one node and one typical pod, the node's idle GPU capacity is a fragment
unless the pod could run there ("Q3"): enough CPU, enough GPUs with at least the
pod's share free, and an allowed GPU model. Even then, GPUs with less than the
pod's share free are fragments. A CPU-only pod can use no GPU, so to it all idle
GPU capacity is a fragment. The node's fragmentation is the frequency-weighted
sum over typical pods, in milli-GPU.

Everything is vectorised over nodes, GPUs and typical pods. `RowCache` keeps
per-node results across decisions and recomputes only nodes whose inputs
changed, so the cost of a decision does not grow with the number of bound pods.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from bigk.cluster.gpu_labels import model_allowed
from bigk.cluster.model import MILLI_GPU, PodRequest

POPULARITY_THRESHOLD = 0.95

Shape = tuple[int, int, int, frozenset[str]]  # cpu milli, milli-GPU per GPU (0 = none), GPU count, models


def shape_of(req: PodRequest) -> Shape:
    """The part of a request that fragmentation depends on (memory is not part of it)."""
    if not req.is_gpu:
        return (req.cpu_milli, 0, 0, frozenset())
    return (req.cpu_milli, req.gpu_milli, req.gpu_count, req.gpu_models)


@dataclass(frozen=True)
class TypicalPod:
    cpu_milli: int
    gpu_milli: int  # per GPU; 0 for CPU-only pods
    gpu_count: int
    gpu_models: frozenset[str]
    freq: float


def typical_pods(requests: Iterable[PodRequest], popularity: float = POPULARITY_THRESHOLD,
                 include_cpu_only: bool = True) -> list[TypicalPod]:
    """The most common shapes covering `popularity` of the pods, frequencies renormalised to 1."""
    counts = Counter(shape_of(r) for r in requests if include_cpu_only or r.is_gpu)
    total = sum(counts.values())
    if total == 0:
        return []
    # Most frequent first; equal counts ordered as the artifact does (larger shape first).
    ordered = sorted(counts.items(), key=lambda kv: (kv[1], kv[0][0], kv[0][1], kv[0][2],
                                                     ",".join(sorted(kv[0][3]))), reverse=True)
    chosen: list[tuple[Shape, int]] = []
    covered = 0
    for shape, n in ordered:
        if covered >= popularity * total:
            break
        chosen.append((shape, n))
        covered += n
    return [TypicalPod(s[0], s[1], s[2], s[3], n / covered) for s, n in chosen]


class FragModel:
    """Vectorised fragmentation of nodes with respect to a set of typical pods."""

    def __init__(self, pods: Sequence[TypicalPod]) -> None:
        self.pods = list(pods)
        gpu = [p for p in self.pods if p.gpu_milli > 0]
        self.cpu_only_freq = float(sum(p.freq for p in self.pods if p.gpu_milli == 0))
        self.cpu = np.array([p.cpu_milli for p in gpu], dtype=np.int64)
        self.milli = np.array([p.gpu_milli for p in gpu], dtype=np.int64)
        self.count = np.array([p.gpu_count for p in gpu], dtype=np.int64)
        self.freq = np.array([p.freq for p in gpu], dtype=np.float64)
        self.models = [p.gpu_models for p in gpu]
        self._access_cache: dict[tuple[str, ...], np.ndarray] = {}

    @property
    def empty(self) -> bool:
        return not self.pods

    def access(self, models: Sequence[str]) -> np.ndarray:
        """(len(models) + 1, K) bool: may typical pod k run on GPU model m (last row: no GPUs)."""
        key = tuple(models)
        cached = self._access_cache.get(key)
        if cached is None:
            rows = [[model_allowed(m, allowed) for allowed in self.models] for m in models]
            rows.append([False] * len(self.models))
            cached = np.array(rows, dtype=bool).reshape(len(models) + 1, len(self.models))
            self._access_cache[key] = cached
        return cached

    def parts(self, cpu_left: np.ndarray, left: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per node: idle total T (C,), GPUs fitting each pod's share (C,K), idle milli on GPUs too small (C,K)."""
        total = left.sum(axis=1)
        big = left[:, :, None] >= self.milli[None, None, :]
        fits = big.sum(axis=1)
        small = np.where(big, 0, left[:, :, None]).sum(axis=1)
        return total, fits, small

    def combine(self, cpu_left: np.ndarray, total: np.ndarray, fits: np.ndarray, small: np.ndarray,
                access: np.ndarray) -> np.ndarray:
        """Fragmentation from parts; all arguments broadcast over leading axes, K last."""
        ok = (fits >= self.count) & (cpu_left[..., None] >= self.cpu) & access
        per_pod = np.where(ok, small, total[..., None])
        return self.cpu_only_freq * total + (per_pod * self.freq).sum(axis=-1)

    def node_frag(self, cpu_left: np.ndarray, left: np.ndarray, model: np.ndarray,
                  models: Sequence[str]) -> np.ndarray:
        """Fragmentation (milli-GPU) of each node given CPU left (C,), GPU milli left (C,G), model index (C,)."""
        access = self.access(models)[model]
        total, fits, small = self.parts(cpu_left, left)
        return self.combine(cpu_left, total, fits, small, access)

    def frag_after(self, req: PodRequest, cpu_left: np.ndarray, left: np.ndarray, model: np.ndarray,
                   models: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Fragmentation before (C,) and after placing `req` (C,) or (C,G) for a GPU share on GPU j.

        Whole GPUs come from fully free GPUs; a share from the GPU it is put on. Nodes
        where the pod does not fit get meaningless values: mask them by feasibility.
        """
        access = self.access(models)[model]
        total, fits, small = self.parts(cpu_left, left)
        before = self.combine(cpu_left, total, fits, small, access)
        return before, self.after(req, cpu_left, left, total, fits, small, access)

    def after(self, req: PodRequest, cpu_left: np.ndarray, left: np.ndarray, total: np.ndarray, fits: np.ndarray,
              small: np.ndarray, access: np.ndarray) -> np.ndarray:
        """`frag_after`'s second result from the node's `parts` and access rows.

        The parts do not depend on the pod, so a caller scoring many pods against the
        same nodes computes them once per node state.
        """
        cpu_after = cpu_left - req.cpu_milli
        if not req.is_gpu:
            return self.combine(cpu_after, total, fits, small, access)
        if not req.is_fractional:
            used = req.gpu_count * MILLI_GPU
            return self.combine(cpu_after, total - used, fits - req.gpu_count, small, access)
        m = req.gpu_milli
        v = left[:, :, None]
        big_before = v >= self.milli
        big_after = (v - m) >= self.milli
        fits_after = fits[:, None, :] - big_before + big_after
        small_after = small[:, None, :] - np.where(big_before, 0, v) + np.where(big_after, 0, v - m)
        return self.combine(cpu_after[:, None], (total - m)[:, None], fits_after, small_after, access[:, None, :])


class RowCache:
    """Per-node results that stay valid until that node's inputs change.

    `get(inputs, compute)` compares each input array row by row with what it saw
    last time and calls `compute(rows)` only for the rows that differ, so a
    decision after one allocation recomputes one node, not all of them.
    """

    def __init__(self) -> None:
        self._inputs: list[np.ndarray] = []
        self._out: np.ndarray | None = None

    def get(self, inputs: Sequence[np.ndarray], compute: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        n = len(inputs[0])
        if self._out is None or len(self._out) != n or len(self._inputs) != len(inputs) or any(
                old.shape != new.shape for old, new in zip(self._inputs, inputs, strict=False)):
            self._out = _compute_distinct(inputs, compute, n)
            self._inputs = [a.copy() for a in inputs]
            return self._out
        hits = [np.flatnonzero((old != new).ravel()) // max(1, old.size // n)
                for old, new in zip(self._inputs, inputs, strict=True)]
        if any(len(h) for h in hits):
            rows = np.unique(np.concatenate(hits))
            self._out[rows] = compute(rows)
            for old, new in zip(self._inputs, inputs, strict=True):
                old[rows] = new[rows]
        return self._out


def _compute_distinct(inputs: Sequence[np.ndarray], compute: Callable[[np.ndarray], np.ndarray],
                      n: int) -> np.ndarray:
    """`compute` over all rows, evaluating each distinct input row once (many nodes start out identical)."""
    keys = np.concatenate([np.asarray(a).reshape(n, -1).astype(np.int64) for a in inputs], axis=1)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    return np.array(compute(first))[inverse.reshape(-1)]


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class FillModel(FragModel):
    """Idle GPU that would stay unusable if a node were filled with copies of each typical pod.

    FGD's measure asks whether *one* more pod of each kind fits; this one asks
    how many fit, limited by free GPU shares and by free CPU, so it also sees GPUs
    that will be stranded once the node's CPU runs out, and the slack left when a
    GPU's free share is not a multiple of the pod's share.
    """

    def __init__(self, pods: Sequence[TypicalPod]) -> None:
        super().__init__(pods)
        self.per_cpu = np.where(self.cpu > 0, self.cpu, 1)
        self.no_cpu = np.where(self.cpu > 0, 0, 1 << 40)  # pods asking no CPU are limited by GPU only
        self.unit = self.count * self.milli
        self.freq_total = float(self.freq.sum()) + self.cpu_only_freq

    def frag_of(self, cpu_left: np.ndarray, total: np.ndarray, copies: np.ndarray, access: np.ndarray) -> np.ndarray:
        by_cpu = np.maximum(cpu_left[..., None], 0) // self.per_cpu + self.no_cpu
        n = np.minimum(copies // self.count, by_cpu) * access
        # sum_k f_k (total - n_k * unit_k) + f_cpu * total
        return self.freq_total * total - (n * self.unit) @ self.freq

    def node_frag(self, cpu_left: np.ndarray, left: np.ndarray, model: np.ndarray,
                  models: Sequence[str]) -> np.ndarray:
        access = self.access(models)[model]
        return self.frag_of(cpu_left, left.sum(axis=1), (left[:, :, None] // self.milli).sum(axis=1), access)

    def copies(self, left: np.ndarray) -> np.ndarray:
        """Per node (C,K): copies of each typical pod's GPU share the free shares hold."""
        return (left[:, :, None] // self.milli).sum(axis=1)

    def frag_after(self, req: PodRequest, cpu_left: np.ndarray, left: np.ndarray, model: np.ndarray,
                   models: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        access = self.access(models)[model]
        total = left.sum(axis=1)
        copies = self.copies(left)
        before = self.frag_of(cpu_left, total, copies, access)
        return before, self.after_copies(req, cpu_left, left, total, copies, access)

    def after_copies(self, req: PodRequest, cpu_left: np.ndarray, left: np.ndarray, total: np.ndarray,
                     copies: np.ndarray, access: np.ndarray) -> np.ndarray:
        """`frag_after`'s second result from the node's idle total, `copies` and access rows."""
        cpu_after = cpu_left - req.cpu_milli
        if not req.is_gpu:
            return self.frag_of(cpu_after, total, copies, access)
        if not req.is_fractional:
            gone = req.gpu_count * (MILLI_GPU // self.milli)
            return self.frag_of(cpu_after, total - req.gpu_count * MILLI_GPU, copies - gone, access)
        v = left[:, :, None]
        copies_after = copies[:, None, :] - v // self.milli + np.maximum(v - req.gpu_milli, 0) // self.milli
        return self.frag_of(cpu_after[:, None], (total - req.gpu_milli)[:, None], copies_after, access[:, None, :])


def cpu_per_gpu(requests: Iterable[PodRequest]) -> float:
    """CPU milli that GPU pods ask for per milli-GPU: the ratio a node should keep to use all its GPUs."""
    reqs = [r for r in requests if r.is_gpu]
    gpu = sum(r.total_gpu_milli for r in reqs)
    return sum(r.cpu_milli for r in reqs) / gpu if gpu else 0.0


def cpu_starved_gpu(cpu_left: np.ndarray, gpu_left: np.ndarray, ratio: float) -> np.ndarray:
    """Idle milli-GPU that the node's free CPU cannot feed at `ratio` CPU per milli-GPU."""
    if ratio <= 0:
        return np.zeros(np.broadcast(cpu_left, gpu_left).shape)
    return np.maximum(0.0, gpu_left - np.maximum(cpu_left, 0) / ratio)
