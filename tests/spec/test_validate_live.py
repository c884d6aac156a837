"""`bigk validate --kubeconfig`: models checked against a live cluster's GPU feature discovery labels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from bigk.cli.main import app
from bigk.cluster.config import load_cluster
from bigk.emulator import EmulatedCluster
from bigk.kube.live_nodes import LiveClusterError

from .conftest import JOBSPECS

Write = Callable[..., Path]


def test_validate_against_a_live_cluster_reads_gfd_labels(write: Write, tmp_path: Path) -> None:
    good = write("a100", "executor:\n  gpu: {count: 1, model: A100}")
    odd = write("h100", "executor:\n  gpu: {count: 1, model: A100|H100}")
    with EmulatedCluster(load_cluster(JOBSPECS / "cluster.yaml"), kubelet=False, spark_driver=False,
                         gpu_readings=False) as emu:
        kubeconfig = str(emu.write_kubeconfig(tmp_path / "kubeconfig"))
        result = CliRunner().invoke(app, ["validate", str(good), "--kubeconfig", kubeconfig])
        assert result.exit_code == 0, result.output
        assert "1 valid jobs in 1 files, 0 problems, 0 warnings, checked against" in result.output
        result = CliRunner().invoke(app, ["validate", str(odd), "--kubeconfig", kubeconfig])
    assert result.exit_code == 0, result.output
    assert "spec.executor.gpu.model: warning: model 'H100' matches no GPU of the cluster" in result.output
    assert "NVIDIA-A100-SXM4-80GB, Tesla-T4" in result.output


def test_validate_against_an_unreachable_cluster_is_one_line(write: Write, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
                          "contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"
                          "users: [{name: u, user: {}}]\n")
    result = CliRunner().invoke(app, ["validate", str(write("x")), "--kubeconfig", str(kubeconfig)])
    assert isinstance(result.exception, LiveClusterError)  # the CLI's error handler prints it as one line
    assert str(result.exception).startswith(f"{kubeconfig}: cannot list nodes: ") and "\n" not in str(result.exception)
