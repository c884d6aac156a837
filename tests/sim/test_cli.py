"""`bigk simulate` end to end on small CSVs: report, plot, progress off, friendly errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from bigk.cli.main import app


def test_inflation_report_and_plot(small_trace: tuple[Path, Path], tmp_path: Path) -> None:
    nodes, pods = small_trace
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    result = CliRunner().invoke(app, ["simulate", "--nodes", str(nodes), "--pods", str(pods), "--protocol",
                                      "inflation", "--policy", "fgd,bestfit,bigk", "--seeds", "1-2", "--json",
                                      str(out), "--plot", str(png), "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report["summary"]) == {"fgd", "bestfit", "bigk"}
    fgd = report["summary"]["fgd"]
    assert len(fgd["per_seed"]) == 2 and fgd["published"] == 4.77
    values = sorted(s["unallocated_gpu_pct_at_100"] for s in fgd["per_seed"])
    assert fgd["unallocated_gpu_pct_at_100"] == round(sum(values) / 2, 3)  # median of two seeds
    assert len(report["curves"]["arrived_workload_pct"]) == 131
    assert len(report["curves"]["bigk"]["unallocated_gpu_pct"]) == 131
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "bigk" in result.output and "median" in result.output


def test_timeline_report(small_trace: tuple[Path, Path], tmp_path: Path) -> None:
    nodes, pods = small_trace
    out = tmp_path / "t.json"
    result = CliRunner().invoke(app, ["simulate", "--nodes", str(nodes), "--pods", str(pods), "--protocol",
                                      "timeline", "--policy", "bigk", "--speedup", "20", "--json", str(out),
                                      "--plot", str(tmp_path / "t.png"), "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    summary = report["summary"]["bigk"]
    assert summary["per_seed"][0]["pods"] == 300 and summary["per_seed"][0]["seed"] == 42
    assert {"never_ran", "wait_mean_s", "wait_p95_s", "gpu_alloc_mean_pct"} <= set(summary)
    assert len(report["series"]["bigk"]["gpu_alloc_pct"]) > 10


def test_errors_are_one_line(tmp_path: Path, small_trace: tuple[Path, Path]) -> None:
    nodes, _ = small_trace
    bad = tmp_path / "bad.csv"
    bad.write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli\na,1,1,1,500\nb,1,1,x,0\n")
    for args, expected in ((["--pods", str(bad)], "bad.csv:3: column num_gpu"),
                           (["--policy", "nope"], "--policy: unknown policy nope"),
                           (["--seeds", "9-1"], "--seeds: seed range '9-1' runs backwards")):
        proc = subprocess.run([sys.executable, "-m", "bigk.cli.main", "simulate", "--nodes", str(nodes), "--quiet",
                               *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1
        assert proc.stderr.strip().startswith("error: ") and expected in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_progress_bar_mode_runs(small_trace: tuple[Path, Path]) -> None:
    nodes, pods = small_trace
    result = CliRunner().invoke(app, ["simulate", "--nodes", str(nodes), "--pods", str(pods), "--policy", "bestfit",
                                      "--seeds", "3"])
    assert result.exit_code == 0, result.output
    assert "bestfit" in result.output


def test_variant_option_resamples_the_pods(small_trace: tuple[Path, Path], tmp_path: Path) -> None:
    nodes, pods = small_trace
    out = tmp_path / "v.json"
    result = CliRunner().invoke(app, ["simulate", "--nodes", str(nodes), "--pods", str(pods), "--policy", "fgd",
                                      "--seeds", "1", "--variant", "multi-gpu=0.5", "--json", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["meta"]["variant"] == "multi-gpu=0.5"
    bad = CliRunner().invoke(app, ["simulate", "--nodes", str(nodes), "--pods", str(pods), "--variant", "x=1"])
    assert bad.exit_code != 0 and "--variant" in str(bad.exception)
