"""Start and stop a real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager.

The binaries are built from Go modules by `testenv/build.sh` (cached outside the checkout). The API
server runs with RBAC (`--authorization-mode=Node,RBAC`), an audit log (every request, at Metadata
level, as JSON lines), service-account token signing and a serving certificate from our own CA. No
kubelet runs here: nodes are objects that bigk's simulated kubelet keeps, as KWOK does. The
controller manager runs for garbage collection (Spark executors go with their driver), service
accounts and their tokens, namespaces, and node lifecycle (the simulated kubelets renew node
leases).

    python3 -m testenv.controlplane up [--dir DIR]   # prints the admin kubeconfig path
    python3 -m testenv.controlplane down [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from testenv.pki import Pki, make_pki

HERE = Path(__file__).resolve().parent
DEFAULT_DIR = Path(os.environ.get("BIGK_TESTENV_RUN", Path.home() / ".cache" / "bigk-testenv" / "run"))
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
"""
# All default controllers but those for clouds and node networking. The node lifecycle controller runs:
# bigk's simulated kubelet renews node leases, so it removes the not-ready taint that node
# registration adds, and would taint and evict a node whose simulated kubelet stops.
CONTROLLERS = "*,-node-ipam-controller,-cloud-node-lifecycle-controller,-service-lb-controller," \
              "-node-route-controller,-persistentvolume-attach-detach-controller"


class ControlPlaneError(RuntimeError):
    """The control plane could not be built or started; the message says which part and where its log is."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bin_dir(build: bool = True) -> Path:
    """The cached binaries' folder; built first (minutes, cold) when missing and `build` is true."""
    script = HERE / "build.sh"
    env = dict(os.environ)
    if not build:
        env["BIGK_TESTENV_NO_BUILD"] = "1"
    out = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise ControlPlaneError(f"testenv/build.sh failed:\n{out.stderr[-4000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


def write_kubeconfig(path: Path, server: str, ca: Path, crt: Path | None = None, key: Path | None = None,
                     token: str | None = None, user: str = "admin") -> Path:
    """A kubeconfig for one user of this control plane (client certificate or bearer token)."""
    creds: dict[str, str] = {}
    if crt is not None and key is not None:
        creds = {"client-certificate": str(crt), "client-key": str(key)}
    if token is not None:
        creds = {"token": token}
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "testenv",
        "clusters": [{"name": "testenv", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": creds}],
        "contexts": [{"name": "testenv", "context": {"cluster": "testenv", "user": user}}],
    }
    path.write_text(json.dumps(doc, indent=1))  # JSON is YAML
    path.chmod(0o600)
    return path


@dataclass
class ControlPlane:
    """One loopback control plane; `start()` it, point clients at `kubeconfig`, `stop()` it."""

    dir: Path = DEFAULT_DIR
    controller_manager: bool = True
    binaries: Path | None = None
    audit: bool = True  # False: no audit log (benchmarks: writing every request would skew them)
    controllers: str = CONTROLLERS  # kube-controller-manager's --controllers
    etcd_port: int = 0
    api_port: int = 0
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    # ---- paths -----------------------------------------------------------------------------
    @property
    def pki(self) -> Pki:
        return Pki(self.dir / "pki")

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "admin.kubeconfig"

    @property
    def audit_log(self) -> Path:
        return self.dir / "audit.log"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    def log_of(self, name: str) -> Path:
        return self.dir / f"{name}.log"

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> ControlPlane:
        self.binaries = self.binaries or bin_dir()
        self.dir.mkdir(parents=True, exist_ok=True)
        make_pki(self.dir / "pki")
        self.etcd_port = self.etcd_port or free_port()
        self.api_port = self.api_port or free_port()
        self.start_etcd()
        self.start_apiserver()
        write_kubeconfig(self.kubeconfig, self.server, self.pki.ca_crt, self.pki.crt("admin"), self.pki.key("admin"))
        if self.controller_manager:
            self.start_controller_manager()
            self.wait_for_default_service_account()
        (self.dir / "pids.json").write_text(json.dumps({k: p.pid for k, p in self.procs.items()}))
        return self

    def stop(self) -> None:
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            self.stop_process(name)

    def stop_process(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        assert self.binaries is not None
        log = self.log_of(name).open("ab")
        proc = subprocess.Popen([str(self.binaries / name), *argv], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs[name] = proc
        return proc

    def start_etcd(self, wipe: bool = True) -> None:
        data = self.dir / "etcd-data"
        if wipe and data.exists():
            shutil.rmtree(data)
        peer = free_port()
        url = f"http://127.0.0.1:{self.etcd_port}"
        self._spawn("etcd", [
            "--name=testenv", f"--data-dir={data}", f"--listen-client-urls={url}", f"--advertise-client-urls={url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}", f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=testenv=http://127.0.0.1:{peer}", "--unsafe-no-fsync=true",
            "--quota-backend-bytes=4294967296", "--log-level=warn",
        ])
        self._wait("etcd", lambda: _http_ok(f"{url}/health"), 60)

    def start_apiserver(self) -> None:
        pki = self.pki
        (self.dir / "audit-policy.yaml").write_text(AUDIT_POLICY)
        self._spawn("kube-apiserver", [
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}", "--bind-address=127.0.0.1",
            f"--secure-port={self.api_port}", f"--cert-dir={self.dir / 'serving'}",
            f"--tls-cert-file={pki.crt('apiserver')}", f"--tls-private-key-file={pki.key('apiserver')}",
            f"--client-ca-file={pki.ca_crt}", f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--api-audiences=https://kubernetes.default.svc.cluster.local",
            "--authorization-mode=Node,RBAC", *self._audit_flags(),
            "--service-cluster-ip-range=10.96.0.0/16", "--allow-privileged=true", "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none", "--max-requests-inflight=1000",
            "--max-mutating-requests-inflight=500", "--v=1",
        ])
        self._wait("kube-apiserver", self.ready, 120)

    def _audit_flags(self) -> list[str]:
        if not self.audit:
            return []
        return [f"--audit-policy-file={self.dir / 'audit-policy.yaml'}", f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json", "--audit-log-maxsize=200", "--audit-log-mode=batch",
                "--audit-log-batch-max-wait=1s"]

    def start_controller_manager(self) -> None:
        pki = self.pki
        kc = write_kubeconfig(self.dir / "controller-manager.kubeconfig", self.server, pki.ca_crt,
                              pki.crt("controller-manager"), pki.key("controller-manager"), user="kcm")
        port = free_port()
        self._spawn("kube-controller-manager", [
            f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            "--leader-elect=false", f"--controllers={self.controllers}", f"--secure-port={port}",
            "--bind-address=127.0.0.1", f"--service-account-private-key-file={pki.sa_key}",
            f"--root-ca-file={pki.ca_crt}", "--use-service-account-credentials=true",
            "--concurrent-gc-syncs=20", "--v=1",
        ])

    def ready(self) -> bool:
        return _http_ok(f"{self.server}/readyz", self.pki)

    def restart_apiserver(self, *, wipe_etcd: bool = False) -> None:
        """Stop kube-apiserver (and with `wipe_etcd` lose every object, as after a rebuilt control plane),
        then start it again on the same port."""
        self.stop_process("kube-apiserver")
        if wipe_etcd:
            self.stop_process("etcd")
            self.start_etcd(wipe=True)
        self.start_apiserver()

    def wait_for_default_service_account(self, timeout: float = 60.0) -> None:
        from kubernetes import client, config

        api = config.new_client_from_config(str(self.kubeconfig))
        core = client.CoreV1Api(api)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                core.read_namespaced_service_account("default", "default")
                return
            except Exception:
                time.sleep(0.3)
        raise ControlPlaneError(f"no default service account after {timeout:.0f} s: see "
                                f"{self.log_of('kube-controller-manager')}")

    def _wait(self, name: str, check: object, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        proc = self.procs[name]
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ControlPlaneError(f"{name} exited with {proc.returncode}: see {self.log_of(name)}:\n"
                                        + self.log_of(name).read_text(errors="replace")[-3000:])
            if check():  # type: ignore[operator]
                return
            time.sleep(0.2)
        raise ControlPlaneError(f"{name} not ready within {timeout:.0f} s: see {self.log_of(name)}")


def _http_ok(url: str, pki: Pki | None = None) -> bool:
    ctx = None
    if pki is not None:
        ctx = ssl.create_default_context(cafile=str(pki.ca_crt))
        ctx.load_cert_chain(str(pki.crt("admin")), str(pki.key("admin")))
    try:
        with urllib.request.urlopen(url, timeout=2, context=ctx) as r:  # noqa: S310 - loopback only
            return bool(r.status == 200)
    except Exception:
        return False


def _down(directory: Path) -> None:
    pids = directory / "pids.json"
    if not pids.exists():
        return
    for pid in json.loads(pids.read_text()).values():
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    pids.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="testenv", description="Real Kubernetes control plane on loopback.")
    parser.add_argument("action", choices=["up", "down", "build"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="state folder (default %(default)s)")
    parser.add_argument("--sim-nodes", type=Path, metavar="CLUSTER_FILE",
                        help="also run `bigk sim-nodes` for this cluster file (nodes, kubelet, Spark drivers, GPUs)")
    parser.add_argument("--time-scale", type=float, default=1.0, help="time scale of the simulated nodes")
    args = parser.parse_args(argv)
    if args.action == "build":
        print(bin_dir())
        return 0
    _down(args.dir)
    if args.action == "down":
        return 0
    plane = ControlPlane(dir=args.dir).start()
    pids = {k: p.pid for k, p in plane.procs.items()}
    if args.sim_nodes:
        log = plane.log_of("sim-nodes").open("ab")
        sim = subprocess.Popen([sys.executable, "-m", "bigk.cli.main", "sim-nodes", "--kubeconfig",
                                str(plane.kubeconfig), "--cluster", str(args.sim_nodes),
                                "--time-scale", str(args.time_scale)],
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        pids["sim-nodes"] = sim.pid
    (plane.dir / "pids.json").write_text(json.dumps(pids))
    print(plane.kubeconfig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
