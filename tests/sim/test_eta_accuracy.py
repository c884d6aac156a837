"""The ETA accuracy replay: estimates made at arrival are compared with the starts that then happen."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from bigk.cli.main import app
from bigk.cluster.model import Pod, PodRequest
from bigk.scheduler import Scheduler
from bigk.sim import eta_accuracy as ea
from tests.scheduler.helpers import gpu_node
from tests.sim.conftest import write_nodes, write_pods


def _lone(name: str, at: float, duration: float, expected: float | None) -> ea.Work:
    pod = Pod(name, PodRequest(1000, 1024, 1, 1000), created_at=at)
    return ea.Work(pod.key, "job-a", at, duration, [pod], expected=expected)


def test_exact_expectations_give_exact_estimates() -> None:
    nodes = [gpu_node("gpu-1", gpus=2)]
    works = [_lone(f"p{i}", 0.0, 100.0, 100.0) for i in range(4)]
    run = ea.replay(nodes, works, lambda: Scheduler("binpack"), workload="t", policy="binpack",
                    sample=lambda _w: True)
    by_key = {p.key: p for p in run.predictions}
    waited = [p for p in by_key.values() if p.wait]
    assert len(waited) == 2 and all(p.start == 100.0 for p in waited)
    # p2 starts when the first of two 100 s runs (spread 0.8x..1.5x) ends, p3 when the second does: with drawn
    # durations the first of two ends comes a little before either's median, the second a little after
    first, second = sorted(waited, key=lambda p: p.key)
    assert first.eta is not None and 85.0 <= first.eta < 100.0
    assert second.eta is not None and 100.0 < second.eta <= 125.0
    for p in waited:
        assert p.low is not None and p.high is not None and p.low < 100.0 < p.high  # 0.8x..1.5x of expected
        assert p.inside
    s = run.summary()
    assert s["predicted"] == 4 and s["started"] == 4
    assert s["waited"]["n"] == 2 and s["waited"]["inside_share"] == 1.0  # type: ignore[index]


def test_a_wrong_expectation_shows_as_error() -> None:
    """The spec says 100 s but runs last 400 s: the first estimates are off, and the report says so."""
    nodes = [gpu_node("gpu-1", gpus=1)]
    works = [_lone(f"p{i}", 0.0, 400.0, 100.0) for i in range(2)]
    run = ea.replay(nodes, works, lambda: Scheduler("binpack"), workload="t", policy="binpack",
                    sample=lambda _w: True)
    late = next(p for p in run.predictions if p.wait)
    assert late.start == 400.0 and late.eta is not None and abs(late.eta - 100.0) <= 2.0
    assert late.error is not None and late.error >= 298.0 and not late.inside
    assert run.summary()["waited"]["inside_share"] == 0.0  # type: ignore[index]


def test_history_replaces_the_expectation_once_runs_finish() -> None:
    nodes = [gpu_node("gpu-1", gpus=1)]
    works = [_lone(f"p{i}", 0.0 if i < 4 else 2000.0, 400.0, 100.0) for i in range(6)]
    run = ea.replay(nodes, works, lambda: Scheduler("binpack"), workload="t", policy="binpack",
                    sample=lambda _w: True)
    later = [p for p in run.predictions if p.at == 2000.0 and p.wait]
    assert later and all(p.error is not None and p.error <= 5.0 for p in later)  # learned: runs last 400 s


def test_spark_workload_has_cron_fires_and_gangs() -> None:
    works = ea.spark_work(seed=3, hours=2.0)
    assert any(w.scheduled for w in works) and any(not w.scheduled for w in works)
    assert all(w.gang is not None and w.gang.min_executors >= 2 for w in works)
    assert works == ea.spark_work(seed=3, hours=2.0)


def test_simulate_protocol_eta_writes_json(tmp_path: Path) -> None:
    nodes = write_nodes(tmp_path / "nodes.csv", n8=2, n2=2, n0=1)
    pods = write_pods(tmp_path / "pods.csv", n=80, seed=4)
    out = tmp_path / "eta.json"
    result = CliRunner().invoke(app, ["simulate", "--nodes", str(nodes), "--pods", str(pods), "--protocol", "eta",
                                      "--eta-workload", "alibaba", "--speedup", "4", "--eta-sample", "1",
                                      "--json", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    run = report["runs"][0]
    assert run["workload"] == "alibaba" and run["predicted"] == 80 and run["units"] == 80
    assert {"inside_share", "median_abs_error_s", "median_wait_s", "error_over_wait"} <= set(run["waited"])
    assert run["waited"]["n"] > 0  # the small cluster makes pods wait
    assert "inside" in result.output and "waited" in result.output
