"""A shortened soak through `bigk serve` (bench/soak.py): state stays bounded, memory and cycles flat."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_soak_keeps_state_bounded(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import soak

    out = tmp_path / "soak.json"
    assert soak.main(["--runs", "600", "--concurrency", "16", "--sample-s", "5", "--history-per-job", "20",
                      "--events-max", "500", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    last = report["samples"][-1]
    assert report["submit_files_max"] <= 2 * 16  # only runs being submitted have template files
    # at most the caps plus what finishes between two sweeps (every 5 s, at up to ~10 runs/s, ~5 events per run)
    assert last["history_rows"] <= 8 * 20 + 60 and last["event_rows"] <= 500 + 300
    assert report["rss_end_mib"] - report["rss_after_warmup_mib"] < 25
    assert report["cycle_ms_end"] < 5 * max(report["cycle_ms_after_warmup"], 1.0)
