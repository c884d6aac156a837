"""Leader election decisions with a fake clock and an in-memory Lease API (failover over HTTP: scenarios)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bigk.kube.leader import LeaderElector


@dataclass
class FakeLeases:
    leases: dict[str, client.V1Lease] = field(default_factory=dict)
    rv: int = 0
    fail: bool = False

    def _check(self) -> None:
        if self.fail:
            raise ApiException(status=500, reason="injected")

    def read_namespaced_lease(self, name: str, namespace: str) -> client.V1Lease:
        self._check()
        if name not in self.leases:
            raise ApiException(status=404, reason="Not Found")
        return copy.deepcopy(self.leases[name])

    def create_namespaced_lease(self, namespace: str, body: client.V1Lease) -> client.V1Lease:
        self._check()
        assert body.metadata is not None and body.metadata.name
        if body.metadata.name in self.leases:
            raise ApiException(status=409, reason="AlreadyExists")
        return self._store(body)

    def replace_namespaced_lease(self, name: str, namespace: str, body: client.V1Lease) -> client.V1Lease:
        self._check()
        assert body.metadata is not None
        if body.metadata.resource_version != self.leases[name].metadata.resource_version:  # type: ignore[union-attr]
            raise ApiException(status=409, reason="Conflict")
        return self._store(body)

    def _store(self, body: client.V1Lease) -> client.V1Lease:
        self.rv += 1
        stored = copy.deepcopy(body)
        stored.metadata.resource_version = str(self.rv)  # type: ignore[union-attr]
        self.leases[str(stored.metadata.name)] = stored  # type: ignore[union-attr]
        return copy.deepcopy(stored)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


API = client.ApiClient()


def _elector(fake: FakeLeases, identity: str, clock: Clock, wall: float = 1.78e9) -> LeaderElector:
    return LeaderElector(API, identity=identity, lease_duration_s=15, renew_deadline_s=10, retry_period_s=2,
                         clock=clock, wall_clock=lambda: wall + clock.t, coord=fake)


def test_follower_waits_out_the_lease_on_its_own_clock_despite_a_skewed_leader() -> None:
    fake, clock = FakeLeases(), Clock()
    leader = _elector(fake, "a", clock, wall=1.78e9 - 3600)  # the leader's wall clock is an hour behind
    follower = _elector(fake, "b", clock)
    assert leader.try_acquire_or_renew() and leader.is_leader
    for _ in range(20):  # 40 s of renewals: the renewTime looks an hour old, but it keeps changing
        clock.t += 2
        assert leader.try_acquire_or_renew()
        assert not follower.try_acquire_or_renew()
    assert follower.leader == "a"
    clock.t += 14  # the leader died; 14 s after the follower last saw a change: not yet
    assert not follower.try_acquire_or_renew()
    clock.t += 2
    assert follower.try_acquire_or_renew() and follower.is_leader
    lease = fake.leases["bigk-scheduler"].spec
    assert lease is not None and lease.holder_identity == "b" and lease.lease_transitions == 1


def test_release_hands_over_without_waiting() -> None:
    fake, clock = FakeLeases(), Clock()
    a, b = _elector(fake, "a", clock), _elector(fake, "b", clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    assert a.release()
    assert b.try_acquire_or_renew()


def test_leader_that_cannot_renew_gives_up_at_the_renew_deadline() -> None:
    fake, clock = FakeLeases(), Clock()
    a = _elector(fake, "a", clock)
    assert a.try_acquire_or_renew()
    fake.fail = True
    clock.t += 9
    assert a.try_acquire_or_renew()  # a failed renewal within the deadline keeps leadership
    clock.t += 1.5
    assert not a.is_leader  # past the deadline, before the lease can expire for others
    assert not a.try_acquire_or_renew()


def test_two_candidates_racing_for_a_free_lease_cannot_both_win() -> None:
    fake, clock = FakeLeases(), Clock()
    a, b = _elector(fake, "a", clock), _elector(fake, "b", clock)
    assert a.try_acquire_or_renew() and a.release()
    real_read = fake.read_namespaced_lease

    def read_then_b_wins(name: str, namespace: str) -> client.V1Lease:
        lease = real_read(name, namespace)  # `a` sees the lease free...
        fake.read_namespaced_lease = real_read  # type: ignore[method-assign]
        assert b.try_acquire_or_renew()  # ...and `b` takes it before `a` writes
        return lease

    fake.read_namespaced_lease = read_then_b_wins  # type: ignore[method-assign]
    assert not a.try_acquire_or_renew()
    assert b.is_leader and not a.is_leader
    assert fake.leases["bigk-scheduler"].spec.holder_identity == "b"  # type: ignore[union-attr]
