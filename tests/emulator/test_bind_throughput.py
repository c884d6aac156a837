"""Binding throughput over HTTP: thousands of binds against 1,000 nodes (slow; prints the figures).

    python3 -m pytest -q -m slow tests/emulator/test_bind_throughput.py -s

The client runs in its own process (8 threads, keep-alive connections) so the
server's CPU time per bind can be measured on its own.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time

import pytest

from bigk.cluster.model import Node
from bigk.emulator import EmulatedCluster
from bigk.emulator.api import PODS

PODS_TO_BIND = 3000
CLIENT = """
import sys, time, httpx
from concurrent.futures import ThreadPoolExecutor
url, n = sys.argv[1], int(sys.argv[2])
with httpx.Client(base_url=url, limits=httpx.Limits(max_connections=8, max_keepalive_connections=8)) as http:
    def bind(i):
        r = http.post(f"/api/v1/namespaces/default/pods/p{i}/binding",
                      json={"apiVersion": "v1", "kind": "Binding", "metadata": {"name": f"p{i}"},
                            "target": {"kind": "Node", "name": f"n{i % 1000}"}})
        assert r.status_code == 201, r.text
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(bind, range(n)))
    print(time.perf_counter() - started)
"""


@pytest.mark.slow
@pytest.mark.parametrize("kubelet", [False, True])
def test_thousands_of_binds_over_http(kubelet: bool) -> None:
    nodes = [Node(f"n{i}", 32_000, 131_072) for i in range(1000)]
    with EmulatedCluster(nodes, kubelet=kubelet, spark_driver=False, gpu_readings=False) as cluster:
        for i in range(PODS_TO_BIND):
            cluster.api.create(PODS, "default", {"metadata": {"name": f"p{i}"}, "spec": {
                "schedulerName": "bigk", "containers": [{"name": "c", "image": "x",
                                                         "resources": {"requests": {"cpu": "1"}}}]}})
        before = resource.getrusage(resource.RUSAGE_SELF)
        out = subprocess.run([sys.executable, "-c", CLIENT, cluster.url, str(PODS_TO_BIND)], capture_output=True,
                             text=True, timeout=300, check=True)
        time.sleep(0.6)  # let the kubelet start what was bound, so its work is counted too
        after = resource.getrusage(resource.RUSAGE_SELF)
        seconds = float(out.stdout.strip())
        server_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        bound = len(cluster.store.objects(PODS.key, "default", lambda p: bool(p["spec"].get("nodeName")))[0])
        print(f"\nkubelet={kubelet}: {PODS_TO_BIND} binds in {seconds:.2f} s = {PODS_TO_BIND / seconds:.0f} binds/s; "
              f"server CPU {1000 * server_cpu / PODS_TO_BIND:.2f} ms per bind")
        assert bound == PODS_TO_BIND
        assert server_cpu / PODS_TO_BIND < 0.002  # the emulator must never be the bottleneck of a bind benchmark
