"""bigk.metrics: what an operator reads on /metrics after the scheduler updates it."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from bigk import metrics
from bigk.cluster.model import Gpu, GpuReading, Node, PodRequest, Queue
from bigk.cluster.state import ClusterState, Placement

NOW = 1_000_000.0


def _value(name: str, **labels: str) -> float | None:
    return metrics.REGISTRY.get_sample_value(name, labels)


def _of_cluster(name: str, cluster: str = "default", **labels: str) -> float | None:
    """A scheduler, pool, per-GPU or queue figure: those carry the cluster (one cluster: "default")."""
    return _value(name, cluster=cluster, **labels)


def _gpu_node(name: str, pool: str, gpus: int, util: float | None = None, healthy: bool = True,
              cpu: int = 32000) -> Node:
    reading = None if util is None else GpuReading(40000, util, 50.0, healthy, NOW - 5)
    return Node(name, cpu, 256000, gpus=[Gpu(i, "A100", 81920, f"GPU-{name}-{i}", reading) for i in range(gpus)],
                labels={"bigk.io/pool": pool})


def test_render_is_parseable_text_with_build_info() -> None:
    families = {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}
    assert families["bigk_build_info"].samples[0].labels["version"]
    assert "bigk_scheduler_cycle_duration_seconds" in families
    assert metrics.CONTENT_TYPE.startswith("text/plain")


def test_bind_outcomes_are_counted_with_normalised_reasons() -> None:
    before_attempts = _of_cluster("bigk_scheduler_bind_attempts_total") or 0.0
    before_conflict = _of_cluster("bigk_scheduler_bind_failures_total", reason="node_gone") or 0.0
    metrics.record_bind(True)
    metrics.record_bind(False, "Node Gone!")
    assert _of_cluster("bigk_scheduler_bind_attempts_total") == before_attempts + 2
    assert _of_cluster("bigk_scheduler_bind_failures_total", reason="node_gone") == before_conflict + 1


def test_pending_queues_that_drain_disappear() -> None:
    metrics.set_pending({"etl": 3, "ml": 1}, {"etl": 1}, {"etl": 120.0})
    assert _of_cluster("bigk_scheduler_pending_pods", queue="etl") == 3
    assert _of_cluster("bigk_scheduler_oldest_pending_gang_age_seconds", queue="etl") == 120
    metrics.set_pending({"ml": 2}, {})
    assert _of_cluster("bigk_scheduler_pending_pods", queue="etl") is None
    assert _of_cluster("bigk_scheduler_pending_pods", queue="ml") == 2


def test_allocated_but_idle_counts_only_fresh_low_utilisation_allocations() -> None:
    busy = _gpu_node("busy", "gpu-a100", 2, util=90.0)
    idle = _gpu_node("idle", "gpu-a100", 2, util=1.0)
    quiet = _gpu_node("quiet", "gpu-a100", 2, util=None)  # no reading: unknown, not idle
    state = ClusterState([busy, idle, quiet])
    whole = PodRequest(1000, 1000, gpu_count=1, gpu_milli=1000)
    half = PodRequest(1000, 1000, gpu_count=1, gpu_milli=500, gpu_memory_mib=1000)
    state.allocate("a", whole, state.placement_for(0, whole, (0,)))
    state.allocate("b", whole, state.placement_for(1, whole, (0,)))
    state.allocate("c", half, state.placement_for(1, half, (1,)))
    state.allocate("d", whole, state.placement_for(2, whole, (0,)))
    figures = metrics.update_cluster(state, NOW)
    assert figures.idle_gpus_by_pool == {"gpu-a100": 1.5}
    assert _of_cluster("bigk_gpus_allocated_idle", pool="gpu-a100") == 1.5
    assert _of_cluster("bigk_gpu_allocated_milli", node="idle", gpu="1", pool="gpu-a100", model="A100") == 500
    assert _of_cluster("bigk_gpu_utilization_percent", node="busy", gpu="0", pool="gpu-a100", model="A100") == 90
    assert _of_cluster("bigk_gpu_utilization_percent", node="quiet", gpu="0", pool="gpu-a100", model="A100") is None
    free = _of_cluster("bigk_gpu_memory_free_bytes", node="idle", gpu="0", pool="gpu-a100", model="A100")
    assert free == 40000 * 2**20
    assert _of_cluster("bigk_gpu_reading_age_seconds", node="idle", gpu="0", pool="gpu-a100", model="A100") == 5
    # the half-used GPU leaves a fragment no whole-GPU pod can use
    assert _of_cluster("bigk_gpus_stranded", pool="gpu-a100", reason="partial_gpu") == 0.5
    assert _of_cluster("bigk_pool_allocated", pool="gpu-a100", resource="gpu") == 3.5
    assert _of_cluster("bigk_pool_capacity", pool="gpu-a100", resource="gpu") == 6
    assert _of_cluster("bigk_pool_capacity", pool="gpu-a100", resource="memory") == 3 * 256000 * 2**20


def test_stale_readings_do_not_count_as_idle() -> None:
    node = _gpu_node("n", "p", 1, util=0.0)
    state = ClusterState([node])
    req = PodRequest(1000, 1000, gpu_count=1, gpu_milli=1000)
    state.allocate("a", req, state.placement_for(0, req, (0,)))
    figures = metrics.update_cluster(state, NOW + 3600)
    assert figures.idle_gpus_by_pool == {"p": 0.0}
    assert _of_cluster("bigk_gpu_utilization_percent", node="n", gpu="0", pool="p", model="A100") is None


def test_unhealthy_and_host_full_gpus_are_stranded() -> None:
    sick = _gpu_node("sick", "p", 2, util=0.0, healthy=False)
    full = _gpu_node("full", "p", 2, util=0.0, cpu=1000)
    state = ClusterState([sick, full])
    cpu_hog = PodRequest(1000, 1000)
    state.allocate("hog", cpu_hog, Placement(1))
    metrics.update_cluster(state, NOW)
    assert _of_cluster("bigk_gpus_stranded", pool="p", reason="unhealthy") == 2
    assert _of_cluster("bigk_gpus_stranded", pool="p", reason="host_full") == 2
    assert _of_cluster("bigk_gpu_healthy", node="sick", gpu="1", pool="p", model="A100") == 0
    assert _of_cluster("bigk_gpu_healthy", node="full", gpu="1", pool="p", model="A100") == 1


def test_queue_usage_is_exported_in_base_units_against_guarantee_and_ceiling() -> None:
    queues = [Queue("etl", guaranteed={"gpu": 2000, "cpu": 8000}, maximum={"gpu": 4000}), Queue("adhoc")]
    metrics.update_queues(queues, {"etl": {"gpu": 3000, "cpu": 4000, "memory": 1024}})
    assert _of_cluster("bigk_queue_allocated", queue="etl", resource="gpu") == 3
    assert _of_cluster("bigk_queue_allocated", queue="etl", resource="cpu") == 4
    assert _of_cluster("bigk_queue_allocated", queue="etl", resource="memory") == 1024 * 2**20
    assert _of_cluster("bigk_queue_allocated", queue="adhoc", resource="gpu") == 0
    assert _of_cluster("bigk_queue_guaranteed", queue="etl", resource="gpu") == 2
    assert _of_cluster("bigk_queue_max", queue="etl", resource="gpu") == 4
    assert _of_cluster("bigk_queue_max", queue="adhoc", resource="gpu") is None


def test_spec_errors_clear_once_the_file_is_fixed() -> None:
    metrics.set_spec_load_errors({"jobspecs/bad.yaml": 2, "jobspecs/good.yaml": 0})
    assert _value("bigk_spec_load_errors", file="jobspecs/bad.yaml") == 2
    assert _value("bigk_spec_load_errors", file="jobspecs/good.yaml") is None
    metrics.set_spec_load_errors({"jobspecs/bad.yaml": 0})
    assert _value("bigk_spec_load_errors", file="jobspecs/bad.yaml") is None


def test_run_metrics() -> None:
    before = _value("bigk_runs_total", job_name="nightly", state="succeeded") or 0.0
    metrics.record_run_state("nightly", "Succeeded")
    metrics.observe_run_finished("nightly", "succeeded", 400.0)
    metrics.observe_queue_wait("etl", 12.0)
    metrics.set_runs_current({("nightly", "running"): 1})
    assert _value("bigk_runs_total", job_name="nightly", state="succeeded") == before + 1
    assert (_value("bigk_run_duration_seconds_bucket", job_name="nightly", state="succeeded", le="600.0") or 0) >= 1
    assert _value("bigk_runs_current", job_name="nightly", state="running") == 1


def test_no_pod_or_run_names_and_no_labels_prometheus_would_rename() -> None:
    for registry in (metrics.REGISTRY, metrics.AGENT_REGISTRY):
        for family in registry.collect():
            for sample in family.samples:
                # pod/run/gang names explode cardinality; job/instance are overwritten by Prometheus at scrape time
                assert not {"pod", "run", "gang", "uuid", "job", "instance"} & set(sample.labels), family.name


def test_rendered_gpu_series_parse_and_match_the_registry_even_with_odd_names() -> None:
    odd = Node('gpu"1\\x', 8000, 64000, gpus=[Gpu(0, "T4 16GB", 15360, reading=GpuReading(100, 7.5, 40.0, True, NOW))],
               labels={"bigk.io/pool": "t4"})
    metrics.update_cluster(ClusterState([odd]), NOW)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(metrics.render().decode()) for s in f.samples
               if s.name.startswith("bigk_gpu_")}
    labels = (("cluster", "default"), ("gpu", "0"), ("model", "T4 16GB"), ("node", 'gpu"1\\x'), ("pool", "t4"))
    assert samples[("bigk_gpu_utilization_percent", labels)] == 7.5
    assert samples[("bigk_gpu_memory_total_bytes", labels)] == 15360 * 2**20
    healthy = [k for k in samples if k[0] == "bigk_gpu_healthy" and ("cluster", "default") in k[1]]
    assert len(healthy) == 1  # the previous update's GPUs are gone
    assert _value("bigk_gpu_utilization_percent", **dict(labels)) == 7.5


def test_each_cluster_replaces_only_its_own_series() -> None:
    """Several clusters: each loop refreshes its own pending, pool and per-GPU series and leaves the others'."""
    metrics.set_pending({"etl": 3}, {"etl": 1}, cluster="onprem")
    metrics.set_pending({"ml": 2}, {"ml": 1}, cluster="cloud")
    metrics.update_cluster(ClusterState([_gpu_node("a", "gpu-a100", 2)]), NOW, cluster="onprem")
    metrics.update_cluster(ClusterState([_gpu_node("b", "gpu-h100", 1)]), NOW, cluster="cloud")
    assert _of_cluster("bigk_scheduler_pending_pods", "onprem", queue="etl") == 3
    assert _of_cluster("bigk_scheduler_pending_pods", "cloud", queue="ml") == 2
    assert _of_cluster("bigk_pool_capacity", "onprem", pool="gpu-a100", resource="gpu") == 2
    assert _of_cluster("bigk_pool_capacity", "cloud", pool="gpu-h100", resource="gpu") == 1

    metrics.set_pending({}, {}, cluster="onprem")  # onprem's queue drained: cloud's figures stay
    metrics.update_cluster(ClusterState([_gpu_node("c", "gpu-a100", 4)]), NOW, cluster="onprem")
    assert _of_cluster("bigk_scheduler_pending_pods", "onprem", queue="etl") is None
    assert _of_cluster("bigk_scheduler_pending_pods", "cloud", queue="ml") == 2
    assert _of_cluster("bigk_gpu_allocated_milli", "onprem", node="a", gpu="0", pool="gpu-a100", model="A100") is None
    assert _of_cluster("bigk_gpu_allocated_milli", "onprem", node="c", gpu="3", pool="gpu-a100", model="A100") == 0
    assert _of_cluster("bigk_gpu_allocated_milli", "cloud", node="b", gpu="0", pool="gpu-h100", model="A100") == 0
    text = metrics.render().decode()
    assert 'bigk_gpu_healthy{cluster="cloud",node="b",gpu="0",pool="gpu-h100",model="A100"} 1.0' in text
    assert 'bigk_gpu_healthy{cluster="onprem",node="a",' not in text


def test_gpu_findings_carry_their_cluster_and_each_cluster_replaces_its_own() -> None:
    """Each cluster's GPU watch sets its own findings series (one cluster: `default`) and leaves the others'."""
    metrics.set_gpu_findings({("etl", "nightly"): 2.0}, {"a100": 1.0}, {"a100": 0.0}, {"a100": 0.0}, cluster="onprem")
    metrics.set_gpu_findings({("ml", "train"): 1.0}, {"h100": 0.0}, {"h100": 1.0}, {"h100": 1.0}, cluster="cloud")
    assert _of_cluster("bigk_gpus_idle", "onprem", queue="etl", job_name="nightly") == 2
    assert _of_cluster("bigk_gpus_idle", "cloud", queue="ml", job_name="train") == 1
    assert _of_cluster("bigk_gpus_busy_without_bigk", "onprem", pool="a100") == 1
    assert _of_cluster("bigk_gpus_over_share", "cloud", pool="h100") == 1
    assert _of_cluster("bigk_gpu_device_conflicts", "cloud", pool="h100") == 1

    metrics.set_gpu_findings({}, {"a100": 0.0}, {"a100": 0.0}, {"a100": 0.0}, cluster="onprem")  # onprem's run ended
    assert _of_cluster("bigk_gpus_idle", "onprem", queue="etl", job_name="nightly") is None
    assert _of_cluster("bigk_gpus_idle", "cloud", queue="ml", job_name="train") == 1
    assert _of_cluster("bigk_gpus_busy_without_bigk", "onprem", pool="a100") == 0
    metrics.set_gpu_findings({("etl", "hourly"): 1.0}, {}, {}, {})  # one cluster: `default`
    assert 'bigk_gpus_idle{cluster="default",job_name="hourly",queue="etl"} 1.0' in metrics.render().decode()
