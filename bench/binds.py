"""End-to-end binds per second: the Kubernetes backend against the emulated cluster's HTTP API.

    python bench/binds.py --nodes 1000 --pods 2000 --runs 3 --json OUT.json

Each run starts an emulated cluster (kubelet, Spark driver and GPU simulation off)
in its own process, so the API server and bigk do not share a Python
interpreter, just as kube-apiserver and a scheduler do not. The cluster has
`--nodes` nodes (a fifth of them GPU nodes with 8 A100s, tainted), and `--pods`
pending pods for bigk are created in it before bigk starts; `--gpu-share` of them
ask for one whole GPU (and tolerate the taint). Then a `SchedulerLoop` starts:
informers list and watch, and every cycle builds a snapshot, runs the core,
writes the GPU annotation (GPU pods), binds through `pods/binding` and posts a
`Scheduled` event. The clock runs from the informers' first sync to the moment
the loop has bound the last pod; afterwards the API is asked whether every pod
is really bound. The figure is the median over `--runs`.

Writes {"results": [...], "median_binds_per_second": x, ...}.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import platform
import statistics
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

from kubernetes import client

from bigk.cluster.model import GPU_MODEL_LABEL, POOL_LABEL, Gpu, Node, Taint

STALL_S = 15.0  # give up waiting when no bind happened for this long


def make_nodes(count: int) -> list[Node]:
    gpu_nodes = count // 5
    nodes = []
    for i in range(count):
        if i < gpu_nodes:
            nodes.append(Node(f"gpu-{i:05d}", 128_000, 1_024_000, 110, [Gpu(g, "A100", 81_920) for g in range(8)],
                              {POOL_LABEL: "gpu-a100", GPU_MODEL_LABEL: "A100"},
                              [Taint("nvidia.com/gpu", "present", "NoSchedule")]))
        else:
            nodes.append(Node(f"cpu-{i:05d}", 64_000, 256_000, 110, [], {POOL_LABEL: "cpu"}))
    return nodes


def _is_gpu(i: int, gpu_share: float) -> bool:
    every = round(1 / gpu_share) if gpu_share > 0 else 0
    return bool(every) and i % every == 0


def pod_body(i: int, gpu: bool) -> dict[str, Any]:
    resources: dict[str, Any] = {"requests": {"cpu": "500m", "memory": "1Gi"}}
    spec: dict[str, Any] = {"schedulerName": "bigk", "containers": [{"name": "main", "image": "x"}]}
    if gpu:
        resources["limits"] = {"nvidia.com/gpu": "1"}
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    spec["containers"][0]["resources"] = resources
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"bench-{i:06d}", "namespace": "default"},
            "spec": spec}


def serve(nodes: int, pods: int, gpu_share: float, conn: Connection) -> None:
    """Child process: the emulated API server, pre-loaded with nodes and pending pods."""
    logging.disable(logging.INFO)
    from bigk.emulator import EmulatedCluster
    from bigk.emulator.api import PODS

    cluster = EmulatedCluster(make_nodes(nodes), kubelet=False, spark_driver=False, gpu_readings=False,
                              watch_window=max(10_000, pods * 10))
    url = cluster.start()

    def create_all() -> None:
        for i in range(pods):
            cluster.api.create(PODS, "default", pod_body(i, _is_gpu(i, gpu_share)))

    cluster.call(create_all)
    conn.send(url)
    conn.recv()  # wait until the parent is done
    cluster.stop()


def one_run(nodes: int, pods: int, gpu_share: float, policy: str, bind_workers: int) -> dict[str, Any]:
    from bigk.kube.client import api_client
    from bigk.kube.loop import SchedulerLoop
    from bigk.scheduler import Scheduler

    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=serve, args=(nodes, pods, gpu_share, child), daemon=True)
    proc.start()
    try:
        url = parent.recv()
        api = api_client(server=url)
        loop = SchedulerLoop(api, Scheduler(policy), leader_election=False, interval_s=0.5,
                             bind_workers=bind_workers)
        t0 = time.perf_counter()
        loop.start(sync_timeout=120)
        synced = time.perf_counter()
        last, progress_at = 0, synced
        while loop.stats.binds < pods and time.perf_counter() - progress_at < STALL_S:
            time.sleep(0.005)
            if loop.stats.binds != last:
                last, progress_at = loop.stats.binds, time.perf_counter()
        done = progress_at if loop.stats.binds < pods else time.perf_counter()
        stats = loop.stats
        loop.stop()
        listed = client.CoreV1Api(api).list_namespaced_pod("default")
        bound = sum(1 for p in listed.items if p.spec is not None and p.spec.node_name)
        seconds = done - synced
        return {"nodes": nodes, "pods": pods, "gpu_share": gpu_share, "policy": policy, "bind_workers": bind_workers,
                "bound": bound, "binds": stats.binds, "bind_failed": stats.bind_failed, "bind_lost": stats.bind_lost,
                "cycles": stats.cycles, "sync_seconds": round(synced - t0, 3), "bind_seconds": round(seconds, 3),
                "core_seconds": round(stats.decide_s_total, 3),
                "binds_per_second": round(stats.binds / seconds, 1) if seconds > 0 else 0.0}
    finally:
        parent.send("done")
        proc.join(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gpu-share", type=float, default=0.25, help="fraction of pods asking for one GPU")
    parser.add_argument("--policy", default="binpack")
    parser.add_argument("--bind-workers", type=int, default=4)
    parser.add_argument("--json", dest="json_path", help="write results here")
    args = parser.parse_args(argv)
    gpu_pods = len([i for i in range(args.pods) if _is_gpu(i, args.gpu_share)])
    gpus = sum(len(n.gpus) for n in make_nodes(args.nodes))
    if gpu_pods > gpus:
        parser.error(f"{gpu_pods} one-GPU pods cannot fit on {gpus} GPUs; lower --pods or --gpu-share")
    logging.basicConfig(level=logging.WARNING)
    results = []
    for n in range(args.runs):
        result = one_run(args.nodes, args.pods, args.gpu_share, args.policy, args.bind_workers)
        results.append(result)
        print(f"run {n + 1}/{args.runs}: {result['binds_per_second']} binds/s "
              f"({result['bound']}/{args.pods} bound in {result['bind_seconds']} s, {result['cycles']} cycles)",
              file=sys.stderr)
    rates = [r["binds_per_second"] for r in results]
    report = {"benchmark": "binds", "results": results, "median_binds_per_second": statistics.median(rates),
              "python": platform.python_version(), "machine": platform.machine()}
    text = json.dumps(report, indent=2)
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    print(text)
    return 0 if all(r["bound"] == args.pods for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
