"""The real Kubernetes control plane for tests: one per test session, with bigk's simulated nodes on it.

`control_plane` starts etcd, kube-apiserver (RBAC, audit log, service-account tokens) and
kube-controller-manager from `testenv/` (building them first when missing), or uses the cluster of
`BIGK_TEST_KUBECONFIG` when set. `real_nodes` registers the nodes of `jobspecs/cluster.yaml`
and runs the simulated kubelet, Spark driver and GPU readings against it as ordinary clients.
Tests that use them are marked `cluster`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

from bigk.cluster.config import load_cluster
from bigk.emulator.remote import SimulatedNodes
from testenv.controlplane import ControlPlane

ROOT = Path(__file__).resolve().parents[1]
TIME_SCALE = 0.05  # the same pace as the emulated suites: a 20 s expected duration runs 1 s
DEFAULT_DURATION = 36_000.0  # pods without an expected duration run "forever" (like pause containers)


@dataclass
class RealCluster:
    """What a test needs of the real control plane."""

    kubeconfig: Path
    plane: ControlPlane | None  # None when the tests use someone else's cluster (BIGK_TEST_KUBECONFIG)

    def api(self) -> client.ApiClient:
        return config.new_client_from_config(str(self.kubeconfig))

    @property
    def audit_log(self) -> Path | None:
        return self.plane.audit_log if self.plane is not None else None


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealCluster]:
    given = os.environ.get("BIGK_TEST_KUBECONFIG")
    if given:
        yield RealCluster(Path(given), None)
        return
    plane = ControlPlane(dir=tmp_path_factory.mktemp("controlplane")).start()
    try:
        yield RealCluster(plane.kubeconfig, plane)
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def real_nodes(control_plane: RealCluster) -> Iterator[SimulatedNodes]:
    nodes = load_cluster(ROOT / "jobspecs" / "cluster.yaml")
    sim = SimulatedNodes(control_plane.api(), nodes, time_scale=TIME_SCALE, default_duration=DEFAULT_DURATION)
    sim.start()
    sim.wait_until_ready()
    try:
        yield sim
    finally:
        sim.stop()


def clean_namespace(api: client.ApiClient, namespace: str) -> None:
    """Remove what a test left in a shared namespace (pods at once, as a kubelet that is gone would)."""
    core = client.CoreV1Api(api)
    with contextlib.suppress(Exception):
        core.delete_collection_namespaced_pod(namespace, grace_period_seconds=0)
    for fn in (core.delete_collection_namespaced_config_map, core.delete_collection_namespaced_service):
        with contextlib.suppress(Exception):
            fn(namespace)


@dataclass
class ClusterUnderTest:
    """One cluster a suite runs on: the embedded emulator or the real control plane with simulated nodes."""

    kind: str  # "emulated" | "real"
    url: str = ""  # the emulator's plain-HTTP URL
    kubeconfig: Path | None = None  # the real control plane's admin kubeconfig
    emulator: object | None = None  # the EmulatedCluster, for tests that reach into it

    def api(self) -> client.ApiClient:
        if self.kubeconfig is not None:
            return config.new_client_from_config(str(self.kubeconfig))
        from bigk.kube.client import api_client

        return api_client(server=self.url)

    def service_kwargs(self) -> dict[str, str]:
        """ServiceConfig fields that point `bigk serve` at this cluster."""
        return {"kubeconfig": str(self.kubeconfig)} if self.kubeconfig is not None else {"kube_server": self.url}

    def cli_args(self) -> list[str]:
        """`bigk serve` options that point it at this cluster."""
        return ["--kubeconfig", str(self.kubeconfig)] if self.kubeconfig is not None else ["--kube-server", self.url]


def cluster_params() -> list[object]:
    """Parameters for a `cluster` fixture: every suite that takes it runs on both clusters."""
    return ["emulated", pytest.param("real", marks=pytest.mark.cluster)]


def real_cluster_under_test(request: pytest.FixtureRequest) -> Iterator[ClusterUnderTest]:
    """The real control plane as a ClusterUnderTest; the namespaces tests use are emptied afterwards."""
    plane: RealCluster = request.getfixturevalue("control_plane")
    request.getfixturevalue("real_nodes")
    under = ClusterUnderTest("real", kubeconfig=plane.kubeconfig)
    try:
        yield under
    finally:
        clean_namespace(plane.api(), "default")
