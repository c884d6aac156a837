"""The service's leader lease in the state database, for `bigk serve` over several clusters (issue 18).

With one cluster the service leads while it holds that cluster's Lease `bigk-serve`. With several, that
would make the first cluster a single point: losing its API would stop cron and every dispatch on every
cluster. The replicas of one `bigk serve` already share one state database (runs live there), so the
service's leadership lives there too: `StoreLeaseApi` answers the three Lease calls `LeaderElector` makes
(read, create, replace) from a `bigk_leases` row, with the same optimistic concurrency a resourceVersion
gives (a write names the version it read; a stale one is refused with 409). The election algorithm stays
`bigk.kube.leader`'s, unchanged; each cluster's own Lease still gates that cluster's scheduling loop.
"""

from __future__ import annotations

from datetime import UTC, datetime

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bigk.errors import Conflict
from bigk.service.store import LeaseRecord, Store


def _time(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _api_error(status: int, reason: str) -> ApiException:
    return ApiException(status=status, reason=reason)


class StoreLeaseApi:
    """`CoordinationV1Api`'s lease calls, as `LeaderElector(coord=...)` makes them, over the state database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def read_namespaced_lease(self, name: str, namespace: str) -> client.V1Lease:
        found = self.store.read_lease(_key(name, namespace))
        if found is None:
            raise _api_error(404, f"lease {namespace}/{name} not found")
        return _v1(found, name, namespace)

    def create_namespaced_lease(self, namespace: str, body: client.V1Lease) -> client.V1Lease:
        name = (body.metadata.name if body.metadata is not None else None) or ""
        try:
            made = self.store.create_lease(_record(body, _key(name, namespace), version=0))
        except Conflict as exc:
            raise _api_error(409, str(exc)) from None
        return _v1(made, name, namespace)

    def replace_namespaced_lease(self, name: str, namespace: str, body: client.V1Lease) -> client.V1Lease:
        version = int(body.metadata.resource_version or 0) if body.metadata is not None else 0
        try:
            written = self.store.replace_lease(_record(body, _key(name, namespace), version))
        except Conflict as exc:
            raise _api_error(409, str(exc)) from None
        return _v1(written, name, namespace)


def _key(name: str, namespace: str) -> str:
    return f"{namespace}/{name}"


def _record(body: client.V1Lease, key: str, version: int) -> LeaseRecord:
    spec = body.spec or client.V1LeaseSpec()
    return LeaseRecord(key, spec.holder_identity or "", float(spec.lease_duration_seconds or 0),
                       _ts(spec.acquire_time), _ts(spec.renew_time), int(spec.lease_transitions or 0), version)


def _v1(lease: LeaseRecord, name: str, namespace: str) -> client.V1Lease:
    return client.V1Lease(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace, resource_version=str(lease.version)),
        spec=client.V1LeaseSpec(holder_identity=lease.holder or None,
                                lease_duration_seconds=int(lease.duration_s),
                                acquire_time=_time(lease.acquired_at), renew_time=_time(lease.renewed_at),
                                lease_transitions=lease.transitions))
