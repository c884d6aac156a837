"""The placement benchmark's backlog scenario runs and reports per-cycle latency, filter on and off."""

import json
import subprocess
import sys
from pathlib import Path


def test_backlog_scenario_writes_latency_and_same_binds_with_the_filter_off(tmp_path: Path) -> None:
    out = tmp_path / "backlog.json"
    subprocess.run([sys.executable, "bench/placement.py", "--nodes", "10", "--backlog", "40", "--cycles", "3",
                    "--churn", "10", "--batch", "200", "--policy", "binpack,binpack+tryall", "--json", str(out)],
                   check=True, capture_output=True, timeout=300)
    rows = json.loads(out.read_text())["results"]
    assert [r["policy"] for r in rows] == ["binpack", "binpack+tryall"]
    for r in rows:
        assert r["scenario"] == "backlog" and r["backlog"] == 40 and r["fill"]["waiting"] >= 40
        assert r["cycles"] == 3 and r["bound"] > 0
        for probe in (r["cycle"], r["idle_cycle"], r["one_node_freed_cycle"]):
            assert 0 < probe["p50_ms"] <= probe["p99_ms"] <= probe["max_ms"]
    assert rows[0]["bound"] == rows[1]["bound"] and rows[0]["waiting"] == rows[1]["waiting"]
