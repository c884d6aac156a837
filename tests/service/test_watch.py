"""The watch stream: one differ for all watchers, exact replay after a dropped connection, RESET when too old."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bigk.service.watch import ChangeFeed
from tests.service.conftest import Running, job_yaml, wait_for


class FakeSource:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}

    def __call__(self) -> dict[str, dict[str, Any]]:
        return {k: dict(v) for k, v in self.objects.items()}


def test_feed_diffs_listings_and_replays_from_any_sequence_number() -> None:
    src = FakeSource()
    feed = ChangeFeed({"runs": src}, history=3)
    src.objects = {"a": {"state": "Pending", "wait_s": 1}}
    seq, snap = feed.snapshot(["runs"])
    assert seq == 0 and snap == {"runs": {"a": {"state": "Pending", "wait_s": 1}}}
    src.objects["a"] = {"state": "Pending", "wait_s": 2}  # only a volatile field moved: no change
    feed._poll("runs")
    assert feed.seq == 0
    src.objects["a"] = {"state": "Running", "wait_s": 3}
    src.objects["b"] = {"state": "Pending"}
    feed._poll("runs")
    assert [(c.seq, c.type, c.name) for c in feed.since(0, ["runs"]) or []] == [(1, "MODIFIED", "a"), (2, "ADDED", "b")]
    del src.objects["a"]
    feed._poll("runs")
    assert [(c.type, c.name) for c in feed.since(2, ["runs"]) or []] == [("DELETED", "a")]
    src.objects["c"] = {"state": "Pending"}
    feed._poll("runs")  # four events in a log of three: the first one is gone
    assert feed.since(0, ["runs"]) is None and [c.seq for c in feed.since(1, ["runs"]) or []] == [2, 3, 4]
    assert feed.since(99, ["runs"]) is None  # a number this feed never gave out (a restarted server)
    assert feed.since(4, ["gpus"]) == []


def _events(resp: httpx.Response, stop: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in resp.iter_lines():
        if not line:
            if current:
                events.append(current)
                if stop(events):
                    return events
            current = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            current[key] = json.loads(value) if key == "data" else value
    return events


@pytest.fixture()
def svc(tmp_path: Path, serve: Callable[..., Running]) -> Running:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "short.yaml").write_text(job_yaml("short", instances=1, duration=40))
    return serve(specs)


def test_watch_stream_resumes_after_a_dropped_connection(svc: Running) -> None:
    with svc.client() as api:
        first = api.post("/api/v1/jobs/short/run").json()
        assert "id" in first, first
        with api.stream("GET", "/api/v1/watch", params={"kind": "runs"}) as resp:
            assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
            listing = _events(resp, lambda evs: evs[-1].get("event") == "SYNCED")
        assert [e["data"]["name"] for e in listing if e["event"] == "ADDED"] == [first["id"]]
        last_id = listing[-1]["id"]
        # the connection is gone; meanwhile a second run is created and the first one finishes
        second = api.post("/api/v1/jobs/short/run").json()
        wait_for(lambda: api.get(f"/api/v1/runs/{first['id']}").json()["state"] == "Succeeded", 20, "first done")
        states: dict[str, str] = {}

        def first_seen_done(evs: list[dict[str, Any]]) -> bool:
            for e in evs[len(states):]:
                states[e["data"]["name"] + str(len(states))] = e["data"]["object"]["state"]
            return any(e["data"]["name"] == first["id"] and e["data"]["object"]["state"] == "Succeeded" for e in evs)

        with api.stream("GET", "/api/v1/watch", params={"kind": "runs"}, headers={"Last-Event-ID": last_id},
                        timeout=httpx.Timeout(10, read=20)) as resp:
            replay = _events(resp, first_seen_done)
        assert all(e["event"] in ("ADDED", "MODIFIED") for e in replay)  # no RESET, no second listing
        added = [e for e in replay if e["event"] == "ADDED"]
        assert [e["data"]["name"] for e in added] == [second["id"]]  # missed while away, sent once
        assert int(replay[0]["id"]) == int(last_id) + 1  # exactly what followed the last event seen
        ids = [int(e["id"]) for e in replay]
        assert ids == sorted(ids)

        with api.stream("GET", "/api/v1/watch", params={"kind": "runs", "since": "999999"}) as resp:
            reset = _events(resp, lambda evs: evs[-1].get("event") == "SYNCED")
        assert reset[0]["event"] == "RESET"  # the server cannot replay from there: start over with a listing
        assert {e["data"]["name"] for e in reset if e["event"] == "ADDED"} == {first["id"], second["id"]}

        assert api.get("/api/v1/watch", params={"kind": "pods"}).status_code == 400


def test_watch_needs_the_read_rule_of_the_api(svc: Running) -> None:
    """The stream answers what the API's reads answer: one more way in must not be a way around the token."""
    with svc.client(token=False) as anon, anon.stream("GET", "/api/v1/watch") as resp:
        anonymous = resp.status_code
    with svc.client(token=False) as anon:
        assert anonymous == anon.get("/api/v1/runs").status_code
    with svc.client() as api, api.stream("GET", "/api/v1/watch") as resp:
        assert resp.status_code == 200
