"""The placement benchmark runs and writes the documented JSON."""

import json
import subprocess
import sys
from pathlib import Path


def test_benchmark_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    subprocess.run([sys.executable, "bench/placement.py", "--nodes", "20", "--pods", "300", "--policy",
                    "spread,binpack", "--json", str(out)], check=True, capture_output=True, timeout=120)
    rows = json.loads(out.read_text())["results"]
    assert [r["policy"] for r in rows] == ["spread", "binpack"]
    for r in rows:
        assert r["nodes"] == 22 and r["pods"] == 300
        assert r["pods_per_second"] > 0 and r["peak_rss_mb"] > 0 and r["bound"] > 0
