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
    assert len(fgd["per_seed"]) == 2 and "published" not in fgd  # the paper's figures are for its trace only
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
    for args, expected, code in ((["--pods", str(bad)], "bad.csv:3: column num_gpu", 1),
                                 (["--policy", "nope"], "--policy: unknown policy nope", 2),  # usage errors exit 2
                                 (["--seeds", "9-1"], "--seeds: seed range '9-1' runs backwards", 2),
                                 (["--variant", "gpuspec150"], "--variant: variant 'gpuspec150'", 2)):
        proc = subprocess.run([sys.executable, "-m", "bigk.cli.main", "simulate", "--nodes", str(nodes), "--quiet",
                               *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == code
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


def test_published_figures_only_for_the_papers_trace(tmp_path: Path) -> None:
    from tests.sim.conftest import write_nodes, write_pods

    nodes = write_nodes(tmp_path / "openb_node_list_all_node.csv")
    pods = write_pods(tmp_path / "openb_pod_list_default.csv")
    args = ["simulate", "--nodes", str(nodes), "--pods", str(pods), "--policy", "fgd", "--seeds", "1", "--quiet"]
    out = tmp_path / "d.json"
    assert CliRunner().invoke(app, [*args, "--json", str(out)]).exit_code == 0
    assert json.loads(out.read_text())["summary"]["fgd"]["published"] == 4.77
    out = tmp_path / "v.json"
    assert CliRunner().invoke(app, [*args, "--variant", "default,cpu100", "--json", str(out)]).exit_code == 0
    rows = {r["trace"]: r for r in json.loads(out.read_text())["table"]}
    assert rows["default"]["fgd_published"] == 4.77 and "fgd_published" not in rows["cpu100"]
    assert "published" not in json.loads(out.read_text())["traces"]["cpu100"]["summary"]["fgd"]


def test_variants_table_with_offline_best(small_trace: tuple[Path, Path], tmp_path: Path) -> None:
    nodes, pods = small_trace
    out, png = tmp_path / "s.json", tmp_path / "s.png"
    result = CliRunner().invoke(app, ["simulate", "--nodes", str(nodes), "--pods", str(pods), "--policy", "fgd,bigk",
                                      "--seeds", "1-2", "--variant", "default,gpuspec33,multigpu50", "--offline",
                                      "--offline-time", "5", "--json", str(out), "--plot", str(png), "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert [r["trace"] for r in report["table"]] == ["default", "gpuspec33", "multigpu50"]
    for row in report["table"]:
        assert row["bound"] <= row["offline"] <= max(row["fgd_first_seed"], row["bigk_first_seed"]) + 1.0
        assert row["source"] in ("base", "generated (variant seed 7)")
    assert report["traces"]["gpuspec33"]["offline"]["seed"] == 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "offline" in result.output
