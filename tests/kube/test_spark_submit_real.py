"""pyspark's real `spark-submit` (cluster mode) against the real kube-apiserver, with bigk scheduling.

spark-submit (fabric8 inside) reads the admin kubeconfig, POSTs the driver pod with
`schedulerName: bigk` and server-side applies the driver's Service, NetworkPolicy and conf
ConfigMap: the real API server must accept all of it. bigk's scheduling loop binds the driver;
the simulated kubelet runs it; the simulated Spark driver reads the conf ConfigMap that
spark-submit wrote and creates its executors (owned by the driver pod); bigk binds them as a
gang. Deleting the driver then lets kube-controller-manager's garbage collector delete the
executors, as on a real cluster.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from bigk.emulator.remote import SimulatedNodes
from bigk.kube.loop import SchedulerLoop
from bigk.scheduler import Scheduler
from tests.emulator.test_spark_submit import spark_submit
from tests.kube.harness import unique
from tests.realk8s import RealCluster

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.spark,
    pytest.mark.skipif(shutil.which("java") is None, reason="spark-submit needs Java 17 (.ci/run installs it)"),
]


@pytest.fixture
def namespace(control_plane: RealCluster, real_nodes: SimulatedNodes) -> Iterator[str]:
    core = client.CoreV1Api(control_plane.api())
    name = unique("spark-real")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_collection_namespaced_pod(name, grace_period_seconds=0)
    core.delete_namespace(name)


def _wait(predicate: object, timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()  # type: ignore[operator]
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_spark_submit_on_kube_apiserver_bigk_binds_driver_then_executors_and_gc_follows(
        control_plane: RealCluster, namespace: str, tmp_path: Path) -> None:
    api = control_plane.api()
    core = client.CoreV1Api(api)
    loop = SchedulerLoop(api, Scheduler("binpack"), scheduler_name="bigk", leader_election=False, interval_s=0.1)
    loop.start()
    try:
        script, env = spark_submit()
        env = dict(env, KUBECONFIG=str(control_plane.kubeconfig))
        master = api.configuration.host  # fabric8 takes the credentials from KUBECONFIG
        result = subprocess.run(
            [script, "--master", f"k8s://{master}", "--deploy-mode", "cluster", "--name", "pi",
             "--conf", "spark.kubernetes.submission.waitAppCompletion=false",
             "--conf", f"spark.kubernetes.namespace={namespace}",
             "--conf", "spark.kubernetes.scheduler.name=bigk",
             "--conf", "spark.kubernetes.container.image=apache/spark:4.0.0",
             "--conf", "spark.executor.instances=3",
             "--conf", "spark.kubernetes.executor.request.cores=500m",
             "--conf", "spark.kubernetes.driver.request.cores=500m",
             "--conf", "spark.kubernetes.driver.annotation.bigk.io/expected-duration-seconds=100000",
             "local:///opt/spark/examples/src/main/python/pi.py"],
            capture_output=True, text=True, env=env, timeout=180, check=False, cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr[-3000:]

        def pods(role: str) -> list[client.V1Pod]:
            return list(core.list_namespaced_pod(namespace, label_selector=f"spark-role={role}").items)

        drivers = pods("driver")
        assert len(drivers) == 1
        driver = drivers[0]
        assert driver.spec.scheduler_name == "bigk"
        prefix = driver.metadata.name.removesuffix("-driver")
        # what spark-submit server-side applied was accepted by the real API server
        assert core.read_namespaced_service(f"{prefix}-driver-svc", namespace) is not None
        policies = client.NetworkingV1Api(api).list_namespaced_network_policy(namespace).items
        assert [p.metadata.name for p in policies] == [f"{prefix}-policy"]
        conf_maps = [c for c in core.list_namespaced_config_map(namespace).items
                     if c.metadata.name.startswith("spark-drv-")]
        assert len(conf_maps) == 1
        managers = {m.manager for m in conf_maps[0].metadata.managed_fields or []}
        assert "fabric8" in managers  # server-side apply by spark-submit's client

        _wait(lambda: core.read_namespaced_pod(driver.metadata.name, namespace).spec.node_name, 30,
              "bigk to bind the driver")
        _wait(lambda: core.read_namespaced_pod(driver.metadata.name, namespace).status.phase == "Running", 30,
              "the simulated kubelet to run the driver")
        executors = _wait(lambda: (lambda ps: ps if len(ps) == 3 and all(p.spec.node_name for p in ps) else None)(
            pods("executor")), 60, "3 executors created by the driver and bound by bigk")
        for pod in executors:  # type: ignore[attr-defined]
            assert pod.spec.scheduler_name == "bigk"
            assert [o.uid for o in pod.metadata.owner_references] == [driver.metadata.uid]
        core.delete_namespaced_pod(driver.metadata.name, namespace)
        _wait(lambda: pods("executor") == [] and pods("driver") == [], 60,
              "kube-controller-manager's garbage collector to delete the executors with their driver")
    finally:
        loop.stop()
