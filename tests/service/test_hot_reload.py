"""Spec files that break while `bigk serve` runs are reported, and the jobs already loaded keep running."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.realk8s import cluster_params
from tests.service.conftest import Running, job_yaml, wait_for


def test_broken_files_are_reported_and_loaded_jobs_stay(tmp_path: Path, serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "a.yaml").write_text(job_yaml("a", cron="0 3 * * *"))
    svc = serve(specs)
    with svc.client() as c:
        assert [j["name"] for j in c.get("/api/v1/jobs").json()] == ["a"]
        # A new file that is not even YAML.
        (specs / "b.yaml").write_bytes(b"apiVersion: bigk.io/v1\nkind: [unclosed\n\x00\xff")
        problems = wait_for(lambda: c.get("/api/v1/problems").json()["problems"], 5, "the broken file to be reported")
        assert any(p.startswith(str(specs / "b.yaml") + ":") for p in problems), problems
        metrics = c.get("/metrics").text
        assert f'bigk_spec_load_errors{{file="{specs / "b.yaml"}"}}' in metrics
        # The job that was loaded now has an unknown field: it is kept as it was, and the problem names the line.
        (specs / "a.yaml").write_text(job_yaml("a", cron="0 3 * * *") + "  executorz: 3\n")
        view = wait_for(lambda: (lambda v: v if v["kept_jobs"] == ["a"] else None)(c.get("/api/v1/problems").json()),
                        5, "job a to be kept")
        assert any(p.startswith(f"{specs / 'a.yaml'}:") and "executorz" in p for p in view["problems"]), view
        assert [j["name"] for j in c.get("/api/v1/jobs").json()] == ["a"]
        assert c.post("/api/v1/jobs/a/run").status_code == 201  # still runnable
        assert c.get("/api/v1/jobs/a").json()["next_fire"] is not None  # still on schedule
        # Fixing both files brings everything back, problems clear.
        (specs / "a.yaml").write_text(job_yaml("a", cron="0 3 * * *"))
        (specs / "b.yaml").write_text(job_yaml("b"))
        wait_for(lambda: [j["name"] for j in c.get("/api/v1/jobs").json()] == ["a", "b"], 5, "job b")
        assert c.get("/api/v1/problems").json() == {"problems": [], "kept_jobs": [], "kept_versions": [],
                                                     "loaded_at": c.get("/api/v1/problems").json()["loaded_at"]}
        assert "bigk_spec_load_errors{" not in c.get("/metrics").text
        events = c.get("/api/v1/events").json()
        assert any(e["kind"] == "spec_problem" for e in events)


def test_removing_a_file_unschedules_its_job(tmp_path: Path, serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "a.yaml").write_text(job_yaml("a", cron="0 3 * * *"))
    svc = serve(specs)
    (specs / "a.yaml").unlink()
    with svc.client() as c:
        wait_for(lambda: c.get("/api/v1/jobs").json() == [], 5, "job a to disappear")
        assert c.get("/api/v1/jobs/a").status_code == 404
    assert svc.service.cron is not None and svc.service.cron.next_fire("a") is None


@pytest.mark.parametrize("cluster", cluster_params(), indirect=True)  # emulator and kube-apiserver
def test_a_broken_file_serves_its_last_good_version_after_a_restart(tmp_path: Path,
                                                                   serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    good = job_yaml("a", cron="0 3 * * *")
    (specs / "a.yaml").write_text(good)
    state = tmp_path / "state"
    first = serve(specs, state=state)
    first.stop()
    (specs / "a.yaml").write_text(good + "  executorz: 3\n")  # broken while bigk is down
    second = serve(specs, state=state)
    with second.client() as c:
        assert [j["name"] for j in c.get("/api/v1/jobs").json()] == ["a"]  # served from the stored version
        view = c.get("/api/v1/problems").json()
        assert view["kept_jobs"] == ["a"]
        assert any("executorz" in p for p in view["problems"])
        [version] = view["kept_versions"]
        assert version["sha256"] == hashlib.sha256(good.encode()).hexdigest() and version["restored"] is True
        assert c.get("/api/v1/jobs/a").json()["next_fire"] is not None  # still on schedule
        (specs / "a.yaml").write_text(good.replace("0 3 * * *", "0 4 * * *"))  # fixed: the new version serves
        wait_for(lambda: c.get("/api/v1/problems").json()["kept_jobs"] == [], 5, "the fixed file to load")
    second.stop()
    third = serve(specs, state=state)
    with third.client() as c:
        assert c.get("/api/v1/problems").json()["kept_jobs"] == []
