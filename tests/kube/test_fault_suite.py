"""The control-plane fault scenarios (tests/kube/fault_scenarios.py) against the emulated cluster."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bigk.emulator import EmulatedCluster
from bigk.emulator.api import PODS
from bigk.kube.client import api_client
from tests.kube import fault_scenarios
from tests.kube.conftest import small_cluster
from tests.kube.harness import Harness


class EmulatedControlPlane:
    """Restarts mean a new emulated cluster on the same port: nothing survives but what is restored."""

    def __init__(self) -> None:
        self.cluster = self._new(0)

    @staticmethod
    def _new(port: int) -> EmulatedCluster:
        cluster = EmulatedCluster(small_cluster(), port=port, kubelet=False, spark_driver=False,
                                  gpu_readings=False, bookmark_interval=0.2)
        cluster.start()
        return cluster

    def restart(self, *, keep_state: bool, restore: list[dict[str, Any]] | None = None) -> None:
        assert not keep_state, "the emulator keeps nothing across a restart"
        port = self.cluster.port
        self.cluster.stop()
        self.cluster = self._new(port)
        for pod in restore or []:
            obj = {"apiVersion": "v1", "kind": "Pod", "spec": dict(pod["spec"]),
                   "metadata": {k: v for k, v in pod["metadata"].items()
                                if k in ("name", "namespace", "labels", "annotations")}}
            namespace = obj["metadata"]["namespace"]
            self.cluster.call(lambda obj=obj, ns=namespace: self.cluster.api.create(PODS, ns, obj))  # type: ignore[misc]

    def drop_watches(self) -> int:
        return self.cluster.drop_watches()

    def block_binds(self) -> None:
        self.cluster.faults.add("POST", r"/binding$", 0, count=1_000_000)


@pytest.fixture
def control_plane() -> Iterator[EmulatedControlPlane]:
    cp = EmulatedControlPlane()
    yield cp
    cp.cluster.stop()


@pytest.fixture
def fault_harness(control_plane: EmulatedControlPlane) -> Iterator[Harness]:
    h = Harness(api_client(server=control_plane.cluster.url), namespace="default")
    yield h
    h.close()


def test_state_loss(fault_harness: Harness, control_plane: EmulatedControlPlane) -> None:
    fault_scenarios.state_loss(fault_harness, control_plane)


def test_restart_mid_bind(fault_harness: Harness, control_plane: EmulatedControlPlane) -> None:
    fault_scenarios.restart_mid_bind(fault_harness, control_plane, control_plane.block_binds)


def test_network_drop_during_watch(fault_harness: Harness, control_plane: EmulatedControlPlane) -> None:
    fault_scenarios.network_drop(fault_harness, control_plane)
