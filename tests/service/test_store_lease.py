"""The service's leader lease in the state database (several clusters): the Lease algorithm of
`bigk.kube.leader`, unchanged, over `bigk_leases` rows with compare-and-swap writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes.client.exceptions import ApiException

from bigk.kube.leader import LeaderElector
from bigk.service.store import Store, default_database_url
from bigk.service.store_lease import StoreLeaseApi


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _elector(store: Store, identity: str, clock: Clock) -> LeaderElector:
    return LeaderElector(None, name="bigk-serve", namespace="bigk", identity=identity,  # type: ignore[arg-type]
                         lease_duration_s=15.0, renew_deadline_s=10.0, retry_period_s=2.0, clock=clock,
                         wall_clock=clock, coord=StoreLeaseApi(store))


def test_one_replica_leads_the_other_takes_over_after_expiry_or_release(tmp_path: Path) -> None:
    url = default_database_url(tmp_path)
    clock = Clock()
    a, b = _elector(Store(url), "a", clock), _elector(Store(url), "b", clock)  # two processes, one database
    assert a.try_acquire_or_renew() and a.is_leader
    assert not b.try_acquire_or_renew() and b.leader == "a"
    clock.t += 10.0
    assert a.try_acquire_or_renew()  # renewed: b saw the record change, so it waits a full duration again
    assert not b.try_acquire_or_renew()
    clock.t += 14.0
    assert not b.try_acquire_or_renew()  # 14 s since b last saw a renew: not expired yet
    clock.t += 2.0
    assert b.try_acquire_or_renew() and b.is_leader  # a stopped renewing: expired by b's own clock
    assert not a.try_acquire_or_renew() and not a.is_leader
    assert b.release() and not b.is_leader
    assert a.try_acquire_or_renew()  # released: taken at once
    assert Store(url).read_lease("bigk/bigk-serve").transitions == 2  # type: ignore[union-attr]


def test_a_write_from_a_stale_read_is_refused(tmp_path: Path) -> None:
    store = Store(default_database_url(tmp_path))
    api = StoreLeaseApi(store)
    clock = Clock()
    assert _elector(store, "a", clock).try_acquire_or_renew()
    first = api.read_namespaced_lease("bigk-serve", "bigk")
    second = api.read_namespaced_lease("bigk-serve", "bigk")
    first.spec.holder_identity = "x"
    api.replace_namespaced_lease("bigk-serve", "bigk", first)
    second.spec.holder_identity = "y"
    with pytest.raises(ApiException) as refused:
        api.replace_namespaced_lease("bigk-serve", "bigk", second)
    assert refused.value.status == 409
    assert api.read_namespaced_lease("bigk-serve", "bigk").spec.holder_identity == "x"
    with pytest.raises(ApiException) as missing:
        api.read_namespaced_lease("other", "bigk")
    assert missing.value.status == 404
    with pytest.raises(ApiException) as twice:
        api.create_namespaced_lease("bigk", first)
    assert twice.value.status == 409
