"""Runs held by the dispatcher get an estimate, and go where the forecast says they start soonest (#18).

`bigk serve --emulate 2` (onprem, cloud-h100; time-scaled emulator, a 1,000 s expected duration runs 50 s):
both clusters are filled, cloud-h100 for long and onprem for less, so that a run allowed on both (cloud-h100
preferred) fits neither now and is held unsubmitted. It gets an estimate on each cluster (the held runs'
forecasts, `bigk.service.held_forecasts`), shown in the API, `bigk explain`, `describe run` and `get runs` as
the soonest cluster's, "if sent to onprem". When its hold ends it is sent to onprem, where the forecast says it
starts soonest (the backlog share alone would tie and send it to the preferred cloud-h100), and its dispatch
reason is in seconds. A unit test drives the held forecasts and the dispatcher's use of them with stub boards.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from bigk.cluster.model import Gang, PodRequest
from bigk.cluster.state import ClusterState
from bigk.scheduler.dispatch import ClusterRule, ClusterView, Dispatch, Verdict, dispatch
from bigk.service.dispatcher import expected_waits
from bigk.service.held_forecasts import HeldForecasts
from bigk.service.runstate import RunState
from bigk.service.store import RunRecord
from tests.scheduler.helpers import cpu_node
from tests.service.conftest import Running, job_yaml, wait_for
from tests.service.test_multicluster import _cli, _fill_job, _run, _specs, _state
from tests.service.test_multicluster import serve_clusters as serve_clusters  # noqa: F401 (fixture)

CLOUD_S = 6000  # cloud-h100's filler: expected (and, x 0.05, real) duration; its CPU nodes stay full 300 s
ONPREM_S = 1000  # onprem's filler: the held run should start there first (real: 50 s, longer than the checks)
HOLD_S = 20.0  # the dispatch hold: long enough to look at the held run, short enough to see it sent


def _fill_onprem() -> str:
    """Four 20-CPU executors pinned to onprem: one on each of its 32-CPU nodes, 12 CPU left on each."""
    text = job_yaml("fill-onprem", instances=4, duration=ONPREM_S, extra="clusters: [onprem]\n")
    return text.replace("    cores: 1\n    memory: 1g\n", "    cores: 20\n    memory: 8g\n")


def _either() -> str:
    """Two 14-CPU executors, allowed on both clusters, cloud-h100 preferred: neither holds them while filled."""
    text = job_yaml("either", instances=2, duration=100, extra="clusters: [cloud-h100, onprem]\n")
    return text.replace("    cores: 1\n    memory: 1g\n", "    cores: 14\n    memory: 8g\n")


def _held_eta(c: httpx.Client, run_id: str) -> dict[str, Any] | None:
    run = _state(c, run_id)
    eta = run.get("eta")
    return run if run["state"] == "Pending" and eta and eta.get("held") and eta.get("eta") is not None else None


def test_a_held_run_gets_an_estimate_and_goes_where_it_starts_soonest(
        tmp_path: Path, serve_clusters: Callable[..., Running],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    specs = _specs(tmp_path, {
        "fill": _fill_job().replace("expectedDurationSeconds: 300", f"expectedDurationSeconds: {CLOUD_S}"),
        "fill-onprem": _fill_onprem(),
        "either": _either(),
    })
    svc = serve_clusters(specs, 2, dispatch_hold_s=HOLD_S)
    monkeypatch.setenv("BIGK_TOKEN", svc.token)
    with svc.client() as c:
        fills = [_run(c, "fill"), _run(c, "fill-onprem")]
        for run_id in fills:
            wait_for(lambda run_id=run_id: _state(c, run_id)["state"] == "Running", 30, f"{run_id} running")
        wait_for(lambda: (c.get("/api/v1/clusters/cloud-h100").json()["allocated"]["cpu_milli"] or 0) >= 24_000, 20,
                 "cloud-h100's published copy to hold its filler's executors")
        wait_for(lambda: (c.get("/api/v1/clusters/onprem").json()["allocated"]["cpu_milli"] or 0) >= 80_000, 20,
                 "onprem's published copy to hold its filler's executors")

        held = _run(c, "either")
        run = wait_for(lambda: _held_eta(c, held), HOLD_S / 2, "the held run's estimate")
        assert run["cluster"] == "" and "held unsubmitted: it fits no cluster now" in run["dispatch_reason"]
        eta = run["eta"]
        assert eta["if_sent_to"] == "onprem" and eta["cluster"] == "onprem", eta
        assert set(eta["clusters"]) == {"onprem", "cloud-h100"}, eta
        now = svc.service.clock()
        assert eta["eta_low"] <= eta["eta"] <= eta["eta_high"], eta
        assert now < eta["eta"] < now + ONPREM_S + 60, eta  # when onprem's filler ends
        assert eta["clusters"]["cloud-h100"]["eta"] > eta["eta"] + 1000, eta  # cloud-h100's filler runs far longer
        assert "fill-onprem-" in eta["waits_for"], eta["waits_for"]
        assert (eta["position"], eta["waiting"]) == (1, 1)
        explained = c.get(f"/api/v1/runs/{held}/explain").json()
        assert explained["eta"]["if_sent_to"] == "onprem", explained
        listed = {r["id"]: r for r in c.get("/api/v1/runs").json()}
        assert listed[held]["eta"]["if_sent_to"] == "onprem" and listed[fills[0]]["eta"] is None
        # the dispatcher decides it in seconds once the forecast is there (it would wait on both clusters)
        reason = wait_for(lambda: (r := _state(c, held)["dispatch_reason"]) and "expected wait ~" in r and r, 5,
                          "the held run's dispatch reason in seconds")
        assert "backlog" not in reason, reason

        code, text = _cli("explain", held, "--server", svc.url)
        assert code == 0, text
        assert "held by the dispatcher, not sent to a cluster yet: 1 of 1 held runs" in text, text
        assert "ETA " in text and "p10..p90" in text and ", if sent to onprem" in text, text
        assert "if sent to cloud-h100: ETA " in text, text
        code, text = _cli("describe", "run", held, "--server", svc.url)
        assert code == 0, text
        assert "ETA:        ETA " in text and "if sent to onprem" in text, text
        code, text = _cli("get", "runs", "--server", svc.url)
        assert code == 0, text
        row = next(line for line in text.splitlines() if line.startswith(held))
        assert "if sent to onprem" in row, text
        assert _state(c, held)["state"] == "Pending", "the checks outlasted the hold"

        # the hold ends: sent where the forecast says it starts soonest, the reason in seconds
        wait_for(lambda: _state(c, held)["cluster"] != "", HOLD_S + 15, "the held run to be sent")
        run = _state(c, held)
        assert run["cluster"] == "onprem", run["dispatch_reason"]
        reason = run["dispatch_reason"]
        assert reason.startswith("held ") and "sent where it should start soonest; onprem: expected to start here " \
            "soonest (" in reason, reason
        assert "expected wait ~" in reason and "backlog" not in reason, reason
        assert "not cloud-h100: " in reason, reason


# ---- the held forecasts and the dispatcher's use of them, with stub boards ---------------------------------------

def _record(run_id: str, created: float, *, cluster: str = "", state: RunState = RunState.PENDING) -> RunRecord:
    return RunRecord(run_id, "job", state, 1, created, queue="q", cluster=cluster)


class _Board:
    """A cluster's ETA board: answers what-ifs with a fixed start, counting them."""

    def __init__(self, eta: float | None) -> None:
        self.eta = eta
        self.asked = 0
        self.board = SimpleNamespace(computed_at=0.0)

    def whatif(self, spec: Any) -> dict[str, Any]:
        self.asked += 1
        if self.eta is None:
            return {"eta": None, "eta_low": None, "eta_high": None, "waits_for": "no start in sight"}
        return {"eta": self.eta, "eta_low": self.eta - 10, "eta_high": self.eta + 20, "waits_for": "after x",
                "calibrated": False}


def _trial(spec: Any, now: float) -> Dispatch:
    return Dispatch("a", [Verdict("a", "chosen", "expected to start here soonest"), Verdict("b", "waits", "full"),
                          Verdict("c", "excluded", "cordoned: nothing new is dispatched there")], "soonest")


def test_held_forecasts_cover_the_held_runs_on_every_cluster_that_would_take_them() -> None:
    clock = [1000.0]
    runs = [_record("r2", 20.0), _record("r1", 10.0), _record("r3", 30.0),
            _record("sent", 5.0, cluster="a", state=RunState.SUBMITTED)]
    boards = {"a": _Board(1500.0), "b": _Board(1200.0), "c": _Board(1100.0)}
    job = SimpleNamespace(spec=SimpleNamespace(spec=SimpleNamespace(priority=0)))
    held = HeldForecasts(boards=boards, trial=_trial, job=lambda name: job, active=lambda: runs,
                         clock=lambda: clock[0], max_runs=2, max_age_s=30.0, fresh_s=60.0)
    assert held.refresh() is True
    # the two oldest held runs, on the clusters the dispatcher says would take them (not the cordoned c)
    assert held.get("r3") is None and held.get("sent") is None
    first = held.get("r1")
    assert first is not None and list(first.clusters) == ["a", "b"] and boards["c"].asked == 0
    assert (first.position, first.waiting, first.computed_at) == (1, 3, 1000.0)
    assert first.soonest() == "b"
    shown = held.eta_dict("r1")
    assert shown is not None
    assert (shown["eta"], shown["eta_low"], shown["eta_high"]) == (1200.0, 1190.0, 1220.0)
    assert shown["if_sent_to"] == "b" and shown["held"] is True and shown["clusters"]["a"]["eta"] == 1500.0
    assert held.waits("r1", 1050.0) == {"a": 450.0, "b": 150.0}

    # nothing relevant changed and not yet max-age old: nothing recomputed
    asked = boards["a"].asked
    clock[0] = 1010.0
    assert held.refresh() is False and boards["a"].asked == asked
    # a board recomputed (its cluster changed): recomputed
    boards["b"].board.computed_at = 1005.0
    boards["b"].eta = 1300.0
    assert held.refresh() is True and held.waits("r1", 1010.0) == {"a": 490.0, "b": 290.0}
    # max age: recomputed without a change
    clock[0] = 1045.0
    assert held.refresh() is True and held.get("r1").computed_at == 1045.0  # type: ignore[union-attr]
    # too old for the dispatcher once past fresh_s (the thread stopped, say)
    assert held.waits("r1", 1045.0 + 61.0) is None
    # a run that was sent is dropped
    runs[1] = _record("r1", 10.0, cluster="b", state=RunState.SUBMITTED)
    held.refresh()
    assert held.get("r1") is None and held.get("r3") is not None
    # no start within the horizon anywhere: an estimate of None, no cluster named
    boards["a"].eta = boards["b"].eta = None
    clock[0] = 2000.0
    held.refresh()
    none = held.eta_dict("r2")
    assert none is not None and none["eta"] is None and none["if_sent_to"] is None
    assert held.waits("r2", 2000.0) == {}


def test_the_dispatcher_decides_a_held_run_in_seconds_with_its_forecast_and_restores_the_views() -> None:
    """Two full clusters: by backlog the preferred `big` wins the tie; with the held run's forecast, `small`,
    where it starts sooner. The views come back as they were for the next run of the tick."""
    req = PodRequest(cpu_milli=4000, memory_mib=1024)
    gang = Gang("g", "q", 0, req, req, 1)

    def views() -> list[ClusterView]:
        out = []
        for name in ("big", "small"):
            state = ClusterState([cpu_node(f"{name}-{n}") for n in range(2)])
            for n, node in enumerate(state.nodes):  # every node full but 1 CPU
                busy = PodRequest(node.cpu_milli - 1000, 1024)
                state.allocate(f"busy-{node.name}", busy, state.placement_for(n, busy, ()))
            out.append(ClusterView(name, state))
        return out

    tick = views()
    rule = ClusterRule(names=("big", "small"))
    by_backlog = dispatch(gang, tick, rule)
    assert by_backlog.how == "soonest" and by_backlog.cluster == "big", by_backlog.message()
    assert "backlog" in by_backlog.message()
    with expected_waits(tick, {"big": 5432.1, "small": 123.4}):
        assert [v.expected_wait_s for v in tick] == [5400.0, 120.0]  # two significant figures
        found = dispatch(gang, tick, rule)
    assert found.cluster == "small" and "expected wait ~120 s" in found.message(), found.message()
    assert [v.expected_wait_s for v in tick] == [None, None]
    with expected_waits(tick, {"big": 10.0}):  # no forecast for small: the backlog decides, as before
        found = dispatch(gang, tick, rule)
    assert found.cluster == "big" and "backlog" in found.message(), found.message()
    assert [v.expected_wait_s for v in tick] == [None, None]
