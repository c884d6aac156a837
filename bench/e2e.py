"""bigk and kube-scheduler side by side on one real kube-apiserver: throughput, Spark deadlocks, GPU packing.

    python3 bench/e2e.py --schedulers bigk,kube-scheduler,kube-scheduler-binpack --nodes 1000,5000 \\
        --json bench/results/e2e.json --plot bench/results/e2e.png [--smoke]

For every node count it starts the real control plane of `testenv/` (etcd, kube-apiserver with RBAC,
kube-controller-manager for service accounts and garbage collection; no audit log and no node lifecycle
controller, see below), registers the nodes (8-GPU nodes with the labels NVIDIA's GPU feature discovery
writes, and CPU nodes), then runs each scheduler in turn, alone, on the same pods:

- `bigk`: `bench/e2e_bigk.py` (bigk's `SchedulerLoop` with `bigk serve`'s default policy, `bigk`, unless
  `--bigk-policy` names another) as a process, pods `schedulerName: bigk`;
- `kube-scheduler`: `cmd/kube-scheduler` of the same k8s.io/kubernetes module as the API server, default
  profile (`default-scheduler`);
- `kube-scheduler-binpack`: the same binary with one profile whose NodeResourcesFit scores `MostAllocated`
  (cpu 1, memory 1, nvidia.com/gpu 3, as in the Kubernetes bin-packing docs).

kube-scheduler's client rate limit is raised from its default (qps 50, burst 100) to qps 5000, burst
10000, so that it is not throttled where bigk's client is not. Workloads, one row each:

1. throughput: plain pods and GPU pods (nvidia.com/gpu 1, 2, 4, 8) created from 16 threads as fast as the API
   server takes them; pods bound per second end to end (first seen → bound, both as seen by one watch),
   p50/p99 latency, CPU seconds and peak RSS of the scheduler process, API server requests per second.
2. spark: K applications (a driver; then E one-GPU executors that bigk's simulated Spark driver creates, 5
   per second, owned by the driver) arriving together on a pool that holds only some whole; each waits for
   all its executors before working (`minRegisteredResourcesRatio=1.0`, as barrier / GPU jobs do). After a
   fixed time: complete, stuck (driver bound, executors pending) and GPUs held by stuck applications.
   The simulated kubelet runs the pods of this row only (it runs drivers, so they create executors).
3. packing (the FGD paper's workload, ATC '23, as in DESIGN.md "Anchors"): the packing pool is `--pack-nodes`
   GPU nodes of the Alibaba trace itself (openb_node_list_all_node.csv: its CPU, memory, GPU count and model;
   a seeded sample without replacement of its 1,213 GPU nodes), labelled as GPU feature discovery does
   (`nvidia.com/gpu.product`, `.count`, `.memory`; the trace's models named as GFD names them, the undisclosed
   G1-G3 kept as the trace names them). Pods are the trace's own (openb_pod_list_default.csv, CPU-only pods
   included, as the paper does), sampled with replacement from `--pack-seed` (default 42); they are created one
   at a time, in that order, until the next one would take the requested GPUs past 100 % of the pool's GPUs.
   A fraction of a GPU (gpu_milli < 1000, 38 % of the trace's pods) asks for one whole `nvidia.com/gpu`: the
   default device plugin cannot share, and both schedulers must see the same requests. So the figures are not
   the paper's (it shares GPUs); the protocol is. Measured once binding has settled: unallocated GPU % of the
   pool, the pods left pending and why (no node had the GPUs free, or the GPUs were free only on nodes whose
   CPU or memory was taken: CPU stranding), and the free GPUs stranded on nodes with no CPU left for a GPU pod.
   `packing-uniform` (not run by default) is the earlier row: the trace's pods in trace order onto identical
   8-GPU nodes until requests reach exactly 100 %, which every bin-packer fills to 0 %.

Simulation, honestly: no kubelet runs for rows 1 and 3 (a pod counts as scheduled when bound); nodes are
Node objects without leases, so the node lifecycle controller is off and the registration taint
`node.kubernetes.io/not-ready` is removed by the benchmark right after each node is created.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import itertools
import json
import os
import platform
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubernetes import client, config, watch  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402

from bigk.cluster.executor_request import encode_executor_request  # noqa: E402
from bigk.cluster.gpu_labels import OWNER_DEVICE_PLUGIN  # noqa: E402
from bigk.cluster.model import Gpu, Node, PodRequest  # noqa: E402
from bigk.emulator.nodes import node_object  # noqa: E402
from bigk.emulator.remote import NOT_READY_TAINT, SimulatedNodes  # noqa: E402
from testenv.controlplane import ControlPlane, write_kubeconfig  # noqa: E402

NAMESPACE = "bench"
POOL = "bench.bigk.io/pool"
GPU_MODEL = "NVIDIA-A100-SXM4-80GB"
SCHEDULER_NAMES = {"bigk": "bigk", "bigk-bind4": "bigk", "kube-scheduler": "default-scheduler",
                   "kube-scheduler-binpack": "binpack-scheduler"}
# bigk: 16 binds in flight, what `bigk serve` runs (SchedulerLoop's default); bigk-bind4: 4, the default before this
# benchmark found that bottleneck (the "bigk" rows of the README's first table, measured then, ran 4)
BIGK_BIND_WORKERS = {"bigk": "16", "bigk-bind4": "4"}
GPU_SIZES = (1, 2, 4, 8)
# Service accounts (pods need theirs), their tokens, garbage collection (executors go with their driver),
# namespaces. No node lifecycle: nodes here have no leases.
CONTROLLERS = "serviceaccount-controller,serviceaccount-token-controller,garbage-collector-controller," \
              "namespace-controller"
# The trace's GPU models as GPU feature discovery names them (nvidia.com/gpu.product); G1-G3 are undisclosed.
GFD_PRODUCTS = {"P100": "Tesla-P100-PCIE-16GB", "T4": "Tesla-T4", "V100M16": "Tesla-V100-SXM2-16GB",
                "V100M32": "Tesla-V100-SXM2-32GB", "A10": "NVIDIA-A10"}
PACK_SEED = 42
WORKLOADS = ("throughput", "spark", "packing", "packing-uniform")


@dataclass
class Sizes:
    """How big each workload is for one node count."""

    nodes: int
    pods: int  # throughput row
    spark_nodes: int  # 8-GPU nodes of the spark pool
    spark_apps: int
    spark_executors: int
    spark_window_s: float
    pack_nodes: int  # trace GPU nodes of the packing pool
    uniform_nodes: int  # 8-GPU nodes of the packing-uniform pool
    pack_seed: int = PACK_SEED
    time_scale: float = 0.25
    app_duration_s: float = 20.0  # simulated seconds of work per Spark application
    bind_timeout_s: float = 180.0
    settle_s: float = 5.0  # packing: binding has settled when no pod was bound for this long

    @staticmethod
    def for_nodes(nodes: int, pods: int | None, smoke: bool, pack_nodes: int | None = None,
                  pack_seed: int = PACK_SEED) -> Sizes:
        if smoke:
            return Sizes(nodes, pods or 20, spark_nodes=2, spark_apps=4, spark_executors=8, spark_window_s=15.0,
                         pack_nodes=pack_nodes or 3, uniform_nodes=2, pack_seed=pack_seed, time_scale=0.1,
                         bind_timeout_s=30.0, settle_s=2.0)
        return Sizes(nodes, pods or 1000, spark_nodes=4, spark_apps=8, spark_executors=8, spark_window_s=60.0,
                     pack_nodes=pack_nodes or 150, uniform_nodes=25, pack_seed=pack_seed, settle_s=10.0)


# ---- cluster ---------------------------------------------------------------------------------------
def trace_pool(count: int, seed: int) -> list[Node]:
    """`count` GPU nodes of the trace (a seeded sample without replacement), pool `packing`, GFD labels."""
    import numpy as np

    from bigk.sim.trace import DEFAULT_NODES, load_nodes

    gpu_nodes = load_nodes(DEFAULT_NODES, gpu_only=True)
    if count > len(gpu_nodes):
        raise ValueError(f"--pack-nodes {count}: the trace has only {len(gpu_nodes)} GPU nodes")
    picked = sorted(np.random.default_rng(seed).choice(len(gpu_nodes), size=count, replace=False))
    out = []
    for i in picked:
        n = gpu_nodes[int(i)]
        model = n.gpus[0].model
        out.append(Node(n.name, n.cpu_milli, n.memory_mib, pods=110, labels={POOL: "packing"},
                        gpus=[Gpu(g.index, GFD_PRODUCTS.get(model, model), g.memory_mib) for g in n.gpus],
                        gpu_owner=OWNER_DEVICE_PLUGIN))
    return out


def bench_nodes(sizes: Sizes) -> list[Node]:
    """Half the nodes 8-GPU nodes (96 cores, 1 TiB), the first of them the spark and packing-uniform pools, the
    rest `general`; then the packing pool (trace GPU nodes, see `trace_pool`); CPU nodes (64 cores, 256 GiB,
    `general`) up to `sizes.nodes`."""
    gpu_count = max(sizes.nodes // 2, sizes.spark_nodes + sizes.uniform_nodes + 1)
    nodes = trace_pool(sizes.pack_nodes, sizes.pack_seed)
    for i in range(max(sizes.nodes - len(nodes), gpu_count)):
        if i < gpu_count:
            pool = "spark" if i < sizes.spark_nodes else "packing-uniform" \
                if i < sizes.spark_nodes + sizes.uniform_nodes else "general"
            nodes.append(Node(f"gpu-{i:05d}", 96_000, 1_048_576, pods=110,
                              gpus=[Gpu(g, GPU_MODEL, 81_920) for g in range(8)], labels={POOL: pool},
                              gpu_owner=OWNER_DEVICE_PLUGIN))
        else:
            nodes.append(Node(f"cpu-{i:05d}", 64_000, 262_144, pods=110, labels={POOL: "general"}))
    return nodes


def create_nodes(api: client.ApiClient, nodes: list[Node], threads: int = 16) -> float:
    """Register the Node objects from a thread pool, then take off the registration's not-ready taint
    (no node lifecycle controller runs); returns the seconds it took."""
    core = client.CoreV1Api(api)
    start = time.monotonic()

    def one(node: Node) -> None:
        body = node_object(node)
        try:
            core.create_node(body, _preload_content=False)  # type: ignore[arg-type]
        except ApiException as exc:
            if exc.status != 409:
                raise
        current = json.loads(core.read_node(node.name, _preload_content=False).data)  # type: ignore[attr-defined]
        taints = [t for t in current["spec"].get("taints") or [] if t.get("key") != NOT_READY_TAINT]
        if taints != (current["spec"].get("taints") or []):
            core.patch_node(node.name, {"spec": {"taints": taints or None}}, _preload_content=False)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, nodes))
    return time.monotonic() - start


def ensure_namespace(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    except ApiException as exc:
        if exc.status != 409:
            raise
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # pods need the namespace's default service account
        try:
            core.read_namespaced_service_account("default", NAMESPACE)
            return
        except ApiException:
            time.sleep(0.2)
    raise RuntimeError("no default service account in namespace bench within 60 s")


def clear_pods(api: client.ApiClient, timeout: float = 120.0) -> None:
    core = client.CoreV1Api(api)
    core.delete_collection_namespaced_pod(NAMESPACE, grace_period_seconds=0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not json.loads(core.list_namespaced_pod(NAMESPACE, limit=1, _preload_content=False).data)["items"]:  # type: ignore[attr-defined]
            return
        time.sleep(0.5)
        core.delete_collection_namespaced_pod(NAMESPACE, grace_period_seconds=0)
    raise RuntimeError(f"pods of namespace {NAMESPACE} still there after {timeout:.0f} s")


# ---- pods ------------------------------------------------------------------------------------------
def pod_body(name: str, scheduler: str, *, cpu_milli: int, memory_mib: int, gpus: int = 0, pool: str,
             labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    resources: dict[str, dict[str, str]] = {"requests": {"cpu": f"{cpu_milli}m", "memory": f"{memory_mib}Mi"}}
    if gpus:
        resources["limits"] = {"nvidia.com/gpu": str(gpus)}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}},
        "spec": {"schedulerName": scheduler, "nodeSelector": {POOL: pool}, "terminationGracePeriodSeconds": 0,
                 "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10", "resources": resources}]},
    }


def pod_gpus(pod: dict[str, Any]) -> int:
    total = 0
    for c in pod["spec"].get("containers") or []:
        total += int(((c.get("resources") or {}).get("limits") or {}).get("nvidia.com/gpu", 0))
    return total


class PodWatch:
    """One watch on the benchmark namespace: when each pod was first seen and when it was first bound."""

    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)
        self.seen: dict[str, float] = {}
        self.bound: dict[str, float] = {}
        self.pods: dict[str, dict[str, Any]] = {}
        self.labels: dict[str, dict[str, str]] = {}  # every pod seen, deleted ones included
        self.lock = threading.Lock()
        self._w = watch.Watch()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-watch")

    def start(self) -> PodWatch:
        rv = json.loads(self.core.list_namespaced_pod(NAMESPACE, _preload_content=False).data)["metadata"][  # type: ignore[attr-defined]
            "resourceVersion"]
        self._rv = rv
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for event in self._w.stream(self.core.list_namespaced_pod, NAMESPACE, resource_version=self._rv,
                                            deserialize=False, timeout_seconds=600, allow_watch_bookmarks=True):
                    now = time.monotonic()
                    obj = event["object"]
                    self._rv = obj.get("metadata", {}).get("resourceVersion") or self._rv
                    if event["type"] in ("BOOKMARK", "ERROR"):
                        continue
                    name = obj["metadata"]["name"]
                    with self.lock:
                        if event["type"] == "DELETED":
                            self.pods.pop(name, None)
                            continue
                        self.pods[name] = obj
                        self.labels[name] = obj["metadata"].get("labels") or {}
                        self.seen.setdefault(name, now)
                        if obj["spec"].get("nodeName"):
                            self.bound.setdefault(name, now)
            except Exception:
                if self._stop.is_set():
                    return
                time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        self._w.stop()

    def reset(self) -> None:
        with self.lock:
            self.seen.clear()
            self.bound.clear()
            self.labels.clear()

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate():
                    return True
            time.sleep(0.1)
        return False


# ---- measurements --------------------------------------------------------------------------------------
def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class ApiserverMetrics:
    """Total requests served by kube-apiserver, from its /metrics (admin client certificate)."""

    def __init__(self, plane: ControlPlane) -> None:
        self.url = f"{plane.server}/metrics"
        self.ctx = ssl.create_default_context(cafile=str(plane.pki.ca_crt))
        self.ctx.load_cert_chain(str(plane.pki.crt("admin")), str(plane.pki.key("admin")))

    def requests(self) -> float:
        with urllib.request.urlopen(self.url, timeout=30, context=self.ctx) as r:  # noqa: S310 - loopback
            text = r.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("apiserver_request_total{"))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# ---- schedulers ------------------------------------------------------------------------------------
KUBE_SCHEDULER_CONFIG = """apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection: {{leaderElect: false}}
clientConnection: {{kubeconfig: "{kubeconfig}", qps: 5000, burst: 10000}}
profiles:
{profile}"""
DEFAULT_PROFILE = "  - schedulerName: default-scheduler\n"
BINPACK_PROFILE = """  - schedulerName: binpack-scheduler
    pluginConfig:
      - name: NodeResourcesFit
        args:
          scoringStrategy:
            type: MostAllocated
            resources: [{name: cpu, weight: 1}, {name: memory, weight: 1}, {name: nvidia.com/gpu, weight: 3}]
"""


class SchedulerProcess:
    """One scheduler as a child process (bigk's loop or kube-scheduler), measured through /proc."""

    def __init__(self, kind: str, plane: ControlPlane, workdir: Path, bigk_policy: str = "bigk") -> None:
        self.kind = kind
        self.bigk_policy = bigk_policy
        self.plane = plane
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"{kind}.log"

    def start(self) -> SchedulerProcess:
        pki = self.plane.pki
        out = self.log.open("wb")
        if self.kind.startswith("bigk"):
            argv = [sys.executable, str(ROOT / "bench" / "e2e_bigk.py"), "--kubeconfig", str(self.plane.kubeconfig),
                    "--scheduler-name", SCHEDULER_NAMES[self.kind], "--bind-workers", BIGK_BIND_WORKERS[self.kind],
                    "--policy", self.bigk_policy,
                    "--log-level", os.environ.get("BIGK_E2E_LOG", "WARNING")]
        else:
            assert self.plane.binaries is not None
            kc = write_kubeconfig(self.workdir / "scheduler.kubeconfig", self.plane.server, pki.ca_crt,
                                  pki.crt("scheduler"), pki.key("scheduler"), user="scheduler")
            profile = BINPACK_PROFILE if self.kind == "kube-scheduler-binpack" else DEFAULT_PROFILE
            cfg = self.workdir / f"{self.kind}.yaml"
            cfg.write_text(KUBE_SCHEDULER_CONFIG.format(kubeconfig=kc, profile=profile))
            from testenv.controlplane import free_port

            admin = str(self.plane.kubeconfig)
            argv = [str(self.plane.binaries / "kube-scheduler"), f"--config={cfg}",
                    f"--authentication-kubeconfig={admin}", f"--authorization-kubeconfig={admin}",
                    f"--secure-port={free_port()}", "--bind-address=127.0.0.1", "--v=1"]
        self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}: see {self.log}:\n"
                               + self.log.read_text(errors="replace")[-2000:])
        return self.proc.pid

    def cpu_s(self) -> float:
        return proc_cpu_s(self.pid)

    def peak_rss_mib(self) -> float:
        return proc_peak_rss_mib(self.pid)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def wait_ready(api: client.ApiClient, podwatch: PodWatch, scheduler: str, timeout: float = 120.0) -> float:
    """A probe pod the scheduler must bind: it has synced its caches. Returns seconds until bound."""
    core = client.CoreV1Api(api)
    start = time.monotonic()
    core.create_namespaced_pod(NAMESPACE, pod_body("probe", scheduler, cpu_milli=10, memory_mib=16, pool="general"))  # type: ignore[arg-type]
    if not podwatch.wait(lambda: "probe" in podwatch.bound, timeout):
        raise RuntimeError(f"{scheduler} bound no probe pod within {timeout:.0f} s")
    core.delete_namespaced_pod("probe", NAMESPACE, grace_period_seconds=0)
    podwatch.wait(lambda: "probe" not in podwatch.pods, 30)
    return time.monotonic() - start


# ---- workloads -----------------------------------------------------------------------------------------
@dataclass
class Row:
    scheduler: str
    nodes: int
    workload: str
    figures: dict[str, Any] = field(default_factory=dict)
    timeline: list[float] = field(default_factory=list)  # seconds from the first pod seen to each bind


def create_many(api: client.ApiClient, bodies: list[dict[str, Any]], threads: int,
                created: dict[str, float] | None = None) -> float:
    """Create the pods (from `threads` threads); `created` gets when each create was answered."""
    core = client.CoreV1Api(api)
    start = time.monotonic()

    def one(body: dict[str, Any]) -> None:
        core.create_namespaced_pod(NAMESPACE, body, _preload_content=False)  # type: ignore[arg-type]
        if created is not None:
            created[body["metadata"]["name"]] = time.monotonic()

    if threads <= 1:
        for body in bodies:
            one(body)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, bodies))
    return time.monotonic() - start


def throughput(api: client.ApiClient, podwatch: PodWatch, sched: SchedulerProcess, metrics: ApiserverMetrics,
               sizes: Sizes, scheduler: str) -> dict[str, Any]:
    bodies = []
    for i in range(sizes.pods):
        gpus = 0 if i % 2 == 0 else GPU_SIZES[(i // 2) % len(GPU_SIZES)]
        bodies.append(pod_body(f"tp-{i:05d}", scheduler, cpu_milli=500, memory_mib=1024, gpus=gpus, pool="general"))
    names = {b["metadata"]["name"] for b in bodies}
    podwatch.reset()
    cpu0, req0, t0 = sched.cpu_s(), metrics.requests(), time.monotonic()
    created: dict[str, float] = {}
    create_s = create_many(api, bodies, threads=16, created=created)
    done = podwatch.wait(lambda: names <= podwatch.bound.keys(), sizes.bind_timeout_s)
    t1 = time.monotonic()
    cpu1, req1 = sched.cpu_s(), metrics.requests()
    with podwatch.lock:  # created: the earlier of the create's answer and the watch's ADDED
        seen = {n: min(podwatch.seen.get(n, t), t) for n, t in created.items()}
        bound = {n: podwatch.bound[n] for n in names if n in podwatch.bound}
    first = min(seen.values()) if seen else t0
    last = max(bound.values()) if bound else t1
    latencies = [bound[n] - seen[n] for n in bound if n in seen]
    return {
        "pods": sizes.pods, "bound": len(bound), "all_bound": done, "create_s": round(create_s, 2),
        "created_per_s": round(sizes.pods / create_s, 1),
        "pods_per_s": round(len(bound) / max(last - first, 1e-6), 1),
        "p50_latency_s": round(percentile(latencies, 0.5), 3), "p99_latency_s": round(percentile(latencies, 0.99), 3),
        "scheduler_cpu_s": round(cpu1 - cpu0, 2), "scheduler_peak_rss_mib": round(sched.peak_rss_mib(), 1),
        "apiserver_requests_per_s": round((req1 - req0) / (t1 - t0), 1),
        "_timeline": sorted(b - first for b in bound.values()),
    }


_SPARK_RUNS = itertools.count(1)


def spark_apps(api: client.ApiClient, podwatch: PodWatch, plane_api: client.ApiClient, nodes: list[Node],
               sizes: Sizes, scheduler: str) -> dict[str, Any]:
    """K applications arrive together; count complete / stuck after a fixed time."""
    k, e = sizes.spark_apps, sizes.spark_executors
    run = next(_SPARK_RUNS)
    executor = PodRequest(2_000, 8_192, gpu_count=1)
    conf = {"spark.scheduler.minRegisteredResourcesRatio": "1.0",
            "spark.scheduler.maxRegisteredResourcesWaitingTime": "3600s",
            f"spark.kubernetes.node.selector.{POOL}": "spark"}
    bodies = []
    for i in range(k):
        app = f"{scheduler}-{run}-app-{i:03d}"  # names never reused: each row its own applications
        bodies.append(pod_body(f"{app}-driver", scheduler, cpu_milli=1_000, memory_mib=2_048, pool="spark",
                               labels={"spark-app-selector": app, "spark-role": "driver"},
                               annotations={
                                   "bigk.io/min-executors": str(e), "bigk.io/max-executors": str(e),
                                   "bigk.io/executor-request": encode_executor_request(executor, {POOL: "spark"}),
                                   "bigk.io/expected-duration-seconds": str(sizes.app_duration_s),
                                   "bigk.io/sim-executors": str(e), "bigk.io/sim-executor-gpus": "1",
                                   "bigk.io/sim-executor-cpu": "2", "bigk.io/sim-executor-memory": "6g",
                                   "bigk.io/sim-spark-conf": json.dumps(conf)}))
    spark_nodes = [n for n in nodes if n.labels.get(POOL) == "spark"]
    forget_device_allocations(api, spark_nodes)
    sim = SimulatedNodes(plane_api, spark_nodes, time_scale=sizes.time_scale, default_duration=36_000.0,
                         kubelet=True, spark_driver=True, gpu_readings=False).start()
    try:
        podwatch.reset()
        t0 = time.monotonic()
        create_many(api, bodies, threads=k)
        time.sleep(max(0.0, sizes.spark_window_s - (time.monotonic() - t0)))
        with podwatch.lock:
            pods = list(podwatch.pods.values())
            bound_at = dict(podwatch.bound)
            labels = dict(podwatch.labels)
    finally:
        sim.stop()
    import numpy as np

    complete = stuck = stuck_gpus = 0
    gang_starts: list[float] = []  # per application: driver created -> its last member of the gang bound
    running_gpus = drivers_bound = drivers_running = executors_created = executors_bound = 0
    for i in range(k):
        app = f"{scheduler}-{run}-app-{i:03d}"
        members = [p for p in pods if (p["metadata"].get("labels") or {}).get("spark-app-selector") == app]
        driver = next((p for p in members if p["metadata"]["labels"].get("spark-role") == "driver"), None)
        execs = [p for p in members if p["metadata"]["labels"].get("spark-role") == "executor"]
        if driver is None:
            continue
        ever = [n for n, lab in labels.items() if lab.get("spark-app-selector") == app]  # deleted executors too
        exec_bound = sorted(bound_at[n] for n in ever if labels[n].get("spark-role") == "executor" and n in bound_at)
        driver_at = bound_at.get(driver["metadata"]["name"])
        if driver_at is not None and len(exec_bound) >= e:
            gang_starts.append(max(driver_at, exec_bound[e - 1]) - t0)
        drivers_bound += bool(driver["spec"].get("nodeName"))
        drivers_running += (driver.get("status") or {}).get("phase") in ("Running", "Succeeded")
        executors_created += len(execs)
        executors_bound += sum(1 for p in execs if p["spec"].get("nodeName"))
        if (driver.get("status") or {}).get("phase") == "Succeeded":
            complete += 1
            continue
        held = sum(pod_gpus(p) for p in execs if p["spec"].get("nodeName"))
        if driver["spec"].get("nodeName") and any(not p["spec"].get("nodeName") for p in execs):
            stuck += 1
            stuck_gpus += held
        else:
            running_gpus += held
    return {"apps": k, "executors_per_app": e, "pool_gpus": 8 * len(spark_nodes),
            "window_s": sizes.spark_window_s, "complete": complete, "stuck": stuck,
            "gpus_held_by_stuck": stuck_gpus, "other_incomplete": k - complete - stuck,
            # gang latency: from the applications' creation until driver and all executors are bound; an application
            # whose gang never became whole in the window has none (it counts in gangs_never_whole)
            "gangs_whole": len(gang_starts), "gangs_never_whole": k - len(gang_starts),
            "gang_latency_p50_s": round(float(np.percentile(gang_starts, 50)), 3) if gang_starts else None,
            "gang_latency_p99_s": round(float(np.percentile(gang_starts, 99)), 3) if gang_starts else None,
            "at_the_end": {"drivers_bound": drivers_bound, "drivers_running": drivers_running,
                           "executors_created": executors_created, "executors_bound": executors_bound}}


def forget_device_allocations(api: client.ApiClient, nodes: list[Node]) -> None:
    """Start the simulated device plugin of the spark pool afresh: the checkpoint it keeps on the node names
    the executors of the previous row, which the benchmark deleted while no simulated kubelet watched."""
    from bigk.cluster.devices import DEVICE_ALLOCATIONS_ANNOTATION

    core = client.CoreV1Api(api)
    for node in nodes:
        core.patch_node(node.name, {"metadata": {"annotations": {DEVICE_ALLOCATIONS_ANNOTATION: None}}},
                        _preload_content=False)


PackRequest = tuple[str, int, int, int]  # (trace pod name, cpu_milli, memory_mib, whole nvidia.com/gpu)


def _whole(pod: Any) -> PackRequest:
    # a fraction of one GPU asks for one whole nvidia.com/gpu here (the device plugin does not share)
    return (pod.name, pod.request.cpu_milli, pod.request.memory_mib, pod.request.gpu_count)


def trace_requests(limit_gpus: int) -> list[PackRequest]:
    """packing-uniform: trace pods in trace order until GPU requests reach `limit_gpus`."""
    from bigk.sim.trace import DEFAULT_PODS, load_pods

    out: list[PackRequest] = []
    total = 0
    for pod in load_pods(DEFAULT_PODS):
        req = _whole(pod)
        if total + req[3] > limit_gpus:
            break
        total += req[3]
        out.append(req)
        if total == limit_gpus:
            break
    return out


def sampled_requests(limit_gpus: int, seed: int) -> list[PackRequest]:
    """packing: trace pods sampled with replacement (seeded) until the next would pass `limit_gpus`."""
    import numpy as np

    from bigk.sim.trace import DEFAULT_PODS, load_pods

    pods = load_pods(DEFAULT_PODS)
    rng = np.random.default_rng(seed)
    out: list[PackRequest] = []
    total = 0
    while True:
        req = _whole(pods[int(rng.integers(len(pods)))])
        if total + req[3] > limit_gpus:
            return out
        total += req[3]
        out.append(req)


def _fits(free: tuple[int, int, int], req: PackRequest) -> bool:
    return free[0] >= req[1] and free[1] >= req[2] and free[2] >= req[3]


def pending_reasons(pool: list[Node], placed: dict[str, str], requests: dict[str, PackRequest]) -> dict[str, Any]:
    """Why the pods left pending did not fit the pool as the scheduler left it: no node had their GPUs free
    (`gpu`), the GPUs were free only where CPU or memory was taken (`cpu_or_memory`), or some node fits them
    (`fits_somewhere`: the scheduler did not place a pod that fits). Also the free GPUs stranded on nodes whose
    free CPU is below the smallest CPU request of the GPU pods."""
    free = {n.name: [n.cpu_milli, n.memory_mib, len(n.gpus)] for n in pool}
    for pod, node in placed.items():
        r = requests[pod]
        free[node][0] -= r[1]
        free[node][1] -= r[2]
        free[node][2] -= r[3]
    counts = {"gpu": 0, "cpu_or_memory": 0, "fits_somewhere": 0}
    gpus = dict.fromkeys(counts, 0)
    for name, r in requests.items():
        if name in placed:
            continue
        if any(_fits((f[0], f[1], f[2]), r) for f in free.values()):
            why = "fits_somewhere"
        elif any(f[2] >= r[3] for f in free.values()):
            why = "cpu_or_memory"
        else:
            why = "gpu"
        counts[why] += 1
        gpus[why] += r[3]
    min_cpu = min((r[1] for r in requests.values() if r[3]), default=0)
    return {"pending_pods_by_reason": counts, "pending_gpus_by_reason": gpus,
            "free_gpus": sum(f[2] for f in free.values()),
            "free_gpus_on_nodes_without_cpu_for_a_gpu_pod": sum(f[2] for f in free.values() if f[0] < min_cpu),
            "nodes_with_free_gpus": sum(1 for f in free.values() if f[2] > 0)}


def packing(api: client.ApiClient, podwatch: PodWatch, nodes: list[Node], sizes: Sizes, scheduler: str,
            workload: str) -> dict[str, Any]:
    """One packing row (`packing`: trace nodes and sampled trace pods; `packing-uniform`: 8-GPU nodes and
    trace pods in trace order)."""
    pool = [n for n in nodes if n.labels.get(POOL) == workload]
    capacity = sum(len(n.gpus) for n in pool)
    requests = sampled_requests(capacity, sizes.pack_seed) if workload == "packing" else trace_requests(capacity)
    prefix = "pk" if workload == "packing" else "pu"
    by_name = {f"{prefix}-{i:05d}": r for i, r in enumerate(requests)}
    bodies = [pod_body(name, scheduler, cpu_milli=cpu, memory_mib=mem, gpus=g, pool=workload)
              for name, (_, cpu, mem, g) in by_name.items()]
    podwatch.reset()
    started = time.monotonic()
    create_many(api, bodies, threads=1)  # one at a time, in order
    names = set(by_name)
    last_count, last_change = -1, time.monotonic()
    deadline = time.monotonic() + sizes.bind_timeout_s
    while time.monotonic() < deadline:
        with podwatch.lock:
            count = len(names & podwatch.bound.keys())
        if count == len(names):
            break
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > sizes.settle_s:
            break
        time.sleep(0.2)
    with podwatch.lock:
        placed = {n: p["spec"]["nodeName"] for n, p in podwatch.pods.items()
                  if n in names and p["spec"].get("nodeName")}
    allocated = sum(by_name[n][3] for n in placed)
    requested = sum(r[3] for r in requests)
    out: dict[str, Any] = {
        "pool_nodes": len(pool), "pool_gpus": capacity, "trace_pods": len(requests),
        "gpu_pods": sum(1 for r in requests if r[3]), "requested_gpus": requested,
        "requested_cpu_pct": round(100.0 * sum(r[1] for r in requests) / max(1, sum(n.cpu_milli for n in pool)), 1),
        "bound": len(placed), "allocated_gpus": allocated,
        "unallocated_gpu_pct": round(100.0 * (capacity - allocated) / capacity, 2),
        "pending_gpus": requested - allocated, "seconds": round(time.monotonic() - started, 1)}
    if workload == "packing":
        out["seed"] = sizes.pack_seed
        out["pool_models"] = dict(sorted(collections.Counter(f"{len(n.gpus)}x{n.gpus[0].model}" for n in pool)
                                         .items()))
    out.update(pending_reasons(pool, placed, by_name))
    return out


# ---- the run -------------------------------------------------------------------------------------------
def build_binaries(kube_scheduler: bool) -> Path:
    """The control plane's binaries (built when missing), with kube-scheduler when a row needs it."""
    names = ["etcd", "kube-apiserver", "kube-controller-manager"] + (["kube-scheduler"] if kube_scheduler else [])
    out = subprocess.run(["bash", str(ROOT / "testenv" / "build.sh"), *names], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"testenv/build.sh failed:\n{out.stderr[-4000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


def run_size(schedulers: list[str], sizes: Sizes, workdir: Path, workloads: Iterable[str],
             bigk_policy: str = "bigk") -> list[Row]:
    workdir.mkdir(parents=True, exist_ok=True)
    plane = ControlPlane(dir=workdir / "plane", audit=False, controllers=CONTROLLERS,
                         binaries=build_binaries(any(not s.startswith("bigk") for s in schedulers))).start()
    rows: list[Row] = []
    try:
        api = config.new_client_from_config(str(plane.kubeconfig))
        api.configuration.connection_pool_maxsize = 32
        api = client.ApiClient(api.configuration)
        nodes = bench_nodes(sizes)
        node_s = create_nodes(api, nodes)
        print(f"# {len(nodes)} nodes registered in {node_s:.1f} s", file=sys.stderr, flush=True)
        ensure_namespace(api)
        podwatch = PodWatch(api).start()
        metrics = ApiserverMetrics(plane)
        for kind in schedulers:
            name = SCHEDULER_NAMES[kind]
            sched = SchedulerProcess(kind, plane, workdir, bigk_policy).start()
            try:
                ready_s = wait_ready(api, podwatch, name)
                for workload in workloads:
                    print(f"# {kind} {sizes.nodes} nodes: {workload}", file=sys.stderr, flush=True)
                    if workload == "throughput":
                        figures = throughput(api, podwatch, sched, metrics, sizes, name)
                    elif workload == "spark":
                        figures = spark_apps(api, podwatch, api, nodes, sizes, name)
                    else:
                        figures = packing(api, podwatch, nodes, sizes, name, workload)
                    timeline = figures.pop("_timeline", [])
                    figures["scheduler_ready_s"] = round(ready_s, 2)
                    rows.append(Row(kind, sizes.nodes, workload, figures, [round(t, 3) for t in timeline]))
                    print(f"#   {json.dumps(figures)}", file=sys.stderr, flush=True)
                    clear_pods(api)
            finally:
                sched.stop()
        podwatch.stop()
    finally:
        plane.stop()
    return rows


def versions(plane_bin: Path | None) -> dict[str, str]:
    out = {"python": platform.python_version()}
    if plane_bin is not None:
        for name in ("kube-apiserver", "kube-scheduler"):
            with contextlib.suppress(OSError):
                out[name] = subprocess.run([str(plane_bin / name), "--version"], capture_output=True, text=True,
                                           timeout=30).stdout.strip()
    with contextlib.suppress(OSError):
        out["bigk"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                     text=True, timeout=10).stdout.strip()
    return out


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "loadavg_at_start": list(os.getloadavg()), "platform": platform.platform()}


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r.nodes for r in rows if r.workload == "throughput"})
    fig, axes = plt.subplots(1, max(1, len(sizes)), figsize=(6 * max(1, len(sizes)), 4), squeeze=False)
    for ax, n in zip(axes[0], sizes, strict=False):
        for r in rows:
            if r.workload == "throughput" and r.nodes == n:
                ax.plot(r.timeline, range(1, len(r.timeline) + 1), label=r.scheduler)
        ax.set_title(f"pods bound over time, {n} nodes")
        ax.set_xlabel("seconds since the first pod was seen")
        ax.set_ylabel("pods bound")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def table(rows: list[Row]) -> str:
    """A Markdown table of the rows (what the README shows)."""
    lines = ["| scheduler | nodes | workload | result |", "|---|---|---|---|"]
    for r in rows:
        f = r.figures
        if r.workload == "throughput":
            text = (f"{f['pods_per_s']} pods/s, p50 {f['p50_latency_s']} s, p99 {f['p99_latency_s']} s, "
                    f"{f['bound']}/{f['pods']} bound, CPU {f['scheduler_cpu_s']} s, peak RSS "
                    f"{f['scheduler_peak_rss_mib']} MiB, API server {f['apiserver_requests_per_s']} req/s")
        elif r.workload == "spark":
            text = (f"{f['complete']} complete, {f['stuck']} stuck, {f['gpus_held_by_stuck']} GPUs held by stuck "
                    f"(of {f['apps']} apps x {f['executors_per_app']} GPUs on {f['pool_gpus']} GPUs, "
                    f"{f['window_s']:.0f} s); gangs whole: {f['gangs_whole']}/{f['apps']}, gang latency p50 "
                    f"{f['gang_latency_p50_s']} s, p99 {f['gang_latency_p99_s']} s")
        else:
            text = (f"{f['unallocated_gpu_pct']} % GPUs unallocated ({f['allocated_gpus']}/{f['pool_gpus']}, "
                    f"{f['bound']}/{f['trace_pods']} trace pods bound")
            if f["pending_gpus"]:
                reasons = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in f["pending_pods_by_reason"].items() if v)
                text += f"; pending: {reasons}"
            text += ")"
        lines.append(f"| {r.scheduler} | {r.nodes} | {r.workload} | {text} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="e2e", description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedulers", default="bigk,kube-scheduler,kube-scheduler-binpack",
                        help="comma-separated: " + ", ".join(SCHEDULER_NAMES))
    parser.add_argument("--nodes", default="1000,5000", help="comma-separated node counts")
    parser.add_argument("--pods", type=int, help="pods of the throughput row (default 1000; 20 with --smoke)")
    parser.add_argument("--workloads", default="throughput,spark,packing",
                        help=f"comma-separated, of: {', '.join(WORKLOADS)}")
    parser.add_argument("--pack-nodes", type=int, help="trace GPU nodes in the packing pool (default 150; 3 with "
                                                        "--smoke)")
    parser.add_argument("--pack-seed", type=int, default=PACK_SEED,
                        help=f"seed of the packing row's node sample and pod sample (default {PACK_SEED})")
    parser.add_argument("--bigk-policy", default="bigk",
                        help="bigk's placement policy (default bigk, `bigk serve`'s default)")
    parser.add_argument("--json", type=Path, required=True, help="write the rows here")
    parser.add_argument("--plot", type=Path, help="PNG of pods bound over time (throughput rows)")
    parser.add_argument("--smoke", action="store_true", help="a few nodes and pods: one small row of each workload")
    parser.add_argument("--workdir", type=Path, help="control plane state and scheduler logs (default: a temp dir)")
    args = parser.parse_args(argv)
    schedulers = [s.strip() for s in args.schedulers.split(",") if s.strip()]
    for s in schedulers:
        if s not in SCHEDULER_NAMES:
            parser.error(f"--schedulers: unknown scheduler {s!r} (known: {', '.join(SCHEDULER_NAMES)})")
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    for w in workloads:
        if w not in WORKLOADS:
            parser.error(f"--workloads: unknown workload {w!r} (known: {', '.join(WORKLOADS)})")
    try:
        node_counts = [int(n) for n in args.nodes.split(",") if n.strip()]
    except ValueError:
        parser.error(f"--nodes: not a comma-separated list of integers: {args.nodes!r}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bigk-e2e-"))
    command = " ".join(["python3 bench/e2e.py", *(argv or sys.argv[1:])])
    info: dict[str, Any] = {"machine": machine(), "command": command, "bigk_policy": args.bigk_policy}
    rows: list[Row] = []
    started = time.time()
    # built first (when missing) so that the versions name every binary the rows run: on a fresh machine
    # kube-scheduler is built only for this benchmark, and its version was missing from the first run's record
    info["versions"] = versions(build_binaries(any(s.startswith("kube-scheduler") for s in schedulers)))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    for n in node_counts:
        sizes = Sizes.for_nodes(n, args.pods, args.smoke, args.pack_nodes, args.pack_seed)
        rows += run_size(schedulers, sizes, workdir / f"n{n}", workloads, args.bigk_policy)
        info["wall_s"] = round(time.time() - started, 1)
        info["loadavg_at_end"] = list(os.getloadavg())
        args.json.write_text(json.dumps({**info, "rows": [asdict(r) for r in rows]}, indent=1))  # after each size
    if args.plot:
        plot(rows, args.plot)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
