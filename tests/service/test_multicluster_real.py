"""`bigk serve --clusters FILE` over two real control planes (testenv/: etcd + kube-apiserver each), one of them
killed mid-run and started again on the same etcd (#18).

Each control plane has bigk's simulated nodes on it as ordinary clients (`SimulatedNodes`: kubelet, Spark
driver, GPU readings), the nodes of jobspecs/clusters/cloud-h100.yaml. No controller-manager runs (the
default service account is created as it would create it): two of everything on a 2-core machine is
already heavy. kube-apiserver of `west` is killed (SIGKILL) while two runs run there and a third waits there
unstarted, and started again on the same port and etcd; the simulated kubelets' containers run on meanwhile,
as real ones do. Every run is accounted for once west is back: each ends once, on one cluster.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client, config

from bigk.cluster.config import load_cluster
from bigk.emulator.remote import SimulatedNodes
from bigk.service.api import create_app
from bigk.service.app import Service, ServiceConfig
from bigk.service.http import HttpServer
from testenv.controlplane import ControlPlane
from tests.realk8s import ROOT, TIME_SCALE, clean_namespace
from tests.service.conftest import Running, job_yaml, wait_for
from tests.service.test_multicluster import _fill_job

pytestmark = [pytest.mark.cluster]

NAMES = ("east", "west")


def _plane(directory: Path) -> tuple[ControlPlane, SimulatedNodes]:
    plane = ControlPlane(dir=directory, controller_manager=False, audit=False).start()
    api = config.new_client_from_config(str(plane.kubeconfig))
    with contextlib.suppress(client.ApiException):
        client.CoreV1Api(api).create_namespaced_service_account(
            "default", client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="default")))
    nodes = SimulatedNodes(api, load_cluster(ROOT / "jobspecs" / "clusters" / "cloud-h100.yaml"),
                           time_scale=TIME_SCALE, default_duration=36_000.0)
    nodes.start()
    core = client.CoreV1Api(api)
    for node in nodes.model_nodes.values():  # what the node lifecycle controller does once the kubelet is Ready
        wait_for(lambda name=node.name: _read_node(core, name), 30, f"node {node.name}")
        taints = [t for t in core.read_node(node.name).spec.taints or [] if t.key != "node.kubernetes.io/not-ready"]
        core.patch_node(node.name, {"spec": {"taints": api.sanitize_for_serialization(taints) or None}})
    nodes.wait_until_ready()
    return plane, nodes


def _read_node(core: client.CoreV1Api, name: str) -> bool:
    try:
        core.read_node(name)
    except client.ApiException:
        return False
    return True


@pytest.fixture()
def two_planes(tmp_path: Path) -> Iterator[dict[str, tuple[ControlPlane, SimulatedNodes]]]:
    planes: dict[str, tuple[ControlPlane, SimulatedNodes]] = {}
    try:
        for name in NAMES:
            planes[name] = _plane(tmp_path / f"plane-{name}")
        yield planes
    finally:
        for plane, nodes in planes.values():
            with contextlib.suppress(Exception):
                nodes.stop()
            with contextlib.suppress(Exception):
                clean_namespace(config.new_client_from_config(str(plane.kubeconfig)), "default")
            plane.stop()


def _state(c: httpx.Client, run_id: str) -> dict[str, Any]:
    return dict(c.get(f"/api/v1/runs/{run_id}").json())


def _run(c: httpx.Client, job: str) -> str:
    response = c.post(f"/api/v1/jobs/{job}/run")
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_two_real_control_planes_one_killed_mid_run_and_restarted_on_the_same_etcd(
        tmp_path: Path, two_planes: dict[str, tuple[ControlPlane, SimulatedNodes]]) -> None:
    started = time.monotonic()
    clusters = tmp_path / "clusters.yaml"
    clusters.write_text("apiVersion: bigk.io/v1\nkind: Clusters\nspec:\n  clusters:\n" + "".join(
        f"    - name: {name}\n      labels: {{region: {name}}}\n      kubeconfig: {plane.kubeconfig}\n"
        for name, (plane, _) in two_planes.items()), encoding="utf-8")
    specs = tmp_path / "specs"
    specs.mkdir()
    jobs = {
        "on-east": job_yaml("on-east", instances=1, duration=20, extra="clusters: [east]\n"),
        "on-west": job_yaml("on-west", instances=1, duration=20, extra="clusters: [west]\n"),
        # long-west and fill-west run through the outage (20 s) and take 27 of west's 32 CPUs (its GPU node is
        # tainted); late (7 CPUs) prefers west, so with east cordoned it waits there unstarted
        "long-west": job_yaml("long-west", instances=1, duration=400, extra="clusters: [west]\n"),
        "fill-west": _fill_job().replace("fill", "fill-west").replace("expectedDurationSeconds: 300",
                                                                     "expectedDurationSeconds: 400")
                                .replace("clusters: [cloud-h100]", "clusters: [west]"),
        "late": job_yaml("late", instances=6, duration=20, extra="clusters: [west, east]\n"),
    }
    for job, text in jobs.items():
        (specs / f"{job}.yaml").write_text(text, encoding="utf-8")
    cfg = ServiceConfig(specs=[specs], state_dir=tmp_path / "state", clusters_file=clusters, submit_mode="direct",
                        tick_s=0.2, reload_s=0.3, leader_lease_s=3.0, dispatch_hold_s=0.0,
                        cluster_unreachable_s=1.0, cluster_lost_grace_s=3.0)
    service = Service(cfg).start()
    http = HttpServer("127.0.0.1", 0)
    svc = Running(service, http, http.start(create_app(service, "test-token")), "test-token")
    try:
        wait_for(lambda: service.is_leader, 20, "leadership")
        assert list(service.clusters) == ["east", "west"]
        west, _ = two_planes["west"]
        with svc.client() as c:
            assert c.post("/api/v1/clusters/east/cordon").status_code == 200
            started_west = {job: _run(c, job) for job in ("long-west", "fill-west")}
            for job, run_id in started_west.items():
                wait_for(lambda run_id=run_id: _state(c, run_id)["state"] == "Running", 60, f"{job} running")
            wait_for(lambda: (c.get("/api/v1/clusters/west").json()["allocated"]["cpu_milli"] or 0) >= 27_000, 30,
                     "west's published copy to hold both runs")
            late = _run(c, "late")
            wait_for(lambda: _state(c, late)["state"] == "Submitted", 20, "late submitted to west (soonest)")
            assert _state(c, late)["cluster"] == "west" and "does not fit now" in _state(c, late)["dispatch_reason"]

            west.stop_process("kube-apiserver", signal.SIGKILL)  # west's API server dies; etcd and nodes live
            killed = time.monotonic()
            for run_id in (*started_west.values(), late):
                wait_for(lambda run_id=run_id: _state(c, run_id)["state"] == "Unknown", 30, f"{run_id} Unknown")
            assert c.get("/api/v1/clusters/west").json()["reachable"] is False
            assert c.post("/api/v1/clusters/east/uncordon").status_code == 200
            # east goes on: late, which never started on west, is dispatched again there; a new run there succeeds
            on_east = _run(c, "on-east")
            for run_id in (late, on_east):
                wait_for(lambda run_id=run_id: _state(c, run_id)["state"] == "Succeeded", 60, f"{run_id} on east")
            assert _state(c, late)["cluster"] == "east"
            # a run that may only go to west waits, unsubmitted, for it; the started ones wait Unknown
            on_west = _run(c, "on-west")
            wait_for(lambda: "waiting for a cluster: west cordoned or unreachable" in
                     _state(c, on_west)["dispatch_reason"], 15, "on-west held for west")
            assert _state(c, on_west)["state"] == "Pending" and _state(c, on_west)["cluster"] == ""
            assert {_state(c, r)["state"] for r in started_west.values()} == {"Unknown"}

            west.start_apiserver()  # same port, same etcd
            restarted = time.monotonic()
            wait_for(lambda: c.get("/api/v1/clusters/west").json()["reachable"], 60, "west back")
            west_pods = service.clusters["west"].pods
            assert west_pods is not None
            wait_for(lambda: not west_pods.run_pods("default", late), 20, "late's leftover pods deleted on west")
            for run_id in (*started_west.values(), on_west):
                wait_for(lambda run_id=run_id: _state(c, run_id)["state"] == "Succeeded", 90, f"{run_id} succeeds")
            runs = c.get("/api/v1/runs").json()
            assert sorted((r["job"], r["state"], r["cluster"]) for r in runs) == [
                ("fill-west", "Succeeded", "west"), ("late", "Succeeded", "east"),
                ("long-west", "Succeeded", "west"), ("on-east", "Succeeded", "east"),
                ("on-west", "Succeeded", "west")]
            for run in runs:  # each run's pods on its own cluster only
                other = next(n for n in NAMES if n != run["cluster"])
                pods = service.clusters[other].pods
                assert pods is not None and not pods.run_pods("default", run["id"]), run
            events = [e["message"] for e in c.get("/api/v1/events").json() if e["kind"] == "reconcile"]
            assert any(f"run {late} (it was dispatched again, to east)" in m for m in events), events
            print(f"\ntwo control planes: down {restarted - killed:.1f}s, test body "
                  f"{time.monotonic() - started:.1f}s")
    finally:
        svc.stop()
