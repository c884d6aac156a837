"""`bigk get queues` and `bigk describe queue` against a running `bigk serve` with a queue tree."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.test_ops_cli import CLI, bigk  # noqa: F401  (fixture)
from tests.service.conftest import Running, cluster, job_yaml, serve, wait_for  # noqa: F401  (fixtures)
from tests.service.test_queues_live import QUEUES


@pytest.fixture()
def svc(tmp_path: Path, serve: Callable[..., Running]) -> Running:  # noqa: F811
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "queues.yaml").write_text(QUEUES.replace("WEIGHT", "2"))
    (specs / "train.yaml").write_text(job_yaml("train", instances=2, duration=5000, gpu=True,
                                               extra="queue: ml.training\n"))
    (specs / "huge.yaml").write_text(job_yaml("huge", instances=15, duration=5000, gpu=True, extra="queue: batch\n"))
    return serve(specs)


def test_get_queues_shows_the_tree_with_live_usage_and_describe_lists_waiting_gangs(svc: Running, bigk: CLI) -> None:  # noqa: F811
    s, t = svc.url, svc.token
    assert bigk("run", "train", server=s, token=t)[0] == 0
    wait_for(lambda: "2 GPU" in bigk("get", "queues", server=s)[1], 20, "train's GPUs in the queue table")
    code, run_out, _ = bigk("run", "huge", server=s, token=t)  # 15 + 2 > 16 A100s: waits
    assert code == 0
    huge = run_out.split()[1]
    code, out, err = bigk("get", "queues", server=s)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["NAME", "GUARANTEE", "MAX"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert list(rows) == ["batch", "ml", "training"]  # parents first; children indented by their last part
    assert lines[3].startswith("  training") and "8 GPU" in rows["ml"] and "2 GPU" in rows["training"]
    assert rows["training"].split()[-3:] == ["1", "0", "-"]  # RUNNING, PENDING, NEXT ETA (none waits there)
    code, out, _ = bigk("get", "queues", "-o", "json", server=s)
    items = {q["name"]: q for q in json.loads(out)["items"]}
    assert items["ml"]["allocated"]["gpu"] == 2 and items["ml.training"]["guarantee"] == {"gpu": 8}
    why = wait_for(lambda: (o := bigk("describe", "queue", "batch", server=s)[1]) and huge in o and o, 20,
                   "huge waiting in batch")
    assert "Waiting:     1 gang(s)" in why and "gang needs 1 driver + 15 executors" in why
    code, out, _ = bigk("describe", "queue", "root.ml.training", server=s)
    assert code == 0 and "Parent:      ml" in out and "Guarantee:   8 GPU" in out
    code, _, err = bigk("describe", "queue", "nope", server=s)
    assert code == 3 and "no queue 'nope' (queues: batch, ml, ml.training)" in err


def test_get_queue_lists_the_head_in_queue_order_and_says_how_many_wait(tmp_path: Path,
                                                                        serve: Callable[..., Running],  # noqa: F811
                                                                        bigk: CLI) -> None:  # noqa: F811
    """`GET /queue?limit=N` is the first N in queue order (priority, then age) with X-Bigk-Waiting the whole count;
    `bigk get queue` asks for its --limit and says on stderr how many wait beyond them."""
    specs = tmp_path / "specs"
    specs.mkdir()
    # huge and urgent never start while hold runs (15 + 2 > 16 A100s; hold's priority is above theirs, so it is
    # not preempted): their runs wait in the queue
    (specs / "hold.yaml").write_text(job_yaml("hold", instances=2, duration=5000, gpu=True, extra="priority: 90\n"))
    (specs / "huge.yaml").write_text(job_yaml("huge", instances=15, duration=5000, gpu=True, extra="priority: 10\n"))
    (specs / "urgent.yaml").write_text(job_yaml("urgent", instances=15, duration=5000, gpu=True,
                                                extra="priority: 50\n"))
    svc = serve(specs)
    s, t = svc.url, svc.token
    with svc.client() as c:
        hold = c.post("/api/v1/jobs/hold/run").json()["id"]
        wait_for(lambda: c.get(f"/api/v1/runs/{hold}").json()["state"] == "Running", 20, "hold running")
        low = [c.post("/api/v1/jobs/huge/run").json()["id"] for _ in range(3)]
        high = [c.post("/api/v1/jobs/urgent/run").json()["id"] for _ in range(2)]
        whole = c.get("/api/v1/queue")
        assert [q["run"] for q in whole.json()] == high + low  # priority first, then the oldest
        assert whole.headers["X-Bigk-Waiting"] == "5"
        head = c.get("/api/v1/queue", params={"limit": 3})
        assert head.headers["X-Bigk-Waiting"] == "5"
        assert [q["run"] for q in head.json()] == high + low[:1]
        assert c.get("/api/v1/queue", params={"limit": 0}).status_code == 422
    code, out, err = bigk("get", "queue", "--limit", "2", server=s, token=t)
    assert code == 0, err
    assert [line.split()[0] for line in out.splitlines()[1:]] == high
    assert "(the first 2 of 5 waiting runs; --limit N shows more)" in err
    code, out, err = bigk("get", "queue", "-l", "job=huge", "--limit", "2", server=s, token=t)
    assert code == 0 and [line.split()[0] for line in out.splitlines()[1:]] == low[:2]
    assert "(the first 2 of 3 waiting runs" in err
    code, out, err = bigk("get", "queue", server=s, token=t)  # the default limit (50) holds them all: no note
    assert code == 0 and len(out.splitlines()) == 6 and "waiting runs" not in err
