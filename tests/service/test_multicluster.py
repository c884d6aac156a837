"""`bigk serve --emulate N`: runs dispatched across embedded emulated clusters, and a cluster lost and back (#18).

Each test starts the real service in-process over N embedded emulated clusters (the first N
shapes of jobspecs/clusters/clusters.yaml: onprem, cloud-h100, cloud-l4) with its HTTP API,
and drives it as a user would: `bigk run`, `bigk get runs`, `bigk get clusters`, `bigk cordon
--cluster`. The lost cluster is an emulated API server that drops every request (a partition:
its pods run on) and then answers again.
"""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from bigk.cli.main import app
from bigk.cluster import labels as L
from bigk.errors import BigkError
from bigk.service.api import create_app
from bigk.service.app import Service, ServiceConfig
from bigk.service.http import HttpServer
from tests.service.conftest import ROOT, TIME_SCALE, Running, job_yaml, wait_for

TERMINAL = {"Succeeded", "Failed", "Cancelled", "TimedOut"}


@pytest.fixture()
def serve_clusters(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(specs: Path, emulate: int, **overrides: Any) -> Running:
        cfg = ServiceConfig(specs=[specs], state_dir=tmp_path / "state", emulate=emulate,
                            emulate_file=ROOT / "jobspecs" / "clusters" / "clusters.yaml", submit_mode="direct",
                            emulator_time_scale=TIME_SCALE, tick_s=0.2, reload_s=0.3, leader_lease_s=3.0,
                            **overrides)
        service = Service(cfg).start()
        http = HttpServer("127.0.0.1", 0)
        running = Running(service, http, http.start(create_app(service, "test-token")), "test-token")
        started.append(running)
        wait_for(lambda: service.is_leader, 10, "leadership")
        return running

    yield start
    for running in started:
        with contextlib.suppress(Exception):
            running.stop()


def _specs(tmp_path: Path, jobs: dict[str, str]) -> Path:
    specs = tmp_path / "specs"
    specs.mkdir()
    for name, text in jobs.items():
        (specs / f"{name}.yaml").write_text(text, encoding="utf-8")
    return specs


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, BigkError):
        return result.exception.exit_code, f"{result.output}error: {result.exception}"
    return result.exit_code, result.output


def _run(c: httpx.Client, job: str) -> str:
    response = c.post(f"/api/v1/jobs/{job}/run")
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _state(c: httpx.Client, run_id: str) -> dict[str, Any]:
    return dict(c.get(f"/api/v1/runs/{run_id}").json())


def _pods_of(svc: Running, cluster: str, run_id: str) -> list[Any]:
    pods = svc.service.clusters[cluster].pods
    assert pods is not None
    return pods.run_pods("default", run_id)


def test_emulate_3_dispatches_each_run_where_its_spec_allows(tmp_path: Path, serve_clusters: Callable[..., Running],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Named, selected by label and unrestricted runs land on their clusters; `get runs` says where and why;
    `get clusters` shows the three; a cordoned cluster holds its run unsubmitted until uncordoned."""
    specs = _specs(tmp_path, {
        "pin-onprem": job_yaml("pin-onprem", extra="clusters: [onprem]\n"),
        "pick-aws": job_yaml("pick-aws", extra="clusterSelector:\n  matchLabels: {cloud: aws}\n"),
        "pick-us": job_yaml("pick-us", extra=textwrap.dedent("""\
            clusterSelector:
              matchExpressions:
                - {key: region, operator: In, values: [us-east]}
            """)),
        "anywhere": job_yaml("anywhere"),
    })
    svc = serve_clusters(specs, 3)
    monkeypatch.setenv("BIGK_TOKEN", svc.token)
    assert list(svc.service.clusters) == ["onprem", "cloud-h100", "cloud-l4"]
    want = {"pin-onprem": "onprem", "pick-aws": "cloud-h100", "pick-us": "cloud-l4", "anywhere": "onprem"}
    with svc.client() as c:
        ids = {job: _run(c, job) for job in want}
        for job, run_id in ids.items():
            wait_for(lambda run_id=run_id: _state(c, run_id)["state"] == "Succeeded", 60, f"{job} to succeed")
        for job, run_id in ids.items():
            run = _state(c, run_id)
            assert run["cluster"] == want[job], (job, run["cluster"], run["dispatch_reason"])
            assert run["dispatch_reason"].startswith(f"{want[job]}: fits now"), run["dispatch_reason"]
            assert _pods_of(svc, want[job], run_id), f"{job}: no pods on {want[job]}"
            assert not any(_pods_of(svc, other, run_id) for other in svc.service.clusters if other != want[job])
        # the spec's reasons are told for the clusters it was kept off
        assert "not in the job's clusters (onprem)" in _state(c, ids["pin-onprem"])["dispatch_reason"]
        assert "clusterSelector wants cloud=aws" in _state(c, ids["pick-aws"])["dispatch_reason"]
        assert "cheaper: cost tier 0 < " in _state(c, ids["anywhere"])["dispatch_reason"]

        code, text = _cli("get", "runs", "--server", svc.url)
        assert code == 0, text
        header = text.splitlines()[0].split()
        assert header[:4] == ["RUN", "JOB", "STATE", "CLUSTER"], header
        for job, run_id in ids.items():
            line = next(line for line in text.splitlines() if line.startswith(run_id))
            assert line.split()[3] == want[job], line
        code, text = _cli("describe", "run", ids["pick-us"], "--server", svc.url)
        assert code == 0 and "Cluster:    cloud-l4" in text and "Dispatch:   cloud-l4: fits now" in text, text

        code, text = _cli("get", "clusters", "--server", svc.url)
        assert code == 0, text
        rows = {line.split()[0]: line.split() for line in text.splitlines()[1:]}
        assert set(rows) == {"onprem", "cloud-h100", "cloud-l4"}, text
        assert rows["cloud-h100"][1] == "Ready" and rows["cloud-h100"][5] == "0/8", text  # GPUS allocated/total
        assert rows["onprem"][2] == "0" and rows["cloud-l4"][2] == "1", text  # cost tiers

        # cordoned: the run that may only go there waits unsubmitted, saying why; uncordoned, it runs there
        code, text = _cli("cordon", "--cluster", "cloud-l4", "--server", svc.url)
        assert code == 0 and "cordoned cluster cloud-l4" in text, text
        held = _run(c, "pick-us")
        wait_for(lambda: "cloud-l4 cordoned" in _state(c, held)["dispatch_reason"], 10, "the held run's reason")
        assert _state(c, held)["state"] == "Pending" and _state(c, held)["cluster"] == ""
        code, text = _cli("explain", held, "--server", svc.url)
        assert code == 0 and "waiting for a cluster: cloud-l4 cordoned or unreachable" in text, text
        code, text = _cli("uncordon", "--cluster", "cloud-l4", "--server", svc.url)
        assert code == 0, text
        wait_for(lambda: _state(c, held)["state"] == "Succeeded", 60, "the held run to run once uncordoned")
        assert _state(c, held)["cluster"] == "cloud-l4"
        code, text = _cli("cordon", "--cluster", "nowhere", "--server", svc.url)
        assert code == 3 and "no cluster 'nowhere'" in text, text
        metrics = c.get("/metrics").text
        assert 'bigk_cluster_up{cluster="cloud-l4"} 1.0' in metrics
        assert 'bigk_cluster_gpus{cluster="cloud-h100"} 8.0' in metrics
        for name in svc.service.clusters:  # each cluster's own loop: its own scheduler, pool and per-GPU series
            assert f'bigk_scheduler_leader{{cluster="{name}"}} 1.0' in metrics, name
            assert f'bigk_scheduler_last_cycle_timestamp_seconds{{cluster="{name}"}}' in metrics, name
        wait_for(lambda: 'bigk_pool_capacity{cluster="cloud-h100",pool="gpu-h100",resource="gpu"} 8.0'
                 in c.get("/metrics").text, 15, "cloud-h100's pool figures")
        assert 'bigk_gpu_healthy{cluster="cloud-l4",' in c.get("/metrics").text

        _nodes_and_gpus_of_every_cluster(svc, c)


def _unschedulable(svc: Running, cluster: str, node: str) -> bool:
    """What the cluster's own API server says of the node."""
    view = svc.service.clusters[cluster].cluster
    assert view is not None
    return bool(view.core.read_node(node).spec.unschedulable)


def _nodes_and_gpus_of_every_cluster(svc: Running, c: httpx.Client) -> None:
    """`get nodes` / `get gpus` list every cluster with a CLUSTER column; `?cluster=`, `--cluster` and `-l cluster=`
    pick one; a node action acts on the one cluster that has the node, asks for --cluster where several have it."""
    shapes = {"onprem": 8, "cloud-h100": 3, "cloud-l4": 6}
    code, text = _cli("get", "nodes", "--server", svc.url)
    assert code == 0, text
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["CLUSTER", "NAME", "POOL"], lines[0]
    seen = [(line.split()[0], line.split()[1]) for line in lines[1:]]
    assert {name: sum(1 for cl, _ in seen if cl == name) for name in shapes} == shapes, text
    assert ("cloud-h100", "gpu-h100-0") in seen and ("cloud-l4", "cpu-0") in seen and ("onprem", "cpu-0") in seen
    rows = c.get("/api/v1/nodes", params={"cluster": "cloud-l4"}).json()
    assert {r["cluster"] for r in rows} == {"cloud-l4"} and len(rows) == 6, rows
    missing = c.get("/api/v1/nodes", params={"cluster": "nowhere"})
    assert missing.status_code == 404 and "no cluster 'nowhere'" in missing.json()["detail"], missing.text
    code, text = _cli("get", "nodes", "-l", "cluster=cloud-h100", "--server", svc.url)
    assert code == 0 and [line.split()[1] for line in text.splitlines()[1:]] == ["cpu-0", "cpu-1", "gpu-h100-0"], text
    code, text = _cli("get", "gpus", "--cluster", "cloud-h100", "--server", svc.url)
    assert code == 0 and text.splitlines()[0].split()[:2] == ["CLUSTER", "NODE"], text
    assert [line.split()[:2] for line in text.splitlines()[1:]] == [["cloud-h100", "gpu-h100-0"]] * 8, text
    gpus = c.get("/api/v1/gpus").json()
    assert {g["cluster"] for g in gpus} == set(shapes) and len(gpus) == 2 * 8 + 2 * 4 + 8 + 4 * 4, len(gpus)
    code, text = _cli("get", "nodes", "--cluster", "nowhere", "--server", svc.url)
    assert code == 3 and "no cluster 'nowhere'" in text, text

    # a node on one cluster only: found there, cordoned on that cluster's API server
    code, text = _cli("cordon", "gpu-h100-0", "--server", svc.url)
    assert code == 0 and text.strip() == "cordoned gpu-h100-0 on cluster cloud-h100", text
    assert _unschedulable(svc, "cloud-h100", "gpu-h100-0")
    row = c.get("/api/v1/nodes", params={"cluster": "cloud-h100"}).json()[2]
    assert row["name"] == "gpu-h100-0" and row["unschedulable"] is True, row
    assert _cli("uncordon", "gpu-h100-0", "--server", svc.url)[0] == 0
    assert not _unschedulable(svc, "cloud-h100", "gpu-h100-0")
    # a name on every cluster: which one must be said
    code, text = _cli("cordon", "cpu-0", "--server", svc.url)
    assert code == 1 and "node 'cpu-0' is on 3 clusters (onprem, cloud-h100, cloud-l4)" in text, text
    assert c.post("/api/v1/nodes/cpu-0/cordon").status_code == 409
    assert not any(_unschedulable(svc, name, "cpu-0") for name in shapes)
    code, text = _cli("cordon", "cpu-0", "--cluster", "cloud-l4", "--server", svc.url)
    assert code == 0 and text.strip() == "cordoned cpu-0 on cluster cloud-l4", text
    assert [_unschedulable(svc, name, "cpu-0") for name in shapes] == [False, False, True]
    code, text = _cli("uncordon", "cpu-0", "--cluster", "cloud-l4", "--server", svc.url)
    assert code == 0 and not _unschedulable(svc, "cloud-l4", "cpu-0"), text
    code, text = _cli("drain", "cpu-1", "--cluster", "cloud-h100", "--dry-run", "--server", svc.url)
    assert code == 0 and text.startswith("would cordon cpu-1 on cluster cloud-h100 and evict 0 bigk pod(s)"), text
    code, text = _cli("drain", "cpu-1", "--cluster", "cloud-h100", "--server", svc.url)
    assert code == 0 and text.startswith("drained cpu-1 on cluster cloud-h100: evicted 0 pod(s)"), text
    assert [_unschedulable(svc, name, "cpu-1") for name in shapes] == [False, True, False]
    assert _cli("uncordon", "cpu-1", "--cluster", "cloud-h100", "--server", svc.url)[0] == 0
    code, text = _cli("cordon", "gpu-h100-0", "--cluster", "onprem", "--server", svc.url)
    assert code == 3 and "no node 'gpu-h100-0'" in text, text
    assert any(e["kind"] == "cordon" and e["message"] == "cpu-0 (cluster cloud-l4)"
               for e in c.get("/api/v1/events").json())


def test_a_cluster_lost_mid_run_and_back_loses_and_doubles_no_run(tmp_path: Path,
                                                                   serve_clusters: Callable[..., Running]) -> None:
    """cloud-h100 stops answering while two runs run there and a third waits there unstarted: all three go
    Unknown; after the grace period the unstarted one is dispatched again to onprem and runs there; when
    cloud-h100 answers again its leftover pods of that run are deleted (never bound), the two started runs take
    the state their pods show and succeed. Every run ends exactly once, on one cluster."""
    small = "clusters: [cloud-h100]\n"
    # late needs 7 CPUs: more than the 5 the long runs leave on the cloud
    specs = _specs(tmp_path, {
        # the cloud's two 16-CPU nodes (its H100 node is tainted): the two long runs take 27 of 32 CPUs
        "long": job_yaml("long", instances=1, duration=300, extra=small),
        "fill": _fill_job(),
        "late": job_yaml("late", instances=6, duration=20, extra="clusters: [cloud-h100, onprem]\n"),
    })
    svc = serve_clusters(specs, 2, dispatch_hold_s=0.0, cluster_unreachable_s=1.0, cluster_lost_grace_s=3.0)
    service = svc.service
    cloud = service.clusters["cloud-h100"].emulator
    assert cloud is not None
    with svc.client() as c:
        first = {job: _run(c, job) for job in ("long", "fill")}
        for job, run_id in first.items():
            wait_for(lambda run_id=run_id: _state(c, run_id)["state"] == "Running", 30, f"{job} running")
        # the dispatcher reads the cloud's scheduler's published copy: wait until it holds every executor of both
        wait_for(lambda: (c.get("/api/v1/clusters/cloud-h100").json()["allocated"]["cpu_milli"] or 0) >= 27_000, 20,
                 "the cloud's published copy to hold both runs' executors")
        assert c.post("/api/v1/clusters/onprem/cordon").status_code == 200  # late can only be sent to the cloud
        late = _run(c, "late")
        wait_for(lambda: _state(c, late)["state"] == "Submitted", 15, "late submitted to cloud-h100 (soonest)")
        assert _state(c, late)["cluster"] == "cloud-h100"
        assert "does not fit now" in _state(c, late)["dispatch_reason"]

        cloud.faults.add("*", ".*", 0, count=10**9)  # the cloud's API drops every request: a partition
        for run_id in (*first.values(), late):
            wait_for(lambda run_id=run_id: _state(c, run_id)["state"] == "Unknown", 20, f"{run_id} Unknown")
        rows = {r["name"]: r for r in c.get("/api/v1/clusters").json()}
        assert rows["cloud-h100"]["reachable"] is False and rows["onprem"]["reachable"] is True
        listed = c.get("/api/v1/nodes")  # the silent cluster's nodes are left out, the others still listed
        assert listed.status_code == 200 and {r["cluster"] for r in listed.json()} == {"onprem"}, listed.text
        assert listed.headers["X-Bigk-Unanswered-Clusters"] == "cloud-h100"
        assert c.post("/api/v1/clusters/onprem/uncordon").status_code == 200
        wait_for(lambda: _state(c, late)["cluster"] == "onprem", 20, "late dispatched again, to onprem")
        wait_for(lambda: _state(c, late)["state"] == "Succeeded", 60, "late to succeed on onprem")
        for run_id in first.values():  # started there: never started again, they wait for their cluster
            run = _state(c, run_id)
            assert run["state"] == "Unknown" and run["cluster"] == "cloud-h100", run
        assert len({p["name"] for p in _state(c, late)["pods"]}) == len(_state(c, late)["pods"])

        cloud.faults.clear()  # the cloud answers again
        wait_for(lambda: c.get("/api/v1/clusters/cloud-h100").json()["reachable"], 20, "cloud-h100 back")
        wait_for(lambda: not _pods_of(svc, "cloud-h100", late), 10, "late's leftover pods deleted on cloud-h100")
        for job, run_id in first.items():
            wait_for(lambda run_id=run_id: _state(c, run_id)["state"] == "Succeeded", 60, f"{job} to succeed")

        runs = c.get("/api/v1/runs").json()
        assert sorted((r["job"], r["state"], r["cluster"]) for r in runs) == [
            ("fill", "Succeeded", "cloud-h100"), ("late", "Succeeded", "onprem"), ("long", "Succeeded", "cloud-h100")]
        events = c.get("/api/v1/events", params={"run": late}).json()
        assert any(e["kind"] == "reconcile" and "dispatched again, to onprem" in e["message"] for e in events), events
        # late's driver never ran on the cloud: no pod of it was bound there
        assert not [p for p in _pods_of(svc, "cloud-h100", late) if p.spec.node_name]
        assert all((p.metadata.labels or {}).get(L.RUN_LABEL) == late for p in _pods_of(svc, "onprem", late))


def _fill_job() -> str:
    """Two 12-CPU executors pinned to cloud-h100 (job_yaml's executors are 1 CPU)."""
    text = job_yaml("fill", duration=300, extra="clusters: [cloud-h100]\n")
    return text.replace("    cores: 1\n    memory: 1g\n", "    cores: 12\n    memory: 8g\n")
