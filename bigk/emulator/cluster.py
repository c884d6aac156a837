"""`EmulatedCluster`: the Kubernetes-compatible API plus simulated kubelet, Spark driver and GPUs.

It runs on loopback in a background thread with its own asyncio loop, so a test
or `bigk serve` can start it, point any Kubernetes client at `.url`, and stop it.
All simulated delays (pod start, run time, executor batch delay) are multiplied by
`time_scale`: 0.01 makes a 30 s job take 0.3 s. GPU readings are refreshed every
`gpu_interval` wall-clock seconds and bookmarks sent every `bookmark_interval`
seconds, whatever the time scale.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from bigk.cluster.model import Node
from bigk.emulator import control
from bigk.emulator.api import NODES, PODS, Api, set_condition
from bigk.emulator.errors import EmulatorError
from bigk.emulator.faults import Faults
from bigk.emulator.kubeconfig import write_kubeconfig
from bigk.emulator.nodes import node_object
from bigk.emulator.server import ApiServer
from bigk.emulator.simulators import RunsSimulators, Simulators
from bigk.emulator.store import Obj, Store
from bigk.emulator.waiting import poll

log = logging.getLogger("bigk.emulator")
NOT_READY_TAINT = "node.kubernetes.io/not-ready"


class EmulatedCluster(RunsSimulators):
    """An embedded, emulated Kubernetes cluster for development and tests (not Kubernetes)."""

    def __init__(
        self,
        nodes: Iterable[Node] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        kubelet: bool = True,
        spark_driver: bool = True,
        gpu_readings: bool = True,
        time_scale: float = 1.0,
        watch_window: int = 10_000,
        bookmark_interval: float = 1.0,
        gpu_interval: float = 2.0,
        default_duration: float = 30.0,
    ) -> None:
        if time_scale <= 0:
            raise EmulatorError(f"time_scale must be > 0, got {time_scale}")
        self.host = host
        self.port = port
        self.time_scale = time_scale
        self.default_duration = default_duration
        self.gpu_interval = gpu_interval
        self.store = Store(window=watch_window)
        self.api = Api(self.store)
        self.faults = Faults()
        self.model_nodes: dict[str, Node] = {}
        self.server = ApiServer(self.api, self.faults, bookmark_interval=bookmark_interval)
        self.server.control = lambda request: control.handle(self, request)
        self._want = {"kubelet": kubelet, "spark_driver": spark_driver, "gpu_readings": gpu_readings}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._stopped = False
        self._error: BaseException | None = None
        self._url = ""
        self.sims = Simulators()
        for node in nodes:
            self.add_node(node)

    # ---- lifecycle -----------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL (http://127.0.0.1:PORT); empty before start()."""
        return self._url

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise EmulatorError("the emulated cluster is not running")
        return self._loop

    def start(self) -> str:
        """Start serving in a background thread; returns the base URL. After `stop()` it starts again on the same
        port, serving the same objects (etcd outlives a restart of its API server), and the simulated kubelet and
        Spark driver pick up where they were: pods keep the time they already ran (`Containers`)."""
        if self._thread is not None:
            return self._url
        if self._stopped:
            self.server.renew()
            self.sims = Simulators()
            self._ready.clear()
            self._error = None
            self._url = ""
        self._thread = threading.Thread(target=self._run, name="bigk-emulator", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            self._thread = None
            raise EmulatorError(f"cannot start the emulated cluster on {self.host}:{self.port}: {self._error}")
        if not self._url:
            raise EmulatorError("the emulated cluster did not start within 30 s")
        log.info("event=emulator_%s url=%s nodes=%d", "restarted" if self._stopped else "started", self._url,
                 len(self.model_nodes))
        self._stopped = False
        return self._url

    @property
    def running(self) -> bool:
        return self._thread is not None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        runner = web.AppRunner(self.server.app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=1024)
        await site.start()
        self._runner = runner
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        port = sockets[0].getsockname()[1] if sockets else self.port
        self.port = port
        self._url = f"http://{self.host}:{port}"
        self.server.server_address = f"{self.host}:{port}"
        self._start_simulation()

    def _start_simulation(self) -> None:
        self.sims.start(self, **self._want)

    def stop(self) -> None:
        """Stop the cluster as a machine is stopped: the API server closes every connection and its port (clients
        are refused), the simulated kubelet, Spark driver and GPUs stop. The objects stay (`start()` serves them
        again); the containers' clocks run on (`Containers`): a pod is not ended while the cluster is stopped,
        but one whose time passed ends as soon as it is started again."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            try:
                future.result(10)
            except Exception:  # stopping anyway
                log.exception("event=emulator_stop_error")
            loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._stopped = True
        self._thread = None
        self._loop = None
        log.info("event=emulator_stopped url=%s", self._url)

    def remove_pods(self) -> int:
        """While stopped: delete every pod at once, without grace (what bigk finds when a cluster comes back
        without the pods it had: its nodes were replaced, or it was rebuilt); returns how many."""
        if self._thread is not None:
            raise EmulatorError("remove_pods() is for a stopped emulated cluster")
        pods = self.store.objects(PODS.key)[0]
        for pod in pods:
            meta = pod["metadata"]
            self.store.remove(PODS.key, meta.get("namespace", ""), meta["name"])
            self.containers.forget(meta["uid"])
        return len(pods)

    async def _shutdown(self) -> None:
        self.sims.stop()
        self.server.drop_watches()
        if self._runner is not None:
            await self._runner.cleanup()
        current = asyncio.current_task()
        for task in asyncio.all_tasks():
            if task is not current:
                task.cancel()

    def __enter__(self) -> EmulatedCluster:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- conveniences --------------------------------------------------------------------
    def write_kubeconfig(self, path: str | Path) -> Path:
        """Write a kubeconfig for this cluster (start() first); returns the path."""
        if not self._url:
            raise EmulatorError("start the emulated cluster before writing a kubeconfig")
        return write_kubeconfig(path, self._url)

    def add_token(self, token: str, user: str, groups: Iterable[str] = ()) -> None:
        """Make `token` authenticate as `user` in `groups` in TokenReviews (see bigk.emulator.reviews)."""
        self.server.reviews.add_token(token, user, tuple(groups))

    def add_node(self, node: Node) -> Obj:
        """Create a node object from a model node (also while running)."""
        self.model_nodes[node.name] = node
        return self.api.create(NODES, "", node_object(node))

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the server loop and wait for its result (for loop-owned state)."""
        if self._loop is None or not self._loop.is_running():
            return fn()
        future: Any = asyncio.run_coroutine_threadsafe(_as_coro(fn), self._loop)
        return future.result(10)

    def drop_watches(self) -> int:
        """Abort every open watch connection (clients see the stream break); returns how many."""
        return int(self.call(self.server.drop_watches))

    def remove_node(self, name: str) -> None:
        """Delete a node object (its pods stay bound to it, as after a node vanishes)."""
        self.model_nodes.pop(name, None)
        self.api.delete(NODES, "", name)

    def set_node_ready(self, name: str, ready: bool) -> Obj | None:
        """Flip a node's Ready condition and its `node.kubernetes.io/not-ready` NoSchedule taint
        (what the node lifecycle controller does when a kubelet stops reporting)."""

        def change(node: Obj) -> None:
            set_condition(node, "Ready", "True" if ready else "False",
                          "KubeletReady" if ready else "KubeletNotReady",
                          "emulated kubelet is posting ready status" if ready else "emulated: node marked not ready")
            taints = [t for t in node["spec"].get("taints") or [] if t.get("key") != NOT_READY_TAINT]
            if not ready:
                taints.append({"key": NOT_READY_TAINT, "effect": "NoSchedule"})
            if taints:
                node["spec"]["taints"] = taints
            else:
                node["spec"].pop("taints", None)

        return self.api.update_object(NODES.key, "", name, change)

    def set_gpu_health(self, node: str, index: int, healthy: bool) -> None:
        """Mark one simulated GPU healthy or not; shows in the next readings."""
        if self.gpus is None:
            raise EmulatorError("GPU readings are disabled on this emulated cluster")
        self.gpus.set_health(node, index, healthy)

    def pod(self, name: str, namespace: str = "default") -> Obj | None:
        """A copy of a pod, or None."""
        return self.store.read(PODS.key, namespace, name)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
        """Poll `predicate` until it returns something truthy; raise TimeoutError after `timeout` s."""
        return poll(predicate, timeout, interval)

    def wait_for_phase(self, name: str, phase: str, namespace: str = "default", timeout: float = 10.0) -> Obj:
        """Wait until the pod reaches `phase`; returns it."""

        def check() -> Obj | None:
            pod = self.pod(name, namespace)
            return pod if pod is not None and pod.get("status", {}).get("phase") == phase else None

        return self.wait_for(check, timeout)


async def _as_coro(fn: Callable[[], Any]) -> Any:
    return fn()
