"""`bigk validate --kubeconfig` on the real API server: a driver's missing ServiceAccount is a warning at its field."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest
from kubernetes import client
from typer.testing import CliRunner

from bigk.cli.main import app
from tests.realk8s import RealCluster

Write = Callable[..., Path]
pytestmark = pytest.mark.cluster


def test_missing_driver_service_account_is_a_positioned_warning(write: Write, control_plane: RealCluster,
                                                                 real_nodes: object) -> None:
    core = client.CoreV1Api(control_plane.api())
    with contextlib.suppress(client.ApiException):
        core.delete_namespaced_service_account("spark", "default")
    default = write("uses-default", "")
    named = write("uses-named", "driver:\n  serviceAccount: etl-runner\n")
    kubeconfig = str(control_plane.kubeconfig)
    result = CliRunner().invoke(app, ["validate", str(default), str(named), "--kubeconfig", kubeconfig])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "ServiceAccount" in line]
    assert len(lines) == 2, result.output
    assert any("uses-named" in line and "spec.driver.serviceAccount" in line and "'etl-runner'" in line
               for line in lines), lines
    assert any("uses-default" in line and "'spark'" in line and "spark.namespaces" in line for line in lines), lines
    core.create_namespaced_service_account("default", client.V1ServiceAccount(
        metadata=client.V1ObjectMeta(name="spark")))
    try:
        result = CliRunner().invoke(app, ["validate", str(default), "--kubeconfig", kubeconfig])
        assert result.exit_code == 0 and "ServiceAccount" not in result.output, result.output
    finally:
        core.delete_namespaced_service_account("spark", "default")
