"""The shared scenarios against the real control plane (tests/realk8s.py): kube-apiserver from `testenv/`,
or the cluster of BIGK_TEST_KUBECONFIG.

Pods use scheduler name `bigk-contract` (so an installed bigk never competes); each test
works in its own namespace, deleted afterwards. Nodes are bigk's simulated ones, kept by
ordinary API clients (`bigk.emulator.remote.SimulatedNodes`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from bigk.emulator.driver import SIM_DRIVER_ANNOTATION
from bigk.emulator.remote import SimulatedNodes
from tests.kube import scenarios
from tests.kube.harness import Harness, unique
from tests.realk8s import RealCluster

pytestmark = [pytest.mark.cluster]


@pytest.fixture
def cluster_harness(control_plane: RealCluster, real_nodes: SimulatedNodes) -> Iterator[Harness]:
    api = control_plane.api()
    core = client.CoreV1Api(api)
    namespace = unique("bigk-contract")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    h = Harness(api, namespace=namespace, scheduler_name="bigk-contract", image="registry.k8s.io/pause:3.10",
                timeout=30.0, pod_annotations={SIM_DRIVER_ANNOTATION: "false"})  # the scenarios play the drivers
    try:
        yield h
    finally:
        h.close()
        core.delete_collection_namespaced_pod(namespace, grace_period_seconds=0)
        core.delete_namespace(namespace)


@pytest.mark.parametrize("scenario", scenarios.ALL, ids=lambda f: f.__name__)
def test_scenario_on_real_cluster(cluster_harness: Harness, scenario: object) -> None:
    scenario(cluster_harness)  # type: ignore[operator]
