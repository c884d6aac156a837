"""Variant traces follow the FGD artifact's sampling rules and have the mix they promise."""

from __future__ import annotations

from pathlib import Path

import pytest

from bigk.sim.trace import TracePod, load_nodes, load_pods
from bigk.sim.variants import ARTIFACT_VARIANTS, make_variant, parse_variant, published_file, variant_name


def _gpu_share(pods: list[TracePod], pick: object) -> float:
    gpu = [p for p in pods if p.request.is_gpu]
    total = sum(p.request.total_gpu_milli for p in gpu)
    return sum(p.request.total_gpu_milli for p in gpu if pick(p)) / total  # type: ignore[operator]


def test_cpu_variant_keeps_every_gpu_pod_and_sets_the_cpu_only_count(small_trace: tuple[Path, Path]) -> None:
    pods = load_pods(small_trace[1])
    gpu = sorted(p.request.cpu_milli for p in pods if p.request.is_gpu)
    cpu = make_variant(pods, "cpu-only", 0.25, seed=1)
    assert sorted(p.request.cpu_milli for p in cpu if p.request.is_gpu) == gpu
    assert abs(sum(not p.request.is_gpu for p in cpu) / len(cpu) - 0.25) < 0.005
    assert make_variant(pods, "cpu-only", 0.25, seed=1) == cpu  # seeded


@pytest.mark.parametrize(("kind", "share"), [("share", 0.4), ("share", 1.0), ("multi-gpu", 0.5), ("multi-gpu", 0.0)])
def test_gpu_request_shares_are_met(small_trace: tuple[Path, Path], kind: str, share: float) -> None:
    pods = load_pods(small_trace[1])
    out = make_variant(pods, kind, share, seed=3)
    assert sum(not p.request.is_gpu for p in out) == sum(not p.request.is_gpu for p in pods)  # CPU-only kept
    assert len(out) == len(pods)
    inside = (lambda p: p.request.is_fractional) if kind == "share" else (lambda p: p.request.gpu_count > 1)
    assert abs(_gpu_share(out, inside) - share) < 0.03


def test_gpu_spec_variant_constrains_a_share_of_gpu_requests_with_the_artifacts_mix() -> None:
    from bigk.sim.trace import DEFAULT_NODES, DEFAULT_PODS

    if not DEFAULT_PODS.is_file():
        pytest.skip("the shared Alibaba trace is not here")
    nodes, pods = load_nodes(DEFAULT_NODES), load_pods(DEFAULT_PODS)
    out = make_variant(pods, "gpu-spec", 0.33, seed=7, nodes=nodes)
    assert [p.name for p in out] == [p.name for p in pods]  # every pod kept, in place
    assert abs(_gpu_share(out, lambda p: bool(p.request.gpu_models)) - 0.33) < 0.005
    constrained = [p for p in out if p.request.gpu_models]
    t4 = sum(p.request.gpu_models == frozenset({"T4"}) for p in constrained) / len(constrained)
    assert 0.4 < t4 < 0.6  # T4 is the most common constraint, as in the published gpuspec33
    assert any(len(p.request.gpu_models) > 1 for p in constrained)  # alternatives such as V100M16|V100M32
    sharing = {p.request.gpu_models for p in constrained if p.request.is_fractional}
    assert sharing <= {frozenset({"T4"}), frozenset({"P100"}), frozenset({"G2", "P100", "T4", "V100M16", "V100M32"})}


def test_gpu_spec_keeps_to_the_clusters_models(small_trace: tuple[Path, Path]) -> None:
    nodes, pods = load_nodes(small_trace[0]), load_pods(small_trace[1])
    out = make_variant(pods, "gpu-spec", 0.5, seed=1, nodes=nodes)
    assert {m for p in out for m in p.request.gpu_models} <= {"G2", "T4"}
    assert abs(_gpu_share(out, lambda p: bool(p.request.gpu_models)) - 0.5) < 0.05


def test_parse_variant_and_names() -> None:
    assert parse_variant("gpuspec33") == ("gpu-spec", 0.33)
    assert parse_variant("cpu050") == ("cpu-only", 0.05)
    assert parse_variant("gpushare100") == ("share", 1.0)
    assert parse_variant("multi-gpu=0.3") == ("multi-gpu", 0.3)
    assert [variant_name(*parse_variant(n)) for n in ARTIFACT_VARIANTS] == list(ARTIFACT_VARIANTS)
    for bad in ("bogus=0.1", "share=2", "gpuspec150", "cpu5", "share=x"):
        with pytest.raises(ValueError):
            parse_variant(bad)


def test_published_file_is_found_beside_the_pod_list(tmp_path: Path) -> None:
    base = tmp_path / "openb_pod_list_default.csv"
    assert published_file(base, "gpu-spec", 0.33) is None
    (tmp_path / "openb_pod_list_gpuspec33.csv").write_text("x\n")
    assert published_file(base, "gpu-spec", 0.33) == tmp_path / "openb_pod_list_gpuspec33.csv"
