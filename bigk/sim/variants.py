"""Variant traces built from a base trace, with the sampling rules of the FGD paper's artifact.

The artifact (Weng et al., ATC '23; alibaba/clusterdata cluster-trace-gpu-v2023)
publishes variants of the default pod list, each emphasising one kind of pod.
Their names and what the number means (read from the published files and the
artifact's plotting scripts):

- `cpuNNN` (cpu050, cpu100, cpu200, cpu250): CPU-only pods are NNN/10 % of all
  pods *by count*. Every GPU pod of the default list is kept; CPU-only pods are
  sampled with replacement from the default's CPU-only pods.
- `gpushareNN` (gpushare40 .. gpushare100): GPU-sharing pods carry NN % of the
  GPU *requests*. CPU-only pods are kept; the number of GPU pods is kept; GPU
  pods are sampled with replacement from the default's sharing pods and from
  its other GPU pods.
- `multigpuNN` (multigpu20 .. multigpu50): multi-GPU pods carry NN % of the GPU
  requests; CPU-only pods kept, GPU pods resampled from multi-GPU and
  single-GPU pods as for gpushare.
- `gpuspecNN` (gpuspec10 .. gpuspec33): every pod is kept, and GPU pods chosen
  at random get a GPU-model constraint (`gpu_spec`) until constrained pods carry
  NN % of the GPU requests (33 % is the production share). Which constraint a
  pod gets follows `SPEC_MIX`, the mix of the published gpuspec33 file: mostly
  T4 (sharing pods: T4 or P100), then V100M16|V100M32 and G2 for whole GPUs, and
  some alternatives such as P100|V100M16|V100M32.

`KIND=SHARE` (cpu-only=0.05, share=0.4, multi-gpu=0.2, gpu-spec=0.33) names the
same rules with a share between 0 and 1. Sampled pods are interleaved so that
the share is met exactly (up to one pod), not only in expectation. When the
published file of a variant is present beside the default pod list
(`openb_pod_list_gpuspec33.csv` ...), `published_file` finds it so that the CLI
can load it instead of generating one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from bigk.cluster.model import Node
from bigk.sim.trace import TracePod

KINDS = ("cpu-only", "share", "multi-gpu", "gpu-spec")
_PREFIX = {"cpu-only": "cpu", "share": "gpushare", "multi-gpu": "multigpu", "gpu-spec": "gpuspec"}
_ARTIFACT_NAME = re.compile(r"^(cpu)(\d{3})$|^(gpushare|multigpu|gpuspec)(\d{1,3})$")

# The variants the artifact runs (experiments/run_scripts/generate_run_scripts.py), in its order.
ARTIFACT_VARIANTS = ("cpu050", "cpu100", "cpu200", "cpu250", "gpushare40", "gpushare60", "gpushare80",
                     "gpushare100", "multigpu20", "multigpu30", "multigpu40", "multigpu50", "gpuspec10",
                     "gpuspec20", "gpuspec25", "gpuspec33")

# GPU-model constraints of the published gpuspec33 file, by pod kind: (allowed models, relative weight).
# Counted over two samples of its rows (openb-pod-0000..0219 and 5552..5777: 128 constrained GPU pods).
SPEC_MIX: dict[str, tuple[tuple[str, int], ...]] = {
    "sharing": (("T4", 28), ("P100", 10), ("G2|P100|T4|V100M16|V100M32", 3)),
    "whole": (("T4", 37), ("V100M16|V100M32", 17), ("G2", 17), ("G3", 5), ("P100|V100M16|V100M32", 4),
              ("P100|T4|V100M16|V100M32", 2), ("G2|P100|T4|V100M16|V100M32", 1),
              ("A10|G2|T4|V100M16|V100M32", 1), ("A10|T4", 1)),
    "multi": (("G2", 1), ("G3", 1)),
}


def parse_variant(text: str) -> tuple[str, float]:
    """"gpuspec33" -> ("gpu-spec", 0.33); "cpu050" -> ("cpu-only", 0.05); "multi-gpu=0.3" -> ("multi-gpu", 0.3)."""
    text = text.strip()
    match = _ARTIFACT_NAME.match(text)
    if match:
        if match.group(1):
            return "cpu-only", int(match.group(2)) / 1000
        kind = {v: k for k, v in _PREFIX.items()}[match.group(3)]
        share = int(match.group(4)) / 100
        if share > 1:
            raise ValueError(f"variant {text!r}: the share must be at most 100")
        return kind, share
    kind, sep, value = text.partition("=")
    kind = kind.strip()
    if kind not in KINDS or not sep:
        raise ValueError(f"variant {text!r}: use an artifact name ({', '.join(ARTIFACT_VARIANTS[::4])}, ...) "
                         f"or KIND=SHARE with KIND one of {', '.join(KINDS)}")
    try:
        share = float(value)
    except ValueError:
        raise ValueError(f"variant {text!r}: {value!r} is not a number") from None
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"variant {text!r}: the share must be between 0 and 1")
    return kind, share


def variant_name(kind: str, share: float) -> str:
    """The artifact's file-name style for a variant: ("gpu-spec", 0.33) -> "gpuspec33"."""
    if kind == "cpu-only":
        return f"cpu{round(share * 1000):03d}"
    return f"{_PREFIX[kind]}{round(share * 100)}"


def published_file(pods_file: str | Path, kind: str, share: float) -> Path | None:
    """The artifact's published file of this variant beside `pods_file`, if it is there."""
    path = Path(pods_file).with_name(f"openb_pod_list_{variant_name(kind, share)}.csv")
    return path if path.is_file() else None


def _interleave(rng: np.random.Generator, inside: list[TracePod], outside: list[TracePod], count: int,
                share: float) -> list[TracePod]:
    """`count` pods sampled with replacement, inside pods carrying `share` of the GPU requests."""
    if share > 0 and not inside:
        raise ValueError("the base trace has no pods of the kind this variant needs")
    if share < 1 and not outside:
        raise ValueError("the base trace has no pods outside the kind this variant boosts")
    out: list[TracePod] = []
    got_in = got_all = 0
    for _ in range(count):
        take_in = share >= 1 or (share > 0 and got_in <= share * got_all)
        pool = inside if take_in else outside
        pod = pool[int(rng.integers(len(pool)))]
        got_all += pod.request.total_gpu_milli
        got_in += pod.request.total_gpu_milli if take_in else 0
        out.append(pod)
    return out


def _spec_kind(pod: TracePod) -> str:
    if pod.request.is_fractional:
        return "sharing"
    return "multi" if pod.request.gpu_count > 1 else "whole"


def _spec_table(nodes: Sequence[Node]) -> dict[str, tuple[list[frozenset[str]], np.ndarray]]:
    """SPEC_MIX as model sets, restricted to the cluster's models when a node list is given."""
    present = {n.gpu_model for n in nodes if n.gpus}
    table: dict[str, tuple[list[frozenset[str]], np.ndarray]] = {}
    for kind, mix in SPEC_MIX.items():
        sets: list[frozenset[str]] = []
        weights: list[float] = []
        for spec, weight in mix:
            models = frozenset(spec.split("|"))
            if present:
                models &= present
            if models:
                sets.append(models)
                weights.append(float(weight))
        if not sets:
            raise ValueError("the cluster has none of the GPU models the gpu-spec variant uses")
        w = np.array(weights)
        table[kind] = (sets, w / w.sum())
    return table


def make_variant(pods: Sequence[TracePod], kind: str, share: float, seed: int = 0,
                 nodes: Sequence[Node] = ()) -> list[TracePod]:
    """A resampled copy of `pods` where `kind` has the given share (see the module docstring)."""
    rng = np.random.default_rng(seed)
    pods = list(pods)
    cpu = [p for p in pods if not p.request.is_gpu]
    gpu = [p for p in pods if p.request.is_gpu]
    if kind == "cpu-only":
        if share >= 1:
            raise ValueError("the cpu-only share must be below 1 (GPU pods are kept)")
        if share > 0 and not cpu:
            raise ValueError("the base trace has no CPU-only pods")
        n_cpu = round(share / (1 - share) * len(gpu))
        out = gpu + [cpu[i] for i in rng.integers(len(cpu), size=n_cpu)] if n_cpu else list(gpu)
    elif kind == "share":
        inside = [p for p in gpu if p.request.is_fractional]
        outside = [p for p in gpu if not p.request.is_fractional]
        out = cpu + _interleave(rng, inside, outside, len(gpu), share)
    elif kind == "multi-gpu":
        inside = [p for p in gpu if p.request.gpu_count > 1]
        outside = [p for p in gpu if p.request.gpu_count == 1]
        if share > 0 and not inside:
            raise ValueError("the base trace has no multi-GPU pods")
        out = cpu + _interleave(rng, inside, outside, len(gpu), share)
    elif kind == "gpu-spec":
        table = _spec_table(nodes)
        total = sum(p.request.total_gpu_milli for p in gpu)
        out = list(pods)
        constrained = sum(p.request.total_gpu_milli for p in gpu if p.request.gpu_models)
        for i in rng.permutation(len(out)):
            p = out[i]
            if not p.request.is_gpu or p.request.gpu_models:
                continue
            if constrained >= share * total:
                break
            sets, weights = table[_spec_kind(p)]
            models = sets[int(rng.choice(len(sets), p=weights))]
            out[i] = replace(p, request=replace(p.request, gpu_models=models))
            constrained += p.request.total_gpu_milli
        return out
    else:
        raise ValueError(f"unknown variant kind {kind!r}; use one of {', '.join(KINDS)}")
    out = [out[i] for i in rng.permutation(len(out))]
    return [replace(p, name=f"{p.name}-v{i}") for i, p in enumerate(out)]
