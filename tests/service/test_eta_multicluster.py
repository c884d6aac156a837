"""Start estimates with several clusters (#18, #21): each cluster's ETA board forecasts its own queue.

`bigk serve --emulate 2` (onprem, cloud-h100): a run that may only go to cloud-h100 waits there behind a
run that fills its CPU nodes; its estimate (position in cloud-h100's line, ETA, range, what it waits for)
comes from cloud-h100's board, in the API, `bigk explain` and `bigk describe run`. A what-if for a spec
allowed on both clusters answers for each and names the one where it would start soonest; cron fires
count on a cluster's board only for jobs that may go nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import yaml

from bigk.scheduler.forecast import ForecastInput
from bigk.scheduler.types import Snapshot
from bigk.service.eta import Durations, EtaService
from bigk.service.eta_boards import pinned_to
from bigk.spec.loader import load_file
from tests.service.conftest import Running, job_yaml, wait_for
from tests.service.test_multicluster import _cli, _fill_job, _run, _specs, _state
from tests.service.test_multicluster import serve_clusters as serve_clusters  # noqa: F401 (fixture)

LONG_S = 6000  # x the time scale 0.05: the first run holds cloud-h100's CPU nodes 300 s, longer than the checks
EITHER = "clusters: [cloud-h100, onprem]\n"  # the cloud preferred


def _long_fill() -> str:
    return _fill_job().replace("expectedDurationSeconds: 300", f"expectedDurationSeconds: {LONG_S}")


def _estimated(c: httpx.Client, run_id: str) -> dict[str, Any] | None:
    run = _state(c, run_id)
    return run if run["state"] == "Submitted" and run.get("eta") and run["eta"]["eta"] is not None else None


def test_a_run_waiting_on_a_full_cluster_gets_that_clusters_estimate(
        tmp_path: Path, serve_clusters: Callable[..., Running],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    specs = _specs(tmp_path, {"fill": _long_fill()})
    svc = serve_clusters(specs, 2, dispatch_hold_s=0.0)
    monkeypatch.setenv("BIGK_TOKEN", svc.token)
    assert set(svc.service.eta_boards or {}) == {"onprem", "cloud-h100"}
    with svc.client() as c:
        first = _run(c, "fill")
        wait_for(lambda: _state(c, first)["state"] == "Running", 30, "the first fill running on cloud-h100")
        wait_for(lambda: (c.get("/api/v1/clusters/cloud-h100").json()["allocated"]["cpu_milli"] or 0) >= 24_000, 20,
                 "the cloud's published copy to hold the first run's executors")
        second = _run(c, "fill")  # pinned to cloud-h100, which is full: submitted there (hold 0) and waits
        run = wait_for(lambda: _estimated(c, second), 30, "the waiting run's estimate from cloud-h100's board")
        assert run["cluster"] == "cloud-h100"
        eta = run["eta"]
        assert eta["cluster"] == "cloud-h100" and eta["run"] == second
        assert (eta["position"], eta["waiting"], eta["queue_position"], eta["queue_waiting"]) == (1, 1, 1, 1)
        assert eta["eta_low"] <= eta["eta"] <= eta["eta_high"]
        assert eta["eta"] > svc.service.clock() - 1
        assert f"after fill-{first}" in eta["waits_for"], eta["waits_for"]
        assert _state(c, first)["eta"] is None  # running: no estimate

        board = c.get("/api/v1/eta").json()
        assert [(r["run"], r["cluster"]) for r in board["runs"]] == [(second, "cloud-h100")]
        assert board["clusters"]["onprem"]["waiting"] == 0 and board["clusters"]["cloud-h100"]["waiting"] == 1
        listed = {r["id"]: r for r in c.get("/api/v1/runs").json()}
        assert listed[second]["eta"]["eta"] is not None and listed[first]["eta"] is None
        explained = c.get(f"/api/v1/runs/{second}/explain").json()
        assert explained["eta"]["cluster"] == "cloud-h100" and explained["eta"]["position"] == 1

        code, text = _cli("explain", second, "--server", svc.url)
        assert code == 0, text
        assert "position 1 of 1 waiting runs on cluster cloud-h100, 1 of 1 in queue" in text, text
        assert "ETA " in text and "p10..p90" in text and f"after fill-{first}" in text, text
        code, text = _cli("describe", "run", second, "--server", svc.url)
        assert code == 0, text
        assert "Position:   position 1 of 1 waiting runs on cluster cloud-h100" in text, text
        assert "ETA:        ETA " in text, text
        code, text = _cli("get", "runs", "--server", svc.url)
        assert code == 0, text
        row = next(line for line in text.splitlines() if line.startswith(second)).split()
        assert row[3] == "cloud-h100" and row[7].startswith(("in", "now")), text  # CLUSTER ... ETA

        # what-if: allowed on both clusters, it would wait on the full cloud-h100 and start now on onprem
        both = yaml.safe_load(_long_fill().replace("clusters: [cloud-h100]", "clusters: [cloud-h100, onprem]")
                              .replace("name: fill", "name: either"))
        ans = c.post("/api/v1/whatif", json=both).json()
        assert ans["cluster"] == "onprem" and ans["starts_now"] is True, ans
        rows = {r["cluster"]: r for r in ans["clusters"]}
        assert rows["onprem"]["starts_now"] is True and rows["onprem"]["dispatch"] == "chosen"
        assert rows["cloud-h100"]["starts_now"] is False and rows["cloud-h100"]["dispatch"] == "waits"
        assert rows["cloud-h100"]["eta"] is not None and rows["cloud-h100"]["behind"] == 1
        assert ans["never_fits"] == ""
        spec_file = tmp_path / "either.yaml"
        spec_file.write_text(yaml.safe_dump(both))
        code, text = _cli("whatif", str(spec_file), "--server", svc.url)
        assert code == 0, text
        assert "on cluster onprem would start now on " in text, text
        assert "soonest on cluster onprem (of onprem, cloud-h100)" in text, text
        assert "  cloud-h100: would wait: ETA " in text and "  onprem: would start now" in text, text

        # run --dry-run of the pinned job: cloud-h100 alone takes it, behind the waiting run
        code, text = _cli("run", "fill", "--dry-run", "--server", svc.url)
        assert code == 0, text
        assert "on cluster cloud-h100 would wait: ETA " in text and f"fill-{second}" in text, text
        assert "  onprem: not a candidate: not in the job's clusters (cloud-h100)" in text, text
        assert len(c.get("/api/v1/runs").json()) == 2  # nothing was created


def test_cron_fires_count_only_on_the_one_cluster_a_job_may_go_to(tmp_path: Path) -> None:
    """A board counts the fires of a job pinned to its cluster, not of one that may go to several."""
    path = tmp_path / "jobs.yaml"
    path.write_text(job_yaml("pinned", cron="0 * * * *", extra="clusters: [cloud-h100]\n") + "---\n"
                    + job_yaml("roaming", cron="0 * * * *", extra=EITHER))
    loaded = load_file(path)
    assert not loaded.problems, loaded.problems
    jobs = {job.name: job for job in loaded.jobs}
    catalog = SimpleNamespace(view=SimpleNamespace(jobs=jobs))
    firing = SimpleNamespace(suspended=lambda name: False,
                             fire_times=lambda spec, start, end, limit: [start + 60.0, start + 3660.0])

    def allowed(job: Any) -> list[str]:
        return list(job.spec.spec.clusters) or ["onprem", "cloud-h100"]

    def fired(name: str | None) -> list[str]:
        board = EtaService(store=None, catalog=catalog, firing=firing, loop=None, policy="bigk",  # type: ignore[arg-type]
                           reservation_ttl_s=60.0, clock=lambda: 0.0, cluster=name,
                           pinned=pinned_to(name, allowed) if name else None)
        inp = ForecastInput(Snapshot([], [], {}, {}), 0.0)
        board._fires(inp, Durations(lambda job: [], list), 0.0)
        return sorted({a.key.rsplit("-", 1)[0] for a in inp.arrivals})

    assert fired("cloud-h100") == ["pinned"]
    assert fired("onprem") == []
    assert fired(None) == ["pinned", "roaming"]  # one cluster: every fire, as before


def test_a_driver_listed_before_its_run_records_its_gang_is_not_added_twice(tmp_path: Path) -> None:
    """Just after a submit the cluster lists the driver (under Spark's app id) before the run ticker records that id:
    the board must not add a second, drawn driver under the same pod key (the forecast keyed both by it and failed
    with a KeyError once one of them left), and the listed driver's estimate is the run's."""
    from bigk.cluster.config import load_cluster
    from bigk.cluster.model import Gang, Pod, PodRequest, Role
    from bigk.service.runstate import RunState
    from bigk.service.store import RunRecord
    from bigk.spec.naming import driver_pod_name

    path = tmp_path / "jobs.yaml"
    path.write_text(job_yaml("queued"))
    loaded = load_file(path)
    assert not loaded.problems, loaded.problems
    job = loaded.jobs[0]
    catalog = SimpleNamespace(view=SimpleNamespace(jobs={}), job=lambda name: job if name == "queued" else None)
    run = RunRecord("r1", "queued", RunState.SUBMITTED, 1, 0.0, submitted_at=0.0)  # spark_app_id not recorded yet
    store = SimpleNamespace(active_runs=lambda: [run], history=lambda job=None, limit=0: [])
    board = EtaService(store=store, catalog=catalog, firing=SimpleNamespace(), loop=None,  # type: ignore[arg-type]
                       policy="bigk", reservation_ttl_s=60.0, clock=lambda: 0.0)
    nodes = load_cluster(Path(__file__).resolve().parents[2] / "jobspecs" / "cluster.yaml")
    driver = Pod(driver_pod_name("queued", "r1"), PodRequest(1000, 1024), gang="spark-abc", role=Role.DRIVER)
    snap = Snapshot(nodes, [driver], {}, {"spark-abc": Gang("spark-abc", "default", 0, PodRequest(1000, 1024),
                                                             PodRequest(1000, 1024), 2)})
    board._snapshot = lambda: snap  # type: ignore[method-assign]
    inp, by_gang = board._inputs(0.0)
    keys = [p.key for p in inp.snapshot.pods]
    assert keys == [driver.key], keys
    assert by_gang == {"spark-abc": run}  # the listed driver's estimate is the run's
    assert "spark-abc" in inp.durations
    assert inp.snapshot.gangs["spark-abc"].min_executors == 2  # the cluster's own gang shape is kept
    # Listed, but its gang's shape not known to the cluster yet: the spec's shape stands in (executors included).
    board._snapshot = lambda: Snapshot(nodes, [driver], {}, {})  # type: ignore[method-assign]
    inp, by_gang = board._inputs(0.0)
    assert [p.key for p in inp.snapshot.pods] == [driver.key] and by_gang == {"spark-abc": run}
    assert inp.snapshot.gangs["spark-abc"].min_executors == 2  # job_yaml's two executors
