"""bigk's simulated kubelet, Spark driver and GPUs on any API server, as ordinary clients (as KWOK does).

The emulator's simulators (`KubeletSim`, `SparkDriverSim`, `GpuSim`) talk to a small object API:
read from a store that tells listeners about every change, and write pods, pod status and nodes.
`EmulatedCluster` hands them its in-process store; `SimulatedNodes` hands them `ClientApi`, which
keeps the same store current by list-and-watch through the official Kubernetes client and writes
through the REST API (pod status through the `status` subresource, deletions with a UID
precondition, as a real kubelet does). So the same simulators move pods along on the embedded
emulator and on a real kube-apiserver:

    nodes = SimulatedNodes(api_client, load_cluster("jobspecs/cluster.yaml")).start()
    ...   # bigk binds pods; the simulated kubelet runs them; simulated drivers create executors
    nodes.stop()

Garbage collection of executors whose driver is gone is the controller manager's job on a real
control plane (the emulator does it itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from bigk.cluster.labels import SPARK_ROLE
from bigk.cluster.model import Node
from bigk.emulator.driver_ui import DriverUiServers, host_address
from bigk.emulator.errors import ApiError
from bigk.emulator.nodes import node_object
from bigk.emulator.patches import clone
from bigk.emulator.resources import ResourceType
from bigk.emulator.simulators import RunsSimulators, Simulators
from bigk.emulator.store import Obj, WatchEvent, index_owners
from bigk.emulator.waiting import poll

log = logging.getLogger("bigk.emulator")
NODE_LEASE_NAMESPACE = "kube-node-lease"
LEASE_RENEW_S = 10.0
NOT_READY_TAINT = "node.kubernetes.io/not-ready"

Listener = Callable[[str, WatchEvent], None]
_CONFLICT_RETRIES = 8


def _rv(obj: Obj | None) -> int:
    try:
        return int((obj or {}).get("metadata", {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _api_error(exc: ApiException) -> ApiError:
    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        body = {}
    return ApiError(int(exc.status or 500), str(body.get("reason") or exc.reason or ""),
                    str(body.get("message") or exc.reason or ""))


class ClientStore:
    """A read-only mirror of pods, nodes and config maps, kept by list-and-watch; tells listeners of changes.

    It answers the same questions as the emulator's `Store` (`get`, `objects`, `dependents`,
    `subscribe`), so the simulators need not know which one they read.
    """

    KINDS = ("pods", "nodes", "configmaps")

    def __init__(self, api: client.ApiClient, *, watch_timeout_s: int = 120) -> None:
        self._core: Any = client.CoreV1Api(api)  # raw responses (_preload_content=False): typed loosely
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {k: {} for k in self.KINDS}
        self._owners: dict[str, set[tuple[str, str, str]]] = {}
        self._listeners: list[Listener] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._synced = {k: threading.Event() for k in self.KINDS}
        self._watches: dict[str, watch.Watch] = {}
        self._threads: list[threading.Thread] = []
        self._watch_timeout_s = watch_timeout_s

    # ---- reading (the emulator Store's questions) ---------------------------------------------
    def get(self, key: str, namespace: str, name: str) -> Obj | None:
        return self._objects.get(key, {}).get((namespace, name))

    def objects(self, key: str, namespace: str | None = None,
                match: Callable[[Obj], bool] | None = None) -> tuple[list[Obj], int]:
        with self._lock:
            bucket = self._objects.get(key, {})
            items = [o for (ns, _), o in sorted(bucket.items(), key=lambda kv: kv[0])
                     if (namespace is None or ns == namespace) and (match is None or match(o))]
            return items, 0

    def dependents(self, owner_uid: str) -> list[tuple[str, str, str]]:
        with self._lock:
            return sorted(self._owners.get(owner_uid, ()))

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> ClientStore:
        for key in self.KINDS:
            t = threading.Thread(target=self._follow, args=(key,), name=f"sim-watch-{key}", daemon=True)
            t.start()
            self._threads.append(t)
        for key, synced in self._synced.items():
            if not synced.wait(timeout):
                raise ApiError(504, "Timeout", f"could not list {key} within {timeout:.0f} s")
        return self

    def stop(self) -> None:
        self._stop.set()
        for w in list(self._watches.values()):
            w.stop()
        for t in self._threads:
            t.join(3)

    # ---- writing into the mirror (from watches and from our own writes) ---------------------------
    def observe(self, key: str, type_: str, obj: Obj) -> None:
        """Apply one change unless the mirror already holds this version or a newer one; tell listeners."""
        meta = obj.get("metadata") or {}
        at = (meta.get("namespace", ""), meta.get("name", ""))
        with self._lock:
            old = self._objects[key].get(at)
            if type_ != "DELETED" and old is not None and old["metadata"].get("uid") == meta.get("uid") \
                    and _rv(old) >= _rv(obj):
                return
            if type_ == "DELETED":
                if old is None:
                    return
                del self._objects[key][at]
                self._index(key, old, None)
                event = WatchEvent(_rv(obj), "DELETED", obj, old)
            else:
                self._objects[key][at] = obj
                self._index(key, old, obj)
                event = WatchEvent(_rv(obj), "ADDED" if old is None else "MODIFIED", obj, old)
        for listener in list(self._listeners):
            try:
                listener(key, event)
            except Exception:  # one listener's bug must not stop the mirror
                log.exception("event=sim_listener_error kind=%s", key)

    def _index(self, key: str, old: Obj | None, new: Obj | None) -> None:
        index_owners(self._owners, key, old, new)

    def _replace(self, key: str, items: Iterable[Obj]) -> None:
        fresh = {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in items}
        with self._lock:
            gone = [o for at, o in self._objects[key].items() if at not in fresh]
        for obj in gone:
            self.observe(key, "DELETED", obj)
        for obj in fresh.values():
            self.observe(key, "MODIFIED", obj)

    # ---- list and watch ----------------------------------------------------------------------------
    def _list_fn(self, key: str) -> Callable[..., Any]:
        return {"pods": self._core.list_pod_for_all_namespaces, "nodes": self._core.list_node,
                "configmaps": self._core.list_config_map_for_all_namespaces}[key]

    def _follow(self, key: str) -> None:
        fn, rv, failures = self._list_fn(key), "", 0
        while not self._stop.is_set():
            try:
                if not rv:
                    raw = json.loads(fn(_preload_content=False, _request_timeout=30).data)
                    self._replace(key, raw.get("items") or [])
                    rv = raw["metadata"]["resourceVersion"]
                    self._synced[key].set()
                w = self._watches[key] = watch.Watch()
                timeout = self._watch_timeout_s
                for event in w.stream(fn, resource_version=rv, allow_watch_bookmarks=True, deserialize=False,
                                      timeout_seconds=timeout, _request_timeout=timeout + 30):
                    obj, type_ = event["object"], event["type"]
                    if type_ == "ERROR":
                        rv = ""  # 410 Gone or another error status: list afresh
                        break
                    rv = obj.get("metadata", {}).get("resourceVersion") or rv
                    if type_ != "BOOKMARK":
                        self.observe(key, type_, obj)
                failures = 0
            except Exception as exc:
                if self._stop.is_set():
                    return
                failures += 1
                rv = ""
                log.info("event=sim_watch_error kind=%s error=%s failures=%d", key, type(exc).__name__, failures)
                self._stop.wait(min(5.0, 0.1 * 2 ** min(failures, 6)))


class ClientApi:
    """The emulator `Api` calls the simulators make, done through the REST API of any server."""

    def __init__(self, api: client.ApiClient, store: ClientStore) -> None:
        self.core: Any = client.CoreV1Api(api)  # raw responses (_preload_content=False): typed loosely
        self.store = store

    def create(self, rt: ResourceType, namespace: str, body: Obj) -> Obj:
        if rt.key == "persistentvolumeclaims":  # the simulated Spark driver's on-demand executor claims
            try:
                raw: Any = self.core.create_namespaced_persistent_volume_claim(
                    namespace, body, _preload_content=False)
            except ApiException as exc:
                raise _api_error(exc) from exc
            return dict(json.loads(raw.data))
        if rt.key != "pods":
            raise ApiError(405, "MethodNotAllowed", f"the simulators create only pods and claims, not {rt.key}")
        try:
            resp = self.core.create_namespaced_pod(namespace, body, _preload_content=False)
        except ApiException as exc:
            raise _api_error(exc) from exc
        created: Obj = json.loads(resp.data)
        self.store.observe("pods", "ADDED", created)
        return created

    def delete(self, rt: ResourceType, namespace: str, name: str, options: Obj | None = None) -> tuple[int, Obj]:
        if rt.key != "pods":
            raise ApiError(405, "MethodNotAllowed", f"the simulators delete only pods, not {rt.key}")
        try:
            self.core.delete_namespaced_pod(name, namespace, body=client.V1DeleteOptions(**(options or {})),
                                            _preload_content=False)
        except ApiException as exc:
            raise _api_error(exc) from exc
        return 200, {}

    def finalize_pod(self, namespace: str, name: str) -> None:
        """What a kubelet does last for a terminating pod: delete it for good (grace 0, this very pod)."""
        pod = self.store.get("pods", namespace, name)
        uid = (pod or {}).get("metadata", {}).get("uid")
        options = client.V1DeleteOptions(grace_period_seconds=0,
                                         preconditions=client.V1Preconditions(uid=uid) if uid else None)
        with contextlib.suppress(ApiException):
            self.core.delete_namespaced_pod(name, namespace, body=options, _preload_content=False)

    def update_pod(self, namespace: str, name: str, change: Callable[[Obj], None]) -> Obj | None:
        """Change a pod's status with `change(copy)`; retried on conflicts; None when the pod is gone."""
        return self._update("pods", namespace, name, change)

    def update_object(self, key: str, namespace: str, name: str, change: Callable[[Obj], None]) -> Obj | None:
        return self._update(key, namespace, name, change)

    def _update(self, key: str, namespace: str, name: str, change: Callable[[Obj], None]) -> Obj | None:
        current = self.store.get(key, namespace, name)
        for _ in range(_CONFLICT_RETRIES):
            if current is None:
                return None
            new = clone(current)
            new.setdefault("status", {})
            change(new)
            if new == current:
                return current
            try:
                if key == "pods":
                    resp = self.core.replace_namespaced_pod_status(name, namespace, new, _preload_content=False)
                elif key == "nodes":
                    resp = self.core.replace_node(name, new, _preload_content=False)
                else:
                    raise ApiError(405, "MethodNotAllowed", f"the simulators do not update {key}")
            except ApiException as exc:
                if exc.status == 404:
                    return None
                if exc.status != 409:
                    raise _api_error(exc) from exc
                current = self._read(key, namespace, name)
                continue
            updated: Obj = json.loads(resp.data)
            self.store.observe(key, "MODIFIED", updated)
            return updated
        raise ApiError(409, "Conflict", f"{key} {namespace}/{name} kept changing under the simulator")

    def _read(self, key: str, namespace: str, name: str) -> Obj | None:
        try:
            if key == "pods":
                resp = self.core.read_namespaced_pod(name, namespace, _preload_content=False)
            else:
                resp = self.core.read_node(name, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _api_error(exc) from exc
        obj: Obj = json.loads(resp.data)
        return obj


class SimulatedNodes(RunsSimulators):
    """Nodes, their kubelet, Spark drivers and GPU readings, simulated against a real API server.

    It offers the simulators what `EmulatedCluster` offers them (`api`, `loop`, `time_scale`,
    `default_duration`, `gpu_interval`, `model_nodes`, `kubelet`, `driver`, `gpus`) and runs them on
    an asyncio loop of its own thread.
    """

    def __init__(self, api: client.ApiClient, nodes: Iterable[Node] = (), *, time_scale: float = 1.0,
                 default_duration: float = 30.0, gpu_interval: float = 2.0, kubelet: bool = True,
                 spark_driver: bool = True, gpu_readings: bool = True) -> None:
        self.client = api
        self.store = ClientStore(api)
        self.api = ClientApi(api, self.store)
        self.time_scale = time_scale
        self.default_duration = default_duration
        self.gpu_interval = gpu_interval
        self.model_nodes: dict[str, Node] = {n.name: n for n in nodes}
        self._want = {"kubelet": kubelet, "spark_driver": spark_driver, "gpu_readings": gpu_readings}
        self.sims = Simulators()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self.kubelet_endpoint: Any = None  # bigk.emulator.kubelet_endpoint: pods/log through the API server
        self.driver_uis: DriverUiServers | None = None  # Spark UIs through the API server's pod proxy

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise ApiError(503, "NotRunning", "the simulated nodes are not running")
        return self._loop

    def start(self) -> SimulatedNodes:
        if self._want["kubelet"]:
            from bigk.emulator.kubelet_endpoint import KubeletEndpoint

            self.kubelet_endpoint = KubeletEndpoint(self.store).start()
            address = host_address()
            if address is not None:
                self.driver_uis = DriverUiServers(self.store, address)
        for node in self.model_nodes.values():
            self.ensure_node(node)
        self.store.start()
        if self.driver_uis is not None:
            self.driver_uis.start()
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), name="bigk-sim-nodes", daemon=True)
        self._thread.start()
        started.wait(10)
        return self

    def _run(self, started: threading.Event) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        loop.call_soon(self._start_simulators, started)
        loop.run_forever()
        loop.close()

    def _start_simulators(self, started: threading.Event) -> None:
        try:
            self._heartbeat = self.loop.create_task(self._renew_leases())
            self.sims.start(self, **self._want)
        finally:
            started.set()

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and loop.is_running():
            def halt() -> None:
                self.sims.stop()
                for task in asyncio.all_tasks(loop):
                    task.cancel()
                loop.call_soon(loop.stop)  # after the cancelled tasks have had their turn

            loop.call_soon_threadsafe(halt)
            if self._thread is not None:
                self._thread.join(10)
        self.store.stop()
        if self.driver_uis is not None:
            self.driver_uis.stop()
        if self.kubelet_endpoint is not None:
            self.kubelet_endpoint.stop()
        self._loop = None

    def pod_address(self, pod: Obj) -> str | None:
        """A driver gets this host's address, where its simulated UI listens (kube-apiserver's pod proxy refuses
        loopback); other pods a made-up one."""
        if self.driver_uis is None or (pod["metadata"].get("labels") or {}).get(SPARK_ROLE) != "driver":
            return None
        return self.driver_uis.address

    async def _renew_leases(self) -> None:
        """Renew each node's Lease in kube-node-lease, as a kubelet does every 10 s: the node lifecycle
        controller then takes the `node.kubernetes.io/not-ready` taint that registration put on."""
        coord: Any = client.CoordinationV1Api(self.client)
        while True:
            for name in list(self.model_nodes):
                try:
                    self._renew(coord, name)
                except Exception as exc:  # keep renewing the others
                    log.info("event=sim_lease_error node=%s error=%s", name, type(exc).__name__)
            await asyncio.sleep(LEASE_RENEW_S)

    def _renew(self, coord: Any, name: str) -> None:
        now = datetime.now(UTC)
        try:
            lease = coord.read_namespaced_lease(name, NODE_LEASE_NAMESPACE)
        except ApiException as exc:
            if exc.status != 404:
                raise
            node = self.store.get("nodes", "", name)
            owner = [client.V1OwnerReference(api_version="v1", kind="Node", name=name, uid=node["metadata"]["uid"])
                     ] if node else None
            coord.create_namespaced_lease(NODE_LEASE_NAMESPACE, client.V1Lease(
                metadata=client.V1ObjectMeta(name=name, owner_references=owner),
                spec=client.V1LeaseSpec(holder_identity=name, lease_duration_seconds=40, renew_time=now)))
            return
        lease.spec.renew_time = now
        coord.replace_namespaced_lease(name, NODE_LEASE_NAMESPACE, lease)

    def ensure_node(self, node: Node) -> None:
        """Create the Node object (kubelet registration), or bring an existing one's status back to Ready."""
        body = node_object(node)
        if self.kubelet_endpoint is not None:  # the API server reaches this node's kubelet (logs) on loopback
            from bigk.emulator.kubelet_endpoint import ADDRESS

            body["status"]["addresses"] = [{"type": "InternalIP", "address": ADDRESS}]
            body["status"]["daemonEndpoints"] = {"kubeletEndpoint": {"Port": self.kubelet_endpoint.port}}
        core: Any = client.CoreV1Api(self.client)
        try:
            core.create_node(body, _preload_content=False)
        except ApiException as exc:
            if exc.status != 409:
                raise _api_error(exc) from exc
            current = json.loads(core.read_node(node.name, _preload_content=False).data)
            current["status"] = body["status"]
            core.replace_node_status(node.name, current, _preload_content=False)
        self.model_nodes[node.name] = node

    def wait_until_ready(self, timeout: float = 60.0) -> None:
        """Wait until no node of ours carries the not-ready taint (the node lifecycle controller's work)."""
        def ready() -> bool:
            for name in self.model_nodes:
                node = self.store.get("nodes", "", name)
                taints = (node or {}).get("spec", {}).get("taints") or []
                if node is None or any(t.get("key") == NOT_READY_TAINT for t in taints):
                    return False
            return True

        self.wait_for(ready, timeout)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
        """Poll `predicate` until it returns something truthy; raise TimeoutError after `timeout` s."""
        return poll(predicate, timeout, interval)
