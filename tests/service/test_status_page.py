"""The status page in a real headless Chromium (Debian's `chromium`, driven by Playwright; no browser download).

On the emulated cluster with the example specs: the page lists the runs the API lists, follows a run to
Succeeded without being reloaded (the watch stream re-renders it), links to the run's own page with its
gang and events, shows the queue tree the API serves, draws every GPU of every node, and leaves screenshots
in test-artifacts/.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.service.conftest import ROOT, Running, job_yaml, wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("BIGK_TEST_ARTIFACTS") or ROOT / "test-artifacts")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]

pytestmark = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (bash .ci/run installs it)"),
    pytest.mark.parametrize("cluster", ["emulated"], indirect=True),
]


@pytest.fixture()
def browser_page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            yield page
        finally:
            browser.close()


@pytest.fixture()
def example(tmp_path: Path, serve: Callable[..., Running]) -> Running:
    """bigk serve over the example specs plus `watch-me`, a run that lasts a few seconds on the emulator."""
    specs = tmp_path / "specs"
    specs.mkdir()
    for spec in ROOT.joinpath("jobspecs").glob("*.yaml"):
        if spec.name != "cluster.yaml":
            shutil.copy(spec, specs / spec.name)
    (specs / "watch-me.yaml").write_text(job_yaml("watch-me", instances=2, duration=120, extra="queue: adhoc\n"))
    a100 = "count: 1\n      model: A100\n"  # one A100 per executor; the cluster has 16
    train = job_yaml("train", instances=6, duration=4000, gpu=True, extra="queue: ml.training\n")
    (specs / "train.yaml").write_text(train.replace("count: 1\n", a100))
    big = job_yaml("big", instances=14, gpu=True, extra="queue: ml.training\n")
    (specs / "big.yaml").write_text(big.replace("count: 1\n", a100))
    running = serve(specs)
    running.service.kickoff()
    return running


def _page_runs(page: Any) -> dict[str, str]:
    rows = page.locator("tr[data-run]")
    return {rows.nth(i).get_attribute("data-run"): rows.nth(i).get_attribute("data-state")
            for i in range(rows.count())}


def test_status_page_shows_the_api_runs_and_follows_a_run_live(example: Running, browser_page: Any) -> None:
    page = browser_page
    with example.client() as api:
        train = api.post("/api/v1/jobs/train/run").json()
        wait_for(lambda: api.get(f"/api/v1/runs/{train['id']}").json()["state"] == "Running", 10, "train running")
        big = api.post("/api/v1/jobs/big/run").json()  # 14 A100s while train holds 6 of 16: waits, and says why
        run = api.post("/api/v1/jobs/watch-me/run").json()
        wait_for(lambda: "executors fit" in api.get(f"/api/v1/runs/{big['id']}/explain").json()["explanation"],
                 10, "the scheduler's explanation for big")
        wait_for(lambda: api.get(f"/api/v1/runs/{run['id']}").json()["state"] == "Running", 10, "watch-me running")
        page.goto(f"{example.url}/status")
        page.wait_for_selector("#live.on", timeout=10_000)  # subscribed to the watch stream
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "status-page.png"), full_page=True)

        def same_runs() -> dict[str, str] | None:  # cron may fire a run between the two reads: the page follows
            shown = _page_runs(page)
            listed = {r["id"]: r["state"] for r in api.get("/api/v1/runs", params={"limit": 100}).json()}
            return shown if set(shown) == set(listed) else None

        shown = wait_for(same_runs, 10, "the page to list the runs the API lists", interval=0.5)
        assert len(shown) >= 3 and shown[run["id"]] == "Running"
        page.evaluate("window.__notReloaded = true")

        wait_for(lambda: api.get(f"/api/v1/runs/{run['id']}").json()["state"] == "Succeeded", 30, "watch-me done")
        page.wait_for_selector(f"tr[data-run='{run['id']}'][data-state='Succeeded']", timeout=10_000)
        assert page.evaluate("window.__notReloaded === true")  # updated in place, not reloaded
        assert "live · updated" in page.inner_text("#live")
        page.screenshot(path=str(ARTIFACTS / "status-page-finished.png"), full_page=True)

        page.click(f"a[href='/status/runs/{run['id']}']")
        page.wait_for_selector("#run-state")
        assert page.url.endswith(f"/status/runs/{run['id']}")  # each page is a link of its own
        assert page.inner_text("#run-state") == "Succeeded"
        body = page.inner_text("main")
        assert "watch-me" in body and "EVENTS" in body.upper() and "Pending -> Submitted" in body
        assert f"watch-me-{run['id']}-driver" in body

        page.goto(f"{example.url}/status/runs/{big['id']}")  # a waiting gang: why, in the scheduler's words
        text = page.inner_text("main")
        assert page.locator("h2", has_text="Gang").count() == 1  # the scheduler's record of the gang
        assert "executors fit" in text and "14 executors" in text

        page.goto(f"{example.url}/status/queues")
        shown_queues = page.locator("tr[data-queue]")
        queues = {q["name"]: q for q in api.get("/api/v1/queues").json()}
        assert {shown_queues.nth(i).get_attribute("data-queue") for i in range(shown_queues.count())} == set(queues)
        training = page.inner_text("tr[data-queue='ml.training']").split("\t")
        assert training[-2:] == [str(queues["ml.training"]["running_runs"]), str(queues["ml.training"]["pending_runs"])]
        assert "6 GPU" in page.inner_text("tr[data-queue='ml.training']")  # train's six A100s, allocated
        page.screenshot(path=str(ARTIFACTS / "status-queues.png"), full_page=True)

        page.goto(f"{example.url}/status/gpus")
        cells = page.locator("[data-gpu]")
        assert cells.count() == len(api.get("/api/v1/gpus").json()) > 0
        page.screenshot(path=str(ARTIFACTS / "status-gpus.png"), full_page=True)


def test_status_page_marks_a_sick_gpu(example: Running, browser_page: Any, cluster: Any) -> None:
    cluster.emulator.gpus.set_health("gpu-a100-1", 3, False)
    cluster.emulator.gpus.refresh_soon()
    with example.client() as api:
        wait_for(lambda: any(g["node"] == "gpu-a100-1" and g["index"] == 3 and g["healthy"] is False
                             for g in api.get("/api/v1/gpus").json()), 10, "the sick GPU in the API")
    page = browser_page
    page.goto(f"{example.url}/status/gpus")
    assert page.get_attribute("[data-gpu='gpu-a100-1/3']", "class") == "gpu sick"
    assert page.locator("[data-gpu].sick").count() == 1


ETA_DURATION_S = 6000  # x the emulator's time scale 0.05: each gpu-features run holds its two A100s 300 s


def _waiting_with_etas(api: Any, ids: list[str]) -> list[dict[str, Any]]:
    """The ETA board's rows, once 8 runs hold the 16 A100s, 4 wait and the board covers exactly those 4."""
    runs = {r["id"]: r for r in api.get("/api/v1/runs", params={"job": "gpu-features"}).json()}
    waiting = {rid for rid in ids if runs[rid]["state"] in ("Pending", "Submitted")}
    if len(waiting) != 4 or sum(runs[rid]["state"] in ("Admitted", "Running") for rid in ids) != 8:
        return []
    rows = api.get("/api/v1/eta").json()["runs"]
    if {r["run"] for r in rows} != waiting or any(r["eta"] is None for r in rows):
        return []
    return rows


def test_status_page_shows_position_eta_and_what_a_waiting_run_waits_for(tmp_path: Path,
                                                                         serve: Callable[..., Running],
                                                                         browser_page: Any) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    text = (ROOT / "jobspecs" / "gpu-features.yaml").read_text()
    assert "expectedDurationSeconds: 60" in text
    (specs / "gpu-features.yaml").write_text(text.replace("expectedDurationSeconds: 60",
                                                          f"expectedDurationSeconds: {ETA_DURATION_S}"))
    served = serve(specs)
    page = browser_page
    with served.client() as api:
        ids = [api.post("/api/v1/jobs/gpu-features/run").json()["id"] for _ in range(12)]
        rows = wait_for(lambda: _waiting_with_etas(api, ids), 30, "four waiting runs on the ETA board")
        by_run = {r["run"]: r for r in rows}
        first = min(rows, key=lambda r: r["position"])

        page.goto(f"{served.url}/status")
        page.wait_for_selector("#live.on", timeout=10_000)
        for run_id, row in by_run.items():  # the waiting table: position, ETA with its range, what it waits for
            cells = page.locator(f"tr[data-waiting='{run_id}']")
            assert cells.count() == 1
            assert cells.locator("td.position").inner_text().startswith(f"{row['position']} of 4")
            assert f"{row['queue_position']} of 4 in ml.training" in cells.locator("td.position").inner_text()
            eta_cell = cells.locator("td.eta").inner_text()
            assert eta_cell.startswith("in ") and " .. in " in eta_cell  # "in 4m\nin 3m .. in 6m"
            assert "waits for: when 2 GPUs (NVIDIA-A100-SXM4-80GB) free up on gpu-a100-" in \
                cells.locator("td.why").inner_text()
            listed = page.inner_text(f"tr[data-run='{run_id}'] td.eta")  # the runs list carries it too
            assert listed.startswith(f"#{row['position']} of 4 · in ")
        for run_id in set(ids) - set(by_run):  # running runs have no ETA
            assert page.inner_text(f"tr[data-run='{run_id}'] td.eta") == "-"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "status-eta.png"), full_page=True)

        page.click(f"tr[data-waiting='{first['run']}'] a")  # the run's own page
        page.wait_for_selector("#run-eta")
        assert page.inner_text("#eta-position").startswith(f"{first['position']} of 4 waiting runs")
        assert page.inner_text("#eta-start").startswith("in ")
        assert " .. in " in page.inner_text("#eta-range")
        waits_for = page.inner_text("#eta-waits-for")
        assert "free up on gpu-a100-" in waits_for and "after gpu-features-" in waits_for
        page.screenshot(path=str(ARTIFACTS / "status-run-eta.png"), full_page=True)

        running = next(rid for rid in ids if rid not in by_run)
        page.goto(f"{served.url}/status/runs/{running}")  # a running run: no ETA section
        page.wait_for_selector("#run-state")
        assert page.locator("#run-eta").count() == 0
