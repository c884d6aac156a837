"""Variant traces built from a base trace, to test policies on other workload mixes.

Each variant resamples the base trace's pods (with replacement, seeded) so that
one kind of pod makes up a chosen share, keeping the pod count, in the spirit of
the FGD paper's `cpuNNN`, `gpushareNN`, `multigpuNN` and `gpuspecNN` traces:

- `cpu-only=S`: CPU-only pods are a share S of all pods;
- `share=S`: GPU-sharing pods are a share S of GPU pods;
- `multi-gpu=S`: multi-GPU pods carry a share S of the requested GPUs;
- `gpu-spec=S`: a share S of GPU pods are restricted to one GPU model (drawn in
  proportion to the cluster's GPUs of that model), as 33% are in production.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from bigk.cluster.model import Node
from bigk.sim.trace import TracePod

KINDS = ("cpu-only", "share", "multi-gpu", "gpu-spec")


def parse_variant(text: str) -> tuple[str, float]:
    """"multi-gpu=0.3" -> ("multi-gpu", 0.3)."""
    kind, sep, value = text.partition("=")
    kind = kind.strip()
    if kind not in KINDS or not sep:
        raise ValueError(f"variant {text!r}: use KIND=SHARE with KIND one of {', '.join(KINDS)}")
    share = float(value)
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"variant {text!r}: the share must be between 0 and 1")
    return kind, share


def _mix(rng: np.random.Generator, inside: list[TracePod], outside: list[TracePod], n_inside: int,
         n_total: int) -> list[TracePod]:
    if n_inside > 0 and not inside:
        raise ValueError("the base trace has no pods of the kind this variant needs")
    if n_total - n_inside > 0 and not outside:
        raise ValueError("the base trace has no pods outside the kind this variant boosts")
    pick_in = [inside[i] for i in rng.integers(len(inside), size=n_inside)] if n_inside else []
    pick_out = [outside[i] for i in rng.integers(len(outside), size=n_total - n_inside)] if n_total > n_inside else []
    mixed = pick_in + pick_out
    return [mixed[i] for i in rng.permutation(len(mixed))]


def make_variant(pods: Sequence[TracePod], kind: str, share: float, seed: int = 0,
                 nodes: Sequence[Node] = ()) -> list[TracePod]:
    """A resampled copy of `pods` where `kind` has the given share (see the module docstring)."""
    rng = np.random.default_rng(seed)
    pods = list(pods)
    n = len(pods)
    if kind == "cpu-only":
        inside = [p for p in pods if not p.request.is_gpu]
        outside = [p for p in pods if p.request.is_gpu]
        out = _mix(rng, inside, outside, round(share * n), n)
    elif kind == "share":
        cpu = [p for p in pods if not p.request.is_gpu]
        inside = [p for p in pods if p.request.is_fractional]
        outside = [p for p in pods if p.request.is_gpu and not p.request.is_fractional]
        n_gpu = n - len(cpu)
        out = cpu + _mix(rng, inside, outside, round(share * n_gpu), n_gpu)
        out = [out[i] for i in rng.permutation(len(out))]
    elif kind == "multi-gpu":
        cpu = [p for p in pods if not p.request.is_gpu]
        inside = [p for p in pods if p.request.gpu_count > 1]
        outside = [p for p in pods if p.request.is_gpu and p.request.gpu_count == 1]
        if not inside:
            raise ValueError("the base trace has no multi-GPU pods")
        gpu_in = np.mean([p.request.total_gpu_milli for p in inside])
        gpu_out = np.mean([p.request.total_gpu_milli for p in outside])
        n_gpu = n - len(cpu)
        # choose the count so that inside pods carry `share` of the GPU demand
        k = share * n_gpu * gpu_out / (gpu_in - share * (gpu_in - gpu_out))
        out = cpu + _mix(rng, inside, outside, min(n_gpu, round(k)), n_gpu)
        out = [out[i] for i in rng.permutation(len(out))]
    elif kind == "gpu-spec":
        counts: dict[str, int] = {}
        for node in nodes:
            if node.gpus:
                counts[node.gpu_model] = counts.get(node.gpu_model, 0) + len(node.gpus)
        if not counts:
            raise ValueError("the gpu-spec variant needs the node list (GPU models)")
        models = sorted(counts)
        weights = np.array([counts[m] for m in models], dtype=float)
        weights /= weights.sum()
        out = []
        for p in pods:
            if p.request.is_gpu and rng.random() < share:
                model = models[int(rng.choice(len(models), p=weights))]
                p = replace(p, request=replace(p.request, gpu_models=frozenset({model})))
            out.append(p)
    else:
        raise ValueError(f"unknown variant kind {kind!r}; use one of {', '.join(KINDS)}")
    return [replace(p, name=f"{p.name}-v{i}") for i, p in enumerate(out)]
