"""The backend against the emulated cluster when the API misbehaves: errors, drops, expired watches."""

from __future__ import annotations

import time

from kubernetes import client

from bigk.cluster import labels as L
from bigk.emulator import EmulatedCluster
from bigk.kube.cache import ClusterCache
from bigk.kube.informer import CallbackHandler, Informer
from tests.kube.harness import Harness, unique

GPU_TOLERATION = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_gpu_pods_get_disjoint_assigned_gpus(harness: Harness) -> None:
    h = harness
    loop = h.loop()
    h.pod("untolerated", gpus=2)
    h.wait(lambda: f"{h.namespace}/untolerated" in loop.explanations(), what="untolerated GPU pod explained")
    assert "taint" in loop.explanations()[f"{h.namespace}/untolerated"]
    for name in ("train-a", "train-b"):
        h.pod(name, gpus=2, tolerations=GPU_TOLERATION)
    h.wait(lambda: h.node_of("train-a") == "gpu-0" and h.node_of("train-b") == "gpu-0", what="GPU pods bound")
    indices = []
    for name in ("train-a", "train-b"):
        pod = h.read(name)
        assert pod is not None and pod.metadata is not None
        indices += [int(i) for i in (pod.metadata.annotations or {})[L.ASSIGNED_GPUS_ANNOTATION].split(",")]
    assert sorted(indices) == [0, 1, 2, 3]
    assert h.node_of("untolerated") == ""


def test_binds_survive_server_errors_throttling_and_dropped_connections(emulator: EmulatedCluster,
                                                                         harness: Harness) -> None:
    h = harness
    emulator.faults.add("POST", r"/binding$", 500, count=2)
    emulator.faults.add("POST", r"/binding$", 429, count=1)
    emulator.faults.add("POST", r"/binding$", 0, count=1)
    emulator.faults.add("POST", r"/events$", 503, count=1)
    loop = h.loop()
    for i in range(4):
        h.pod(f"p{i}")
    h.wait(lambda: all(h.node_of(f"p{i}") for i in range(4)), timeout=20, what="all pods bound")
    assert emulator.faults.pending == 0
    assert loop.stats.binds == 4 and loop.stats.bind_failed == 0
    assert loop.events.flush(10)
    for i in range(4):
        assert h.reasons_for(f"p{i}").count("Scheduled") == 1  # one bind, one event, despite the retries


def test_informers_survive_failing_lists_and_watches(emulator: EmulatedCluster, harness: Harness) -> None:
    h = harness
    emulator.faults.add("GET", r"^/api/v1/pods$", 500, count=3)
    emulator.faults.add("GET", r"^/api/v1/nodes$", 0, count=6)  # more than urllib3 retries on its own
    loop = h.loop()
    h.pod("p")
    h.wait(lambda: h.node_of("p"), timeout=20, what="pod bound")
    assert loop.pod_informer.stats.errors >= 1 and loop.node_informer.stats.errors >= 1


def test_dropped_watch_resumes_from_last_version_without_relisting(emulator: EmulatedCluster,
                                                                   harness: Harness) -> None:
    h = harness
    loop = h.loop()
    h.pod("before")
    h.wait(lambda: h.node_of("before"), what="first pod bound")
    assert emulator.drop_watches() >= 2
    h.pod("after")
    h.wait(lambda: h.node_of("after"), what="pod created after the drop bound")
    assert loop.pod_informer.stats.lists == 1
    assert loop.pod_informer.stats.watches >= 2


def test_expired_watch_relists_and_forgets_what_was_deleted_meanwhile(emulator: EmulatedCluster,
                                                                      harness: Harness) -> None:
    h = harness
    loop = h.loop()
    h.pod("doomed")
    h.wait(lambda: h.node_of("doomed"), what="pod bound")
    blocked = emulator.faults.add("GET", r"^/api/v1/pods$", 500, count=10_000, query_regex=r"watch=")
    emulator.drop_watches()
    h.wait(lambda: blocked.hits >= 1, what="pod watch failing")
    h.core.delete_namespaced_pod("doomed", h.namespace)
    for i in range(3):
        h.pod(f"new-{i}")
    emulator.store.compact()  # the informer's resourceVersion is now too old: 410 Gone
    emulator.faults.clear()
    h.wait(lambda: all(h.node_of(f"new-{i}") for i in range(3)), timeout=20, what="pods after relist bound")
    assert loop.pod_informer.stats.relists_gone >= 1
    assert f"{h.namespace}/doomed" not in {p.key for p in loop.cache.pods()}


def test_watch_timeouts_and_bookmarks_keep_the_cache_current(emulator: EmulatedCluster, harness: Harness) -> None:
    cache = ClusterCache()
    core = client.CoreV1Api(harness.api)
    informer = Informer("nodes", core.list_node, CallbackHandler(cache.replace_nodes, cache.upsert_node,
                                                                 cache.delete_node), watch_timeout_s=1).start()
    try:
        assert informer.wait_for_sync(10)
        time.sleep(2.5)
        core.patch_node("cpu-0", {"metadata": {"labels": {"team": "etl"}}})
        harness.wait(lambda: next(n for n in cache.nodes() if n.name == "cpu-0").labels.get("team") == "etl",
                     what="label change seen")
        assert informer.stats.watches >= 3  # each 1 s watch ended and was resumed
        assert informer.stats.bookmarks >= 1
        assert informer.stats.lists == 1 and informer.stats.relists_gone == 0
    finally:
        informer.stop()


def test_junk_annotations_never_stop_scheduling(harness: Harness) -> None:
    h = harness
    loop = h.loop()
    h.core.patch_node("cpu-0", {"metadata": {"annotations": {L.GPU_READINGS_ANNOTATION: "{not json"}}})
    h.pod("odd", annotations={L.PRIORITY_ANNOTATION: "urgent", L.GPU_MILLI_ANNOTATION: "x",
                              L.ASSIGNED_GPUS_ANNOTATION: "?"})
    h.pod("broken", cpu="lots")  # cannot be translated: logged and skipped
    h.pod("good")
    h.wait(lambda: h.node_of("good") and h.node_of("odd"), what="pods bound")
    assert loop.cache.skipped_objects >= 1
    assert h.node_of("broken") == ""
    assert loop.stats.cycle_errors == 0


def test_leader_that_cannot_renew_steps_down_and_stops_binding(emulator: EmulatedCluster, harness: Harness) -> None:
    h = harness
    elector = h.elector(unique("bigk-test-lease")).start()
    h.wait(lambda: elector.is_leader, what="leadership")
    h.loop(elector=elector)
    h.pod("first")
    h.wait(lambda: h.node_of("first"), what="bind while leading")
    emulator.faults.add("*", r"/leases/", 500, count=1_000_000)
    h.wait(lambda: not elector.is_leader, timeout=elector.renew_deadline_s + 2, what="step down")
    h.pod("while-not-leading")
    time.sleep(1.0)
    assert h.node_of("while-not-leading") == ""
    emulator.faults.clear()
    h.wait(lambda: elector.is_leader, timeout=10, what="leadership regained")
    h.wait(lambda: h.node_of("while-not-leading"), what="bind after regaining leadership")


def test_namespaced_loop_schedules_only_its_namespace(harness: Harness) -> None:
    h = harness
    loop = h.loop(namespace="team-a")
    h.core.create_namespaced_pod("team-a", {"apiVersion": "v1", "kind": "Pod",  # type: ignore[arg-type]
                                            "metadata": {"name": "mine"},
                                            "spec": {"schedulerName": "bigk",
                                                     "containers": [{"name": "c", "image": "x"}]}})
    h.pod("not-mine")
    h.wait(lambda: (h.core.read_namespaced_pod("mine", "team-a").spec or client.V1PodSpec(containers=[])).node_name,
           what="pod in the loop's namespace bound")
    time.sleep(0.3)
    assert h.node_of("not-mine") == ""
    assert {p.namespace for p in loop.cache.pods()} == {"team-a"}
