"""The queue tree over several clusters (`bigk serve --emulate 2`: onprem and cloud-h100) (#18).

Runs of one queue on two clusters: `GET /api/v1/queues` sums them and breaks them down per cluster
(allocated, borrowed against the guarantee each cluster's scheduler applies, share, waiting gangs,
runs, and the clusters file's per-cluster limit), `?cluster=NAME` gives one cluster's figures, `GET
/api/v1/queues/NAME` lists the waiting gangs with their cluster; `bigk get queues` shows the sums and
`--cluster NAME` one cluster, `bigk describe queue` a block per cluster; the status page's queue tree
has a BY CLUSTER column.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.conftest import Running, job_yaml, wait_for
from tests.service.test_multicluster import _cli, _run, _specs, _state
from tests.service.test_multicluster import serve_clusters as serve_clusters  # noqa: F401 (fixture)

QUEUES = """\
apiVersion: bigk.io/v1
kind: Queue
metadata: {name: ml}
spec:
  guarantee: {gpu: 2}
---
apiVersion: bigk.io/v1
kind: Queue
metadata: {name: adhoc}
spec: {}
"""


def _gpu_job(name: str, gpus: int, cluster: str) -> str:
    return job_yaml(name, instances=gpus, duration=4000, gpu=True, extra=f"queue: ml\nclusters: [{cluster}]\n")


def _queues(c: httpx.Client, **params: str) -> dict[str, dict[str, Any]]:
    response = c.get("/api/v1/queues", params=params)
    assert response.status_code == 200, response.text
    return {q["name"]: q for q in response.json()}


def _share(allocated: dict[str, Any], capacity: dict[str, Any]) -> float:
    return max(allocated[r] / capacity[r] for r in ("cpu", "memory", "gpu") if capacity.get(r))


def test_a_queue_on_two_clusters_is_summed_and_shown_per_cluster(
        tmp_path: Path, serve_clusters: Callable[..., Running],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    specs = _specs(tmp_path, {
        "queues": QUEUES,
        "here": _gpu_job("here", 2, "onprem"),
        "there": _gpu_job("there", 3, "cloud-h100"),
        "later": _gpu_job("later", 6, "cloud-h100"),  # 3 + 6 > cloud-h100's 8 H100s: waits there
    })
    svc = serve_clusters(specs, 2, dispatch_hold_s=0.0)
    monkeypatch.setenv("BIGK_TOKEN", svc.token)
    with svc.client() as c:
        ids = {job: _run(c, job) for job in ("here", "there")}
        for job, run_id in ids.items():
            wait_for(lambda run_id=run_id: _state(c, run_id)["state"] == "Running", 30, f"{job} running")
        ids["later"] = _run(c, "later")
        wait_for(lambda: _queues(c)["ml"]["clusters"]["cloud-h100"]["waiting_gangs"] == 1, 30,
                 "later waiting on cloud-h100")
        ml = wait_for(lambda: (q := _queues(c)["ml"])["allocated"]["gpu"] == 5 and q, 20, "both runs' GPUs")

        # Summed over both clusters, and per cluster.
        assert list(ml["clusters"]) == ["onprem", "cloud-h100"]
        here, there = ml["clusters"]["onprem"], ml["clusters"]["cloud-h100"]
        assert here["allocated"]["gpu"] == 2 and there["allocated"]["gpu"] == 3
        assert ml["allocated"]["cpu"] == here["allocated"]["cpu"] + there["allocated"]["cpu"]
        assert ml["allocated"]["gpuByProduct"] == {"NVIDIA-A100-SXM4-80GB": 2.0, "NVIDIA-H100-80GB-HBM3": 3.0}
        assert (ml["running_runs"], ml["pending_runs"]) == (2, 1)
        assert (here["running_runs"], here["pending_runs"], here["waiting_gangs"]) == (1, 0, 0)
        assert (there["running_runs"], there["pending_runs"], there["waiting_gangs"]) == (1, 1, 1)
        # The guarantee (2 GPUs) holds in each cluster: onprem's 2 are within it, cloud-h100 lends 1 beyond it.
        assert "gpu" not in here["borrowed"] and there["borrowed"]["gpu"] == 1 and ml["borrowed"]["gpu"] == 1
        assert ml["borrowed"]["cpu"] == here["borrowed"]["cpu"] + there["borrowed"]["cpu"]  # no CPU guarantee
        # The share: the queue's usage over both clusters' capacity together (one cluster: its scheduler's own).
        assert ml["cluster"]["gpu"] == 32 and here["capacity"]["gpu"] == 24 and there["capacity"]["gpu"] == 8
        assert ml["dominant_share"] == pytest.approx(_share(ml["allocated"], ml["cluster"]), abs=1e-3)
        assert ml["dominant_share"] == pytest.approx(5 / 32, abs=1e-3)
        assert there["dominant_share"] == pytest.approx(3 / 8, abs=1e-3)
        assert here["dominant_share"] == pytest.approx(2 / 24, abs=1e-3)
        # The clusters file's per-cluster limit (cloud-h100: adhoc never rents H100s), where there is one.
        adhoc = _queues(c)["adhoc"]
        assert adhoc["clusters"]["cloud-h100"]["max"] == {"gpu": 0.0} and adhoc["clusters"]["onprem"]["max"] == {}

        # One cluster's figures.
        only = _queues(c, cluster="cloud-h100")["ml"]
        assert list(only["clusters"]) == ["cloud-h100"] and only["allocated"]["gpu"] == 3
        assert (only["running_runs"], only["pending_runs"]) == (1, 1) and only["cluster"]["gpu"] == 8
        assert only["dominant_share"] == pytest.approx(3 / 8, abs=1e-3)
        missing = c.get("/api/v1/queues", params={"cluster": "nowhere"})
        assert missing.status_code == 404 and "no cluster 'nowhere'" in missing.text
        assert c.get("/api/v1/queues/ml", params={"cluster": "nowhere"}).status_code == 404

        waiting = wait_for(lambda: (w := c.get("/api/v1/queues/ml").json()["waiting"]) and w[0]["run"] and w, 10,
                           "later's run known by its gang")  # the run learns its Spark app id from its pods
        assert [(w["cluster"], w["run"]) for w in waiting] == [("cloud-h100", ids["later"])]
        assert c.get("/api/v1/queues/ml", params={"cluster": "onprem"}).json()["waiting"] == []

        page = c.get("/status/queues")
        assert page.status_code == 200 and "BY CLUSTER" in page.text
        assert '<span data-cluster="cloud-h100">cloud-h100: ' in page.text and "1 waiting" in page.text
        assert "max here 0 GPU" in page.text  # adhoc on cloud-h100
        assert "cluster cloud-h100: " in c.get("/status/queues", params={"cluster": "cloud-h100"}).text
        assert c.get("/status/queues", params={"cluster": "nowhere"}).status_code == 404

    # The CLI: sums, one cluster, and a block per cluster.
    code, text = _cli("get", "queues", "--server", svc.url)
    assert code == 0, text
    rows = {line.split()[0]: line for line in text.splitlines()[1:]}
    assert "5 GPU" in rows["ml"] and "1 GPU" in rows["ml"], text  # allocated and borrowed, summed
    cells = rows["ml"].split()
    share = next(i for i, cell in enumerate(cells) if cell.endswith("%"))
    assert cells[share + 1:share + 3] == ["2", "1"], text  # RUNNING, PENDING (NEXT ETA may be "in 66m" or "-")
    code, text = _cli("get", "queues", "--cluster", "cloud-h100", "--server", svc.url)
    assert code == 0 and "3 GPU" in text and "5 GPU" not in text, text
    code, text = _cli("get", "queues", "--cluster", "nowhere", "--server", svc.url)
    assert code == 3 and "no cluster 'nowhere'" in text, text
    code, text = _cli("get", "queues", "-o", "wide", "--server", svc.url)
    assert code == 0 and "BY CLUSTER" in text and "onprem: " in text and "cloud-h100: " in text, text
    code, text = _cli("get", "queues", "-o", "json", "--cluster", "onprem", "--server", svc.url)
    items = {q["name"]: q for q in json.loads(text)["items"]}
    assert items["ml"]["allocated"]["gpu"] == 2 and list(items["ml"]["clusters"]) == ["onprem"]

    code, text = _cli("describe", "queue", "ml", "--server", svc.url)
    assert code == 0, text
    assert "of the 2 clusters' capacity together" in text and "Clusters:" in text, text
    onprem_block, cloud_block = text.split("  onprem:")[1].split("  cloud-h100:")
    assert "Allocated:" in onprem_block and "2 GPU" in onprem_block and "Waiting:    0 gang(s)" in onprem_block
    assert "3 GPU" in cloud_block and "Waiting:    1 gang(s), in the order cloud-h100's scheduler" in cloud_block
    assert f"1. run {ids['later']} (later)" in cloud_block, text
    code, text = _cli("describe", "queue", "ml", "--cluster", "onprem", "--server", svc.url)
    assert code == 0 and "of cluster onprem" in text and "cloud-h100" not in text, text
