"""`bigk serve --emulate 3`: the GPU watch, the watch stream and the status page over every cluster (#18).

The real service over three embedded emulated clusters (onprem, home; cloud-h100; cloud-l4), driven
over HTTP and the CLI as a user would: idle GPUs of a run on cloud-h100 are found there (`get gpus
--idle` with a CLUSTER column, `/api/v1/gpus/findings` rows with `cluster`, the findings metrics
labelled by cluster, the notes in `get gpus`); `get nodes -w` / `get gpus -w --cluster` follow every
cluster, and a cluster that stops answering holds neither the stream nor its nodes; the status page
shows a summary per cluster, the runs' clusters and every cluster's GPUs, in real Chromium too.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bigk.cli import watching
from bigk.service.client import Client
from tests.service.conftest import Running, job_yaml, wait_for
from tests.service.test_gpus_e2e import _spec
from tests.service.test_multicluster import _cli, _run, _specs, _state
from tests.service.test_multicluster import serve_clusters as serve_clusters  # noqa: F401 (fixture)
from tests.service.test_status_page import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

IDLE_MINUTES = 0.1  # 6 s of readings (the simulated GPUs publish every 2 s)


def _idle_h100() -> str:
    """Two whole H100s on cloud-h100, held and idle."""
    return _spec("idle-h100", "{count: 1, model: H100}", {"bigk.io/sim-gpu-utilization": "0"}) \
        + "  clusters: [cloud-h100]\n"


def _serve(tmp_path: Path, serve_clusters: Callable[..., Running], **overrides: Any) -> Running:
    specs = _specs(tmp_path, {"idle-h100": _idle_h100(),
                              "pin-l4": job_yaml("pin-l4", duration=4000, extra="clusters: [cloud-l4]\n")})
    return serve_clusters(specs, 3, gpu_idle_minutes=IDLE_MINUTES, gpu_sample_s=0.5, **overrides)


def _table(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip()]


def test_the_gpu_watch_finds_idle_gpus_on_every_cluster(tmp_path: Path, serve_clusters: Callable[..., Running]) -> None:
    svc = _serve(tmp_path, serve_clusters)
    with svc.client() as c:
        run = _run(c, "idle-h100")
        wait_for(lambda: _state(c, run)["state"] == "Running", 30, "idle-h100 running on cloud-h100")
        assert _state(c, run)["cluster"] == "cloud-h100"

        def idle() -> list[dict[str, Any]]:
            return [g for g in c.get("/api/v1/gpus/idle").json()["idle"] if run in g["runs"]]

        found = wait_for(lambda: idle() if len(idle()) == 2 else None, 40, "both H100s of the run reported idle")
        assert {g["cluster"] for g in found} == {"cloud-h100"} and {g["node"] for g in found} == {"gpu-h100-0"}
        report = c.get("/api/v1/gpus/findings").json()
        assert set(report["clusters"]) == {"onprem", "cloud-h100", "cloud-l4"}, report["clusters"]
        assert all(at > 0 for at in report["clusters"].values()), report["clusters"]  # every cluster sampled
        only = c.get("/api/v1/gpus/idle", params={"cluster": "onprem"}).json()
        assert only["idle"] == [] and set(only["clusters"]) == {"onprem"}
        assert c.get("/api/v1/gpus/idle", params={"cluster": "nowhere"}).status_code == 404
        # the notes of `get gpus` come from each cluster's own watch
        gpus = c.get("/api/v1/gpus", params={"cluster": "cloud-h100"}).json()
        assert sum(1 for g in gpus if any(n.startswith("idle-") for n in g.get("notes", []))) == 2, gpus
        metrics = c.get("/metrics").text
    assert 'bigk_gpus_idle{cluster="cloud-h100",job_name="idle-h100",queue="default"} 2.0' in metrics
    assert 'bigk_gpus_busy_without_bigk{cluster="onprem",pool="gpu-a100"} 0.0' in metrics
    assert 'bigk_gpus_busy_without_bigk{cluster="cloud-l4",pool="gpu-l4"} 0.0' in metrics

    code, text = _cli("get", "gpus", "--idle", "--server", svc.url)
    assert code == 0, text
    rows = [r for r in _table(text) if r[0] != "idle"]  # the footnote (stderr) saying what idle means
    assert rows[0][:3] == ["CLUSTER", "NODE", "GPU"], rows[0]
    assert [r[:2] for r in rows[1:]] == [["cloud-h100", "gpu-h100-0"]] * 2 and all(run in r for r in rows[1:]), text
    code, text = _cli("get", "gpus", "--idle", "--cluster", "cloud-l4", "--server", svc.url)
    assert code == 0 and "No idle GPUs" in text, text


def _following(svc: Running, kinds: list[str], names: list[str] | None = None) -> tuple[list[Any], threading.Event]:
    """Follow the watch stream on a thread; the events it saw, and an event that stops it."""
    seen: list[Any] = []
    stop = threading.Event()

    def follow() -> None:
        client = Client(svc.url, svc.token)
        for event in watching.events(client, kinds, names, time.monotonic() + 60):
            seen.append(event)
            if stop.is_set():
                return

    threading.Thread(target=follow, daemon=True).start()
    return seen, stop


def test_the_watch_stream_follows_every_cluster_and_a_silent_one_holds_nothing(
        tmp_path: Path, serve_clusters: Callable[..., Running], monkeypatch: pytest.MonkeyPatch) -> None:
    svc = _serve(tmp_path, serve_clusters, cluster_unreachable_s=60.0)  # silent, not yet judged unreachable
    monkeypatch.setenv("BIGK_TOKEN", svc.token)
    code, text = _cli("get", "nodes", "-w", "--watch-timeout", "4", "--server", svc.url)
    assert code == 0, text
    rows = _table(text)
    assert rows[0][:2] == ["CLUSTER", "NAME"], rows[0]
    assert {cl: len({r[1] for r in rows[1:] if r[0] == cl}) for cl in ("onprem", "cloud-h100", "cloud-l4")} == {
        "onprem": 8, "cloud-h100": 3, "cloud-l4": 6}, text
    code, text = _cli("get", "gpus", "-w", "--cluster", "cloud-h100", "--watch-timeout", "4", "--server", svc.url)
    assert code == 0, text
    rows = _table(text)  # the listing, then a line per change (readings move): cloud-h100's GPUs only
    assert [r[:2] for r in rows[1:9]] == [["cloud-h100", "gpu-h100-0"]] * 8, text
    assert {r[0] for r in rows[1:]} == {"cloud-h100"}, text
    code, text = _cli("get", "gpus", "-w", "--cluster", "nowhere", "--watch-timeout", "2", "--server", svc.url)
    assert code == 3 and "no cluster 'nowhere'" in text, text

    seen, stop = _following(svc, ["nodes"], ["gpu-h100-0", "gpu-a100-0"])
    wait_for(lambda: any(e.type == "SYNCED" for e in seen), 15, "the stream's first listing")
    listed = {e.name: e.object["cluster"] for e in seen if e.type == "ADDED"}
    assert listed == {"cloud-h100/gpu-h100-0": "cloud-h100", "onprem/gpu-a100-0": "onprem"}, listed
    with svc.client() as c:
        assert c.post("/api/v1/nodes/gpu-h100-0/cordon").json()["cluster"] == "cloud-h100"
        wait_for(lambda: any(e.type == "MODIFIED" and e.name == "cloud-h100/gpu-h100-0"
                             and e.object["unschedulable"] for e in seen), 15, "cloud-h100's cordon on the stream")

        cloud = svc.service.clusters["cloud-h100"].emulator
        assert cloud is not None
        cloud.faults.add("*", ".*", 0, count=10**9)  # cloud-h100 drops every request from now on
        try:
            time.sleep(1.0)
            started = time.monotonic()
            assert c.post("/api/v1/nodes/gpu-a100-0/cordon").json()["cluster"] == "onprem"
            wait_for(lambda: any(e.type == "MODIFIED" and e.name == "onprem/gpu-a100-0"
                                 and e.object["unschedulable"] for e in seen), 15, "onprem's cordon on the stream")
            assert time.monotonic() - started < 8, "the silent cluster held the stream"
            assert not [e for e in seen if e.type == "DELETED"], "a silent cluster's nodes are not deleted"
        finally:
            cloud.faults.clear()
            stop.set()
        assert c.post("/api/v1/nodes/gpu-a100-0/uncordon").status_code == 200
        wait_for(lambda: c.post("/api/v1/nodes/gpu-h100-0/uncordon").status_code == 200, 20, "cloud-h100 back")


def _status_checks(svc: Running, html_of: Callable[[str], str]) -> None:
    overview = html_of("/status")
    for name in ("onprem", "cloud-h100", "cloud-l4"):
        assert f'data-cluster="{name}" data-health="up"' in overview, name
        assert f'data-cluster-gpus="{name}"' in overview, name
    gpus = html_of("/status/gpus")
    assert len(re.findall(r'data-gpu="cloud-h100/gpu-h100-0/\d"', gpus)) == 8
    assert len(re.findall(r'data-gpu="cloud-l4/', gpus)) == 16 and len(re.findall(r'data-gpu="onprem/', gpus)) == 24


def test_the_status_page_shows_every_cluster(tmp_path: Path, serve_clusters: Callable[..., Running]) -> None:
    svc = _serve(tmp_path, serve_clusters, cluster_unreachable_s=1.0)
    with svc.client() as c:
        run = _run(c, "pin-l4")
        wait_for(lambda: _state(c, run)["state"] == "Running", 30, "pin-l4 running on cloud-l4")
        _status_checks(svc, lambda path: c.get(path).text)
        overview = c.get("/status").text
        row = re.search(rf'<tr data-run="{run}".*?</tr>', overview, re.S)
        assert row is not None and '<td class="cluster">cloud-l4</td>' in row.group(0), overview
        assert "<th>CLUSTER</th>" in overview
        assert 'id="run-cluster">cloud-l4<' in c.get(f"/status/runs/{run}").text
        cloud = svc.service.clusters["cloud-h100"].emulator
        assert cloud is not None
        cloud.faults.add("*", ".*", 0, count=10**9)  # the cloud's API drops every request: a partition
        try:  # once the run ticker judges it unreachable: named, its GPUs not shown
            wait_for(lambda: not c.get("/api/v1/clusters/cloud-h100").json()["reachable"], 20, "cloud-h100 lost")
            page = c.get("/status").text
            assert 'data-cluster="cloud-h100" data-health="unreachable"' in page
            assert "unreachable: GPUs not shown" in page and 'data-cluster-gpus="onprem"' in page
        finally:
            cloud.faults.clear()
        wait_for(lambda: c.get("/api/v1/clusters/cloud-h100").json()["reachable"], 20, "cloud-h100 back")


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (bash .ci/run installs it)")
def test_the_status_page_of_three_clusters_in_chromium(tmp_path: Path,
                                                       serve_clusters: Callable[..., Running]) -> None:
    from playwright.sync_api import sync_playwright

    svc = _serve(tmp_path, serve_clusters)
    with svc.client() as c:
        run = _run(c, "pin-l4")
        wait_for(lambda: _state(c, run)["state"] == "Running", 30, "pin-l4 running on cloud-l4")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{svc.url}/status")
            page.wait_for_selector("#live.on", timeout=10_000)
            summary = {page.locator("#clusters tr[data-cluster]").nth(i).get_attribute("data-cluster"):
                       page.locator("#clusters tr[data-cluster]").nth(i).inner_text()
                       for i in range(page.locator("#clusters tr[data-cluster]").count())}
            assert list(summary) == ["onprem", "cloud-h100", "cloud-l4"], summary
            assert "up" in summary["cloud-h100"] and "0/8" in summary["cloud-h100"], summary
            assert page.locator("[data-cluster-gpus='cloud-h100'] .mini").count() == 8
            assert page.inner_text(f"tr[data-run='{run}'] td.cluster") == "cloud-l4"
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "status-page-clusters.png"), full_page=True)
            page.goto(f"{svc.url}/status/gpus")
            assert page.locator("[data-gpu^='cloud-h100/']").count() == 8
            assert page.locator("[data-gpu^='cloud-l4/']").count() == 16
            page.screenshot(path=str(ARTIFACTS / "status-gpus-clusters.png"), full_page=True)
        finally:
            browser.close()
    _status_checks(svc, lambda path: httpx.get(f"{svc.url}{path}", headers={"Authorization": f"Bearer {svc.token}"})
                   .text)
