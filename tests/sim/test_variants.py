"""Variant traces have the mix they promise."""

from __future__ import annotations

from pathlib import Path

import pytest

from bigk.sim.trace import load_nodes, load_pods
from bigk.sim.variants import make_variant, parse_variant


def test_variants_shift_the_mix(small_trace: tuple[Path, Path]) -> None:
    nodes, pods = load_nodes(small_trace[0]), load_pods(small_trace[1])
    n = len(pods)
    cpu = make_variant(pods, "cpu-only", 0.4, seed=1)
    assert len(cpu) == n and sum(not p.request.is_gpu for p in cpu) == round(0.4 * n)
    share = make_variant(pods, "share", 0.8, seed=1)
    gpu = [p for p in share if p.request.is_gpu]
    assert abs(sum(p.request.is_fractional for p in gpu) / len(gpu) - 0.8) < 0.01
    multi = make_variant(pods, "multi-gpu", 0.5, seed=1)
    demand = sum(p.request.total_gpu_milli for p in multi)
    assert abs(sum(p.request.total_gpu_milli for p in multi if p.request.gpu_count > 1) / demand - 0.5) < 0.1
    spec = make_variant(pods, "gpu-spec", 0.5, seed=1, nodes=nodes)
    constrained = [p for p in spec if p.request.gpu_models]
    assert 0.35 < len(constrained) / sum(p.request.is_gpu for p in spec) < 0.65
    assert {m for p in constrained for m in p.request.gpu_models} <= {"G2", "T4"}
    assert make_variant(pods, "cpu-only", 0.4, seed=1) == cpu


def test_parse_variant() -> None:
    assert parse_variant("multi-gpu=0.3") == ("multi-gpu", 0.3)
    with pytest.raises(ValueError):
        parse_variant("bogus=0.1")
    with pytest.raises(ValueError):
        parse_variant("share=2")
