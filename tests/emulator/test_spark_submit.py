"""pyspark's real spark-submit in cluster mode against the emulated cluster."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bigk.emulator import EmulatedCluster
from tests.emulator.conftest import small_nodes

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(shutil.which("java") is None, reason="spark-submit needs Java 17"),
]


def spark_submit() -> tuple[str, dict[str, str]]:
    import pyspark

    home = os.path.dirname(pyspark.__file__)
    env = dict(os.environ, SPARK_HOME=home, PATH=f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '')}")
    return os.path.join(home, "bin", "spark-submit"), env


def test_cluster_mode_submission_creates_driver_service_and_configmap(tmp_path: Path) -> None:
    template = tmp_path / "executor.yaml"
    template.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  labels: {from-template: 'yes'}\n"
                        "spec:\n  containers: [{name: spark-executor, image: ignored}]\n")
    with EmulatedCluster(small_nodes(), time_scale=0.05, gpu_readings=False) as cluster:
        script, env = spark_submit()
        result = subprocess.run(
            [script, "--master", f"k8s://{cluster.url}", "--deploy-mode", "cluster", "--name", "pi",
             "--conf", "spark.kubernetes.submission.waitAppCompletion=false",
             "--conf", "spark.kubernetes.scheduler.name=bigk",
             "--conf", "spark.kubernetes.container.image=apache/spark:4.0.0",
             "--conf", "spark.executor.instances=2",
             "--conf", f"spark.kubernetes.executor.podTemplateFile={template}",
             "local:///opt/spark/examples/src/main/python/pi.py"],
            capture_output=True, text=True, env=env, timeout=180, check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        pods, _ = cluster.store.objects("pods")
        drivers = [p for p in pods if p["metadata"]["labels"].get("spark-role") == "driver"]
        assert len(drivers) == 1
        driver = drivers[0]
        assert driver["spec"]["schedulerName"] == "bigk"
        app_id = driver["metadata"]["labels"]["spark-app-selector"]
        prefix = driver["metadata"]["name"].removesuffix("-driver")
        assert cluster.store.get("services", "default", f"{prefix}-driver-svc") is not None
        assert cluster.store.get("networkpolicies.networking.k8s.io", "default", f"{prefix}-policy") is not None
        configmaps, _ = cluster.store.objects("configmaps")
        conf_maps = [c for c in configmaps if c["metadata"]["name"].startswith("spark-drv-")]
        assert len(conf_maps) == 1
        assert "spark.kubernetes.scheduler.name=bigk" in conf_maps[0]["data"]["spark.properties"]
        # bind the driver as bigk would: the simulated driver reads its configmaps and asks for 2 executors
        cluster.api.bind("default", driver["metadata"]["name"], {"target": {"name": "cpu-0"}})

        def executors() -> list[dict]:
            items, _ = cluster.store.objects("pods")
            return [p for p in items if p["metadata"]["labels"].get("spark-role") == "executor"]

        cluster.wait_for(lambda: len(executors()) == 2, timeout=10)
        for pod in executors():
            assert pod["metadata"]["labels"]["spark-app-selector"] == app_id
            assert pod["metadata"]["labels"]["from-template"] == "yes"
            assert pod["spec"]["schedulerName"] == "bigk"


@pytest.mark.slow
def test_waiting_submission_follows_the_driver_to_completion() -> None:
    """spark-submit waits (fabric8 watches the driver over WebSocket) until the simulated driver succeeds."""
    import threading

    with EmulatedCluster(small_nodes(), time_scale=0.02, gpu_readings=False) as cluster:
        stop = threading.Event()

        def bind_everything() -> None:  # stands in for bigk
            while not stop.is_set():
                pods, _ = cluster.store.objects("pods")
                for pod in pods:
                    if not pod["spec"].get("nodeName"):
                        with contextlib.suppress(Exception):
                            cluster.api.bind("default", pod["metadata"]["name"], {"target": {"name": "cpu-0"}})
                stop.wait(0.05)

        binder = threading.Thread(target=bind_everything, daemon=True)
        binder.start()
        script, env = spark_submit()
        try:
            result = subprocess.run(
                [script, "--master", f"k8s://{cluster.url}", "--deploy-mode", "cluster", "--name", "pi",
                 "--conf", "spark.kubernetes.submission.waitAppCompletion=true",
                 "--conf", "spark.kubernetes.scheduler.name=bigk",
                 "--conf", "spark.kubernetes.container.image=apache/spark:4.0.0",
                 "--conf", "spark.executor.instances=3",
                 "local:///opt/spark/examples/src/main/python/pi.py"],
                capture_output=True, text=True, env=env, timeout=180, check=False,
            )
        finally:
            stop.set()
        assert result.returncode == 0, result.stderr[-3000:]
        assert "termination reason: Completed" in result.stderr
        pods, _ = cluster.store.objects("pods")
        assert [p["status"]["phase"] for p in pods if p["metadata"]["labels"].get("spark-role") == "driver"] == [
            "Succeeded"]
