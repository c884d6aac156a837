"""ClusterState: filters and accounting never overcommit."""

import pytest

from bigk.cluster.config import load_cluster
from bigk.cluster.model import PodRequest, Toleration
from bigk.cluster.state import ClusterState, OvercommitError

GPU_TOL = (Toleration("nvidia.com/gpu", operator="Exists"),)


def _state() -> ClusterState:
    return ClusterState(load_cluster("jobspecs/cluster.yaml"))


def test_taints_keep_untolerated_pods_off_gpu_nodes() -> None:
    s = _state()
    cpu_only = s.static_mask({}, (), frozenset())
    assert [s.nodes[i].pool for i in cpu_only.nonzero()[0]] == ["cpu"] * 4


def test_fraction_is_refused_when_live_free_memory_is_short() -> None:
    s = _state()
    req = PodRequest(1000, 1024, 1, 500, 20_000)
    node = s.index["gpu-t4-0"]
    for g in range(4):
        s.set_reading(node, g, free_memory_mib=10_000, utilization_pct=0, temperature_c=40, healthy=True,
                      observed_at=100.0)
    mask = s.static_mask({}, GPU_TOL, frozenset({"T4"}))
    assert not s.feasible(req, mask, now=110.0)[node]
    small = PodRequest(1000, 1024, 1, 500, 12_000)
    assert not s.feasible(small, mask, now=110.0)[node]  # live: only 10000 MiB free
    assert s.feasible(small, mask, now=1_000.0)[node]  # stale reading = unknown: accounting says 16Gi free


def test_unhealthy_gpu_is_never_used() -> None:
    s = _state()
    node = s.index["gpu-a100-1"]  # whole GPUs: the device plugin's pool
    s.set_reading(node, 0, 80_000, 0, 40, healthy=False, observed_at=0.0)
    req = PodRequest(1000, 1024, 8, 1000)
    assert not s.feasible(req, s.static_mask({}, GPU_TOL, frozenset()), now=1.0)[node]


def test_unhealthy_reading_counts_without_a_clock_and_expires_when_stale() -> None:
    s = _state()
    node = s.index["gpu-a100-1"]  # whole GPUs: the device plugin's pool
    s.set_reading(node, 0, 80_000, 0, 40, healthy=False, observed_at=0.0)
    req = PodRequest(1000, 1024, 8, 1000)
    mask = s.static_mask({}, GPU_TOL, frozenset())
    assert not s.feasible(req, mask)[node]  # no clock: the last reading is all we know
    assert s.feasible(req, mask, now=1_000.0)[node]  # stale: unknown, accounting alone decides


def test_allocate_refuses_overcommit_and_release_is_idempotent() -> None:
    s = _state()
    node = s.index["gpu-a100-0"]
    half = PodRequest(1000, 1024, 1, 600)
    s.allocate("a", half, s.placement_for(node, half, (0,)))
    with pytest.raises(OvercommitError):
        s.allocate("b", half, s.placement_for(node, half, (0,)))
    with pytest.raises(OvercommitError):
        s.allocate("a", half, s.placement_for(node, half, (1,)))
    s.release("a")
    s.release("a")
    assert int(s.gpu_milli_used.sum()) == 0


def test_one_owner_per_gpu_whole_gpus_where_the_device_plugin_assigns_shares_where_bigk_does() -> None:
    s = _state()
    mask = s.static_mask({}, GPU_TOL, frozenset())
    whole, share = PodRequest(1000, 1024, 1, 1000), PodRequest(1000, 1024, 1, 250, 2048)
    pools = {s.nodes[i].pool for i in s.feasible(whole, mask).nonzero()[0]}
    assert pools == {"gpu-a100"}  # sharing: none
    pools = {s.nodes[i].pool for i in s.feasible(share, mask).nonzero()[0]}
    assert pools == {"gpu-t4"}  # sharing: bigk
