"""The shared scenarios against a real cluster (kind, k3d, ...): run with `-m cluster` and KUBECONFIG set.

Pods use scheduler name `bigk-contract` (so an installed bigk never competes) and
the pause image; each run works in its own namespace, deleted afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from kubernetes import client

from bigk.kube.client import api_client
from tests.kube import scenarios
from tests.kube.harness import Harness, unique

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="needs KUBECONFIG pointing at a real cluster"),
]


@pytest.fixture
def cluster_harness() -> Iterator[Harness]:
    api = api_client(kubeconfig=os.environ["KUBECONFIG"])
    core = client.CoreV1Api(api)
    namespace = unique("bigk-contract")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    h = Harness(api, namespace=namespace, scheduler_name="bigk-contract", image="registry.k8s.io/pause:3.9",
                timeout=60.0)
    try:
        yield h
    finally:
        h.close()
        core.delete_namespace(namespace)


@pytest.mark.parametrize("scenario", scenarios.ALL, ids=lambda f: f.__name__)
def test_scenario_on_real_cluster(cluster_harness: Harness, scenario: object) -> None:
    scenario(cluster_harness)  # type: ignore[operator]
