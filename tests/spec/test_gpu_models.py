"""`bigk validate` against a cluster: model names people use, GFD product names on nodes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bigk.cluster.model import Node
from bigk.spec.loader import load_specs

Write = Callable[..., Path]


def test_short_model_names_validate_against_gfd_products(write: Write, cluster: list[Node]) -> None:
    path = write("a100", "executor:\n  instances: 2\n  gpu: {count: 1, model: A100-80GB}")
    result = load_specs([path], cluster=cluster)
    assert list(result.jobs) == ["a100"] and not result.problems and not result.warnings


def test_a_model_no_node_has_is_a_warning_naming_the_products_there(write: Write, cluster: list[Node]) -> None:
    path = write("either", "executor:\n  gpu: {count: 1, model: A100|H100}")
    result = load_specs([path], cluster=cluster)
    assert list(result.jobs) == ["either"] and not result.problems  # A100 nodes exist: placeable
    (warning,) = [str(w) for w in result.warnings]
    assert warning.startswith(f"{path}:9:")
    assert "spec.executor.gpu.model: warning: model 'H100' matches no GPU" in warning
    assert "NVIDIA-A100-SXM4-80GB, Tesla-T4" in warning


def test_only_unknown_models_is_an_error_and_a_warning(write: Write, cluster: list[Node]) -> None:
    path = write("l4", "executor:\n  gpu: {fraction: 0.5, memory: 4Gi, model: L4}")
    result = load_specs([path], cluster=cluster)
    assert not result.jobs and len(result.problems) == 1 and len(result.warnings) == 1
    assert "(8 GPU model mismatch)" in str(result.problems[0])


def test_whole_gpus_never_fit_a_bigk_sharing_pool(write: Write, cluster: list[Node]) -> None:
    path = write("t4whole", "executor:\n  gpu: {count: 1, model: T4}")
    result = load_specs([path], cluster=cluster)
    assert not result.jobs
    assert "2 GPUs shared by bigk" in str(result.problems[0])
    share = write("t4share", "executor:\n  gpu: {fraction: 0.25, memory: 2Gi, model: A100}")
    result = load_specs([share], cluster=cluster)
    assert "2 GPUs assigned by the device plugin" in str(result.problems[0])
