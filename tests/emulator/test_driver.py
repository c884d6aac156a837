"""The simulated Spark driver: executors in batches, shaped by the Spark conf, replaced, collected, ended."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from bigk.emulator import EmulatedCluster
from bigk.emulator.api import CONFIGMAPS, PODS
from bigk.emulator.store import WatchEvent
from tests.emulator.conftest import pod as must_pod
from tests.emulator.conftest import pod_body, small_nodes

DURATION = "bigk.io/expected-duration-seconds"


@pytest.fixture
def tenth() -> Iterator[EmulatedCluster]:
    """Simulation at a tenth of real time (batch delays stay measurable)."""
    with EmulatedCluster(small_nodes(), time_scale=0.1, gpu_readings=False) as cluster:
        yield cluster


def driver_body(name: str, conf: dict[str, str], *, duration: str = "5", node: str = "cpu-0",
                extra: dict[str, str] | None = None) -> dict:
    body = pod_body(name, node=node, labels={"spark-role": "driver", "spark-app-selector": f"spark-{name}",
                                             "spark-app-name": name, "bigk.io/queue": "etl"},
                    annotations={DURATION: duration, "bigk.io/sim-spark-conf": json.dumps(conf), **(extra or {})})
    return body


def executors(cluster: EmulatedCluster, app: str) -> list[dict]:
    items, _ = cluster.store.objects(PODS.key)
    return [p for p in items if p["metadata"]["labels"].get("spark-app-selector") == app
            and p["metadata"]["labels"].get("spark-role") == "executor"]


def bind_all(cluster: EmulatedCluster, app: str, node: str = "cpu-1") -> int:
    bound = 0
    for pod in executors(cluster, app):
        if not pod["spec"].get("nodeName"):
            cluster.api.bind("default", pod["metadata"]["name"], {"target": {"name": node}})
            bound += 1
    return bound


def test_executors_are_created_in_batches(tenth: EmulatedCluster) -> None:
    created: dict[int, float] = {}

    def record(key: str, event: WatchEvent) -> None:
        labels = event.obj["metadata"].get("labels") or {}
        if key == "pods" and event.type == "ADDED" and labels.get("spark-role") == "executor":
            created[int(labels["spark-exec-id"])] = time.monotonic()

    tenth.store.subscribe(record)
    conf = {"spark.executor.instances": "12", "spark.kubernetes.allocation.batch.size": "5",
            "spark.kubernetes.allocation.batch.delay": "3s"}
    tenth.api.create(PODS, "default", driver_body("etl", conf))
    tenth.wait_for(lambda: len(created) == 12, timeout=10)
    batches = [[created[i] for i in range(1, 6)], [created[i] for i in range(6, 11)], [created[11], created[12]]]
    for batch in batches:
        assert max(batch) - min(batch) < 0.1  # one batch at a time
    assert min(batches[1]) - max(batches[0]) >= 0.2  # 3 s × 0.1 between batches
    assert min(batches[2]) - max(batches[1]) >= 0.2


def test_executor_pods_follow_the_spark_conf(sim: EmulatedCluster) -> None:
    template = {"metadata": {"labels": {"from-template": "yes"}},
                "spec": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                         "containers": [{"name": "exec", "image": "ignored"}]}}
    conf = {
        "spark.executor.instances": "2",
        "spark.executor.cores": "4",
        "spark.executor.memory": "8g",
        "spark.executor.resource.gpu.amount": "1",
        "spark.kubernetes.scheduler.name": "bigk",
        "spark.kubernetes.container.image": "apache/spark:4.0.0",
        "spark.kubernetes.executor.label.team": "ml",
        "spark.kubernetes.executor.annotation.bigk.io/gpu-memory-mib": "20000",
        "spark.kubernetes.node.selector.bigk.io/pool": "gpu-a100",
    }
    sim.api.create(PODS, "default", driver_body("train", conf, extra={
        "bigk.io/sim-executor-template": json.dumps(template)}))
    sim.wait_for(lambda: len(executors(sim, "spark-train")) == 2, timeout=5)
    pod = sorted(executors(sim, "spark-train"), key=lambda p: p["metadata"]["name"])[0]
    meta, spec = pod["metadata"], pod["spec"]
    assert meta["name"] == "train-exec-1"
    assert meta["labels"]["spark-exec-id"] == "1"
    assert meta["labels"]["spark-app-name"] == "train"
    assert meta["labels"]["team"] == "ml" and meta["labels"]["from-template"] == "yes"
    assert meta["labels"]["bigk.io/queue"] == "etl"  # annotation-described drivers pass bigk labels on
    assert meta["annotations"]["bigk.io/gpu-memory-mib"] == "20000"
    driver = must_pod(sim, "train")
    assert meta["ownerReferences"] == [{"apiVersion": "v1", "kind": "Pod", "name": "train",
                                        "uid": driver["metadata"]["uid"], "controller": True}]
    assert spec["schedulerName"] == "bigk"
    assert spec["nodeSelector"] == {"bigk.io/pool": "gpu-a100"}
    assert spec["tolerations"][0]["key"] == "nvidia.com/gpu"
    container = spec["containers"][0]
    assert container["name"] == "exec" and container["image"] == "apache/spark:4.0.0"
    assert container["resources"]["requests"]["cpu"] == "4"
    assert container["resources"]["requests"]["memory"] == "9011Mi"  # 8192 + max(0.1 × 8192, 384)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["status"]["phase"] == "Pending" and not spec.get("nodeName")


def test_driver_succeeds_after_its_executors_ran_and_removes_them(sim: EmulatedCluster) -> None:
    sim.api.create(PODS, "default", driver_body("etl", {"spark.executor.instances": "3"}, duration="4"))
    sim.wait_for(lambda: len(executors(sim, "spark-etl")) == 3, timeout=5)
    time.sleep(0.4)  # longer than the driver's 4 s × 0.05: nothing runs, so it waits
    assert must_pod(sim, "etl")["status"]["phase"] == "Running"
    assert bind_all(sim, "spark-etl") == 3
    sim.wait_for_phase("etl", "Succeeded", timeout=5)
    sim.wait_for(lambda: executors(sim, "spark-etl") == [], timeout=5)


def test_deleted_driver_takes_its_executors(sim: EmulatedCluster) -> None:
    sim.api.create(PODS, "default", driver_body("gone", {"spark.executor.instances": "2"}, duration="1000"))
    sim.wait_for(lambda: len(executors(sim, "spark-gone")) == 2, timeout=5)
    bind_all(sim, "spark-gone")
    sim.api.delete(PODS, "default", "gone", {"gracePeriodSeconds": 0})
    sim.wait_for(lambda: executors(sim, "spark-gone") == [], timeout=5)


def test_evicted_executor_is_replaced_with_a_new_id(sim: EmulatedCluster) -> None:
    sim.api.create(PODS, "default", driver_body("long", {"spark.executor.instances": "2"}, duration="1000"))
    sim.wait_for(lambda: len(executors(sim, "spark-long")) == 2, timeout=5)
    bind_all(sim, "spark-long")
    sim.api.evict("default", "long-exec-1", {"deleteOptions": {"gracePeriodSeconds": 0}})

    def ids() -> set[str]:
        return {p["metadata"]["labels"]["spark-exec-id"] for p in executors(sim, "spark-long")}

    sim.wait_for(lambda: ids() == {"2", "3"}, timeout=5)


def test_too_many_failed_executors_fail_the_driver(sim: EmulatedCluster) -> None:
    conf = {"spark.executor.instances": "1", "spark.executor.maxNumFailures": "2"}
    sim.api.create(PODS, "default", driver_body("flaky", conf, duration="1000"))
    failed_ids: set[str] = set()
    deadline = time.monotonic() + 10
    while must_pod(sim, "flaky")["status"]["phase"] != "Failed" and time.monotonic() < deadline:
        bind_all(sim, "spark-flaky")
        for pod in executors(sim, "spark-flaky"):
            if pod["status"].get("phase") == "Running":  # the executor's JVM dies
                failed_ids.add(pod["metadata"]["labels"]["spark-exec-id"])
                sim.kubelet.finish("default", pod["metadata"]["name"], pod["metadata"]["uid"], succeeded=False)
        time.sleep(0.02)
    failed = must_pod(sim, "flaky")
    assert failed["status"]["phase"] == "Failed"
    assert "executor failures" in failed["status"]["message"]
    assert failed_ids == {"1", "2", "3"}  # each failure was replaced until the limit


def test_conf_is_read_from_the_spark_submit_configmap(sim: EmulatedCluster) -> None:
    properties = "\n".join([
        "#Java properties built from Kubernetes config map",
        "spark.app.name=nightly-etl",
        "spark.app.id=spark-0123",
        "spark.executor.instances=3",
        "spark.kubernetes.allocation.batch.size=2",
        "spark.kubernetes.scheduler.name=bigk",
        "spark.kubernetes.executor.podNamePrefix=nightly-etl-7f3a",
        "spark.master=k8s\\://http\\://127.0.0.1\\:6443",
    ])
    sim.api.create(CONFIGMAPS, "default", {"metadata": {"name": "spark-drv-abc-conf-map"},
                                           "data": {"spark.properties": properties}})
    body = pod_body("nightly-etl-7f3a-driver", node="cpu-0", scheduler="bigk",
                    labels={"spark-role": "driver", "spark-app-selector": "spark-0123"},
                    annotations={DURATION: "1000"})
    body["spec"]["volumes"] = [{"name": "spark-conf-volume-driver", "configMap": {"name": "spark-drv-abc-conf-map"}}]
    sim.api.create(PODS, "default", body)
    sim.wait_for(lambda: len(executors(sim, "spark-0123")) == 3, timeout=5)
    names = sorted(p["metadata"]["name"] for p in executors(sim, "spark-0123"))
    assert names == ["nightly-etl-7f3a-exec-1", "nightly-etl-7f3a-exec-2", "nightly-etl-7f3a-exec-3"]
    assert {p["spec"]["schedulerName"] for p in executors(sim, "spark-0123")} == {"bigk"}
    assert {p["metadata"]["labels"]["spark-app-name"] for p in executors(sim, "spark-0123")} == {"nightly-etl"}
