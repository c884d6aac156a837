"""An in-memory stand-in for the CoreV1Api calls the binder makes, with fault injection.

Only for unit tests of decision logic; the real HTTP path is covered by the tests
against the emulated cluster.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import ProtocolError

from tests.kube.objects import pod_dict, to_model


class FakeResponse:
    def read(self) -> bytes:
        return b"{}"

    def release_conn(self) -> None:
        pass


@dataclass
class Fault:
    method: str
    status: int  # 0 = dropped connection
    count: int = 1
    after: bool = False  # apply the change, then fail (the client cannot tell whether it landed)


@dataclass
class FakeCoreApi:
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    events: list[client.CoreV1Event] = field(default_factory=list)
    rv: int = 100

    def add_pod(self, name: str, **kwargs: Any) -> dict[str, Any]:
        data = pod_dict(name, **kwargs)
        self.rv += 1
        data["metadata"]["resourceVersion"] = str(self.rv)
        self.pods[f"{data['metadata']['namespace']}/{name}"] = data
        return data

    def _fault(self, method: str, before: bool) -> Exception | None:
        for fault in self.faults:
            if fault.method == method and fault.count > 0 and fault.after != before:
                fault.count -= 1
                if fault.status == 0:
                    return ProtocolError("Connection aborted.", ConnectionResetError())
                exc = ApiException(status=fault.status, reason="injected")
                return exc
        return None

    def _enter(self, method: str, key: str) -> None:
        self.calls.append((method, key))
        exc = self._fault(method, before=True)
        if exc is not None:
            raise exc

    def _leave(self, method: str) -> None:
        exc = self._fault(method, before=False)
        if exc is not None:
            raise exc

    def _get(self, name: str, namespace: str) -> dict[str, Any]:
        data = self.pods.get(f"{namespace}/{name}")
        if data is None:
            raise ApiException(status=404, reason="Not Found")
        return data

    def _bump(self, data: dict[str, Any]) -> None:
        self.rv += 1
        data["metadata"]["resourceVersion"] = str(self.rv)

    # ---- the API surface ----------------------------------------------------------------
    def read_namespaced_pod(self, name: str, namespace: str, **_: Any) -> client.V1Pod:
        self._enter("read", f"{namespace}/{name}")
        return to_model(copy.deepcopy(self._get(name, namespace)), "V1Pod")

    def patch_namespaced_pod(self, name: str, namespace: str, body: dict[str, Any], **_: Any) -> FakeResponse:
        self._enter("patch", f"{namespace}/{name}")
        data = self._get(name, namespace)
        meta = body.get("metadata", {})
        if meta.get("resourceVersion") and meta["resourceVersion"] != data["metadata"]["resourceVersion"]:
            raise ApiException(status=409, reason="Conflict")
        data["metadata"].setdefault("annotations", {}).update(meta.get("annotations", {}))
        self._bump(data)
        self._leave("patch")
        return FakeResponse()

    def patch_namespaced_pod_status(self, name: str, namespace: str, body: dict[str, Any],
                                    **_: Any) -> FakeResponse:
        self._enter("status", f"{namespace}/{name}")
        data = self._get(name, namespace)
        data["status"]["conditions"] = body["status"]["conditions"]
        self._bump(data)
        return FakeResponse()

    def create_namespaced_pod_binding(self, name: str, namespace: str, body: client.V1Binding,
                                      **_: Any) -> FakeResponse:
        self._enter("bind", f"{namespace}/{name}")
        data = self._get(name, namespace)
        if data["spec"].get("nodeName"):
            raise ApiException(status=409, reason="Conflict")
        data["spec"]["nodeName"] = body.target.name
        if body.metadata is not None and body.metadata.annotations:  # merged in the same write, as the API does
            data["metadata"].setdefault("annotations", {}).update(body.metadata.annotations)
        self._bump(data)
        self._leave("bind")
        return FakeResponse()

    def create_namespaced_pod_eviction(self, name: str, namespace: str, body: client.V1Eviction,
                                       **_: Any) -> FakeResponse:
        self._enter("evict", f"{namespace}/{name}")
        self._get(name, namespace)
        del self.pods[f"{namespace}/{name}"]
        return FakeResponse()

    def create_namespaced_event(self, namespace: str, body: client.CoreV1Event, **_: Any) -> FakeResponse:
        self._enter("event", f"{namespace}/{body.involved_object.name}")
        self.events.append(body)
        return FakeResponse()

    def event_reasons(self, name: str) -> list[str]:
        return [str(e.reason) for e in self.events if e.involved_object.name == name]
