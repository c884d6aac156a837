"""What the simulators need of the cluster they run on, and the life cycle they share.

Two hosts run the same simulators (`KubeletSim`, `SparkDriverSim`, `GpuSim`,
`DevicePluginSim`): `EmulatedCluster` with its in-process store, and
`SimulatedNodes` (`bigk.emulator.remote`) with a client-side copy of a real API
server's objects. The simulators see either through the Protocols here and never
import a host, so the hosts can import them without an import loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bigk.cluster.model import Node
from bigk.emulator.resources import ResourceType
from bigk.emulator.store import Listener, Obj, WatchEvent


class ObjectStore(Protocol):
    """The questions simulators ask of a host's objects; `subscribe` tells them of every change."""

    def get(self, key: str, namespace: str, name: str) -> Obj | None: ...
    def objects(self, key: str, namespace: str | None = None,
                match: Callable[[Obj], bool] | None = None) -> tuple[list[Obj], int]: ...
    def dependents(self, owner_uid: str) -> list[tuple[str, str, str]]: ...
    def subscribe(self, listener: Listener) -> None: ...


class ObjectApi(Protocol):
    """The writes simulators make, as a kubelet or a Spark driver would through the API server."""

    @property
    def store(self) -> ObjectStore: ...
    def create(self, rt: ResourceType, namespace: str, body: Obj) -> Obj: ...
    def delete(self, rt: ResourceType, namespace: str, name: str, options: Obj | None = None) -> tuple[int, Obj]: ...
    def finalize_pod(self, namespace: str, name: str) -> None: ...
    def update_pod(self, namespace: str, name: str, change: Callable[[Obj], None]) -> Obj | None: ...
    def update_object(self, key: str, namespace: str, name: str, change: Callable[[Obj], None]) -> Obj | None: ...


@dataclass
class Containers:
    """What a host's running containers keep across a restart of its simulators (kubelet, Spark driver): the
    containers outlive the processes that watch them, so a pod's run time and a driver's work go on counting while
    they are stopped, and a restarted kubelet ends a pod whose time passed meanwhile at once."""

    running_since: dict[str, float] = field(default_factory=dict)  # pod uid -> monotonic time it began running
    work_left: dict[str, tuple[float, float, bool]] = field(default_factory=dict)  # driver uid -> (scaled seconds
    # of work left, monotonic time of that reading, whether the application was working then)

    def forget(self, uid: str) -> None:
        self.running_since.pop(uid, None)
        self.work_left.pop(uid, None)


class SimHost(Protocol):
    """A cluster the simulators run on: its API, its event loop, its nodes and its clocks."""

    @property
    def api(self) -> ObjectApi: ...  # the in-process Api, or ClientApi over a real API server
    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...
    @property
    def time_scale(self) -> float: ...
    @property
    def default_duration(self) -> float: ...
    @property
    def gpu_interval(self) -> float: ...
    @property
    def model_nodes(self) -> dict[str, Node]: ...
    @property
    def kubelet(self) -> Any: ...  # the KubeletSim, or None when the host runs none
    @property
    def driver(self) -> Any: ...  # the SparkDriverSim, or None
    def pod_address(self, pod: Obj) -> str | None: ...  # the pod IP to give a pod, or None for a made-up one
    @property
    def containers(self) -> Containers: ...  # kept by the host across restarts of its simulators


class Simulator:
    """The life cycle every simulator shares: watch the store, catch up with what is there, go quiet on stop.

    Store listeners run in the writing thread; `_handle` runs on the host's event loop. Subclasses say which
    changes they want (`_wants`), what to do with one (`_handle`), how to catch up at start (`_replay`) and what
    to cancel at stop (`_halt`).
    """

    def __init__(self, host: SimHost) -> None:
        self.host = host
        self.api = host.api
        self.loop = host.loop
        self._stopped = False

    def start(self) -> None:
        self.api.store.subscribe(self._on_change)
        self._replay()

    def stop(self) -> None:
        self._stopped = True
        self._halt()

    def _on_change(self, key: str, event: WatchEvent) -> None:
        if self._stopped or not self._wants(key, event):
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self.loop.call_soon_threadsafe(self._handle, key, event)

    def _wants(self, key: str, event: WatchEvent) -> bool:
        return True

    def _handle(self, key: str, event: WatchEvent) -> None:
        raise NotImplementedError

    def _replay(self) -> None:
        """Catch up with the objects already stored when the simulator starts."""

    def _halt(self) -> None:
        """Cancel what is scheduled."""


class PodSimulator(Simulator):
    """A simulator that follows pods: at start it considers every stored pod as if it had just been written."""

    def _replay(self) -> None:
        for pod in self.api.store.objects("pods")[0]:
            self._consider(pod)

    def _consider(self, pod: Obj) -> None:
        raise NotImplementedError


def cancel_all(scheduled: dict[str, Any]) -> None:
    """Cancel every task or timer handle in `scheduled` and forget them (a simulator's `_halt`)."""
    for item in scheduled.values():
        item.cancel()
    scheduled.clear()
