"""`bigk get queues` and `bigk describe queue` show per-model GPU quotas and where a queue's GPUs are."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.cli.test_ops_cli import CLI, bigk  # noqa: F401  (fixture)
from tests.service.conftest import Running, cluster, serve, wait_for  # noqa: F401  (fixtures)
from tests.service.test_queue_models_live import QUEUES, _a100_job


def test_queue_table_and_describe_show_gpu_models(tmp_path: Path, serve: Callable[..., Running],  # noqa: F811
                                                   bigk: CLI) -> None:  # noqa: F811
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "queues.yaml").write_text(QUEUES)
    (specs / "first.yaml").write_text(_a100_job("first", 3, 5000))
    svc = serve(specs)
    s, t = svc.url, svc.token
    assert bigk("run", "first", server=s, token=t)[0] == 0
    out = wait_for(lambda: (o := bigk("get", "queues", server=s)[1]) and "(A100: 3)" in o and o, 30,
                   "first's A100s in the queue table")
    row = out.splitlines()[1]
    assert row.startswith("ml ") and "12 GPU (A100: 4)" in row
    code, out, _ = bigk("describe", "queue", "ml", server=s)
    assert code == 0 and "Max:         12 GPU (A100: 4)" in out
    assert "GPU models:  3 on NVIDIA-A100-SXM4-80GB" in out
    code, out, _ = bigk("get", "queues", "-o", "json", server=s)
    ml = json.loads(out)["items"][0]
    assert ml["max"]["gpuByModel"] == {"A100": 4} and ml["allocated"]["gpuByModel"] == {"A100": 3}
