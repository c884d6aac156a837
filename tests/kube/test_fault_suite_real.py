"""The control-plane fault scenarios (tests/kube/fault_scenarios.py) on a real kube-apiserver and etcd.

A control plane of its own (testenv/: etcd + kube-apiserver, no controller-manager), since these
tests stop kube-apiserver and wipe etcd. bigk reaches it through a TCP relay, which is how a network
drop is made: the relay cuts every open connection (TLS passes through it untouched). After a wipe,
the nodes and the default service account are registered again, as kubelets and the controller-manager
would; pods of a "restored snapshot" are created again, with new resource versions below bigk's.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from bigk.emulator.nodes import node_object
from testenv.controlplane import ControlPlane
from tests.kube import fault_scenarios
from tests.kube.conftest import small_cluster
from tests.kube.harness import Harness

pytestmark = [pytest.mark.cluster]


class Relay:
    """A TCP relay to kube-apiserver whose open connections can all be cut at once."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self.server.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(self.target, timeout=5)
            except OSError:
                down.close()
                continue
            up.settimeout(None)
            with self._lock:
                self._conns |= {down, up}
            for a, b in ((down, up), (up, down)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
                with self._lock:
                    self._conns.discard(s)

    def cut(self) -> int:
        """Drop every connection open now (both ends see a reset); returns how many pairs."""
        with self._lock:
            conns = list(self._conns)
        for s in conns:  # shutdown (not close) wakes the relay threads blocked on these sockets
            with contextlib.suppress(OSError):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.shutdown(socket.SHUT_RDWR)
        return len(conns) // 2

    def close(self) -> None:
        self.server.close()
        self.cut()


class RealControlPlane:
    """fault_scenarios.ControlPlane over testenv's ControlPlane."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.relay = Relay(plane.api_port)
        self.watch_cuts = 0

    def api(self) -> client.ApiClient:
        """A client that reaches kube-apiserver through the relay."""
        api = config.new_client_from_config(str(self.plane.kubeconfig))
        api.configuration.host = f"https://127.0.0.1:{self.relay.port}"
        return api

    def register(self) -> None:
        """What kubelets and the controller-manager would do: Ready nodes (untainted), the default account."""
        core = client.CoreV1Api(config.new_client_from_config(str(self.plane.kubeconfig)))
        for node in small_cluster():
            body = node_object(node)
            try:
                core.create_node(body, _preload_content=False)
            except client.ApiException as exc:
                if exc.status != 409:
                    raise
            core.patch_node(node.name, {"spec": {"taints": [t for t in body["spec"].get("taints") or []]}})
        try:
            core.create_namespaced_service_account("default", client.V1ServiceAccount(
                metadata=client.V1ObjectMeta(name="default")))
        except client.ApiException as exc:
            if exc.status != 409:
                raise

    def restart(self, *, keep_state: bool, restore: list[dict[str, Any]] | None = None) -> None:
        self.plane.restart_apiserver(wipe_etcd=not keep_state)
        self.register()
        core = client.CoreV1Api(config.new_client_from_config(str(self.plane.kubeconfig)))
        for pod in restore or []:
            meta = {k: v for k, v in pod["metadata"].items() if k in ("name", "namespace", "labels", "annotations")}
            spec = {k: v for k, v in pod["spec"].items() if k != "nodeName"}
            core.create_namespaced_pod(meta["namespace"], {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                                                           "spec": spec})

    def drop_watches(self) -> int:
        return self.relay.cut()


@pytest.fixture(scope="module")
def real_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealControlPlane]:
    plane = ControlPlane(dir=Path(tmp_path_factory.mktemp("faultplane")), controller_manager=False).start()
    cp = RealControlPlane(plane)
    try:
        cp.register()
        yield cp
    finally:
        cp.relay.close()
        plane.stop()


@pytest.fixture
def real_harness(real_plane: RealControlPlane) -> Iterator[Harness]:
    core = client.CoreV1Api(config.new_client_from_config(str(real_plane.plane.kubeconfig)))
    core.delete_collection_namespaced_pod("default", grace_period_seconds=0)  # each scenario starts empty
    core.delete_collection_namespaced_event("default")
    h = Harness(real_plane.api(), namespace="default", image="registry.k8s.io/pause:3.10", timeout=30.0)
    h.wait(lambda: not core.list_namespaced_pod("default").items, what="an empty namespace")
    yield h
    h.close()


def test_state_loss_on_kube_apiserver(real_harness: Harness, real_plane: RealControlPlane) -> None:
    """kube-apiserver restarted on a wiped etcd: bigk lists afresh and the old state holds no room."""
    fault_scenarios.state_loss(real_harness, real_plane)


def test_restore_from_an_older_snapshot_mid_bind(real_harness: Harness, real_plane: RealControlPlane) -> None:
    """etcd wiped and the pods of an older snapshot restored while binds are in flight."""
    fault_scenarios.restart_mid_bind(real_harness, real_plane, lambda: None)


def test_apiserver_restart_keeping_etcd(real_harness: Harness, real_plane: RealControlPlane) -> None:
    fault_scenarios.apiserver_restart(real_harness, real_plane)


def test_network_drop_during_watch(real_harness: Harness, real_plane: RealControlPlane) -> None:
    fault_scenarios.network_drop(real_harness, real_plane)
