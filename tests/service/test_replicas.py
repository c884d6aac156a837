"""Two `bigk serve` replicas on one cluster and one database: only the leader fires; the other takes over."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bigk.service.app import Service, ServiceConfig
from tests.realk8s import ClusterUnderTest
from tests.service.conftest import ON_BOTH_CLUSTERS, Running, every_seconds, job_yaml, wait_for

pytestmark = ON_BOTH_CLUSTERS


def test_only_the_leader_fires_and_a_follower_takes_over(tmp_path: Path, serve: Callable[..., Running],
                                                         cluster: ClusterUnderTest) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "h.yaml").write_text(job_yaml("h", cron="* * * * *", instances=1, duration=10,
                                           schedule_extra="successfulRunsHistoryLimit: 100\n"))
    state = tmp_path / "state"  # one SQLite file shared by both: stands in for one PostgreSQL database
    a = serve(specs, state=state, trigger_for=every_seconds(2))
    b = Service(ServiceConfig(specs=[specs], **cluster.service_kwargs(), state_dir=state, submit_mode="direct",
                              tick_s=0.2, reload_s=0.3, leader_lease_s=3.0, trigger_for=every_seconds(2)))
    b.start()
    try:
        assert a.service.store is not None
        store = a.service.store
        wait_for(lambda: len(store.list_runs("h")) >= 3, 15, "three fires")
        assert a.service.is_leader and not b.is_leader
        a.stop()  # graceful: releases the lease
        handed_over = len(store.list_runs("h"))
        wait_for(lambda: b.is_leader, 10, "the follower to lead")
        wait_for(lambda: len(store.list_runs("h")) >= handed_over + 2, 10, "fires from the new leader")
        fire_times = [r.fire_time for r in store.list_runs("h")]
        assert len(fire_times) == len(set(fire_times))  # never fired twice, across both replicas
        assert all(r.state != "Failed" for r in store.list_runs("h"))
    finally:
        b.stop()
