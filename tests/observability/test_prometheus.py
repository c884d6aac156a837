"""Dashboards and alert rules against a real Prometheus scraping bigk's /metrics.

Every panel query and every alert expression must parse and return data for a
cluster in which the thing it watches is happening; the alert rules also pass
`promtool check rules` and their unit tests (`promtool test rules`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bigk import metrics
from bigk.cli.main import app
from bigk.gpu.dcgm import DcgmReader
from tests.observability.conftest import Prom

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
ALERTS = ROOT / "dashboards" / "alerts.yaml"
GRAFANA_VARS = {"$__rate_interval": "1m", "$__range": "1h", "$cluster": ".*", "$pool": ".*", "$queue": ".*",
                "$job_name": ".*"}


def _panel_exprs() -> list[tuple[str, str]]:
    out = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                out.append((f"{path.stem}: {panel['title']} [{target['refId']}]", target["expr"]))
    return out


def _alert_exprs() -> list[tuple[str, str]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [(rule["alert"], rule["expr"]) for g in groups for rule in g["rules"]]


def _grafana(expr: str) -> str:
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    assert "$" not in expr, f"unsubstituted Grafana variable in {expr!r}"
    return expr


def _exported_names() -> set[str]:
    names = set()
    for registry in (metrics.REGISTRY, metrics.AGENT_REGISTRY):
        for family in registry.collect():
            names.add(family.name)
            names.update(s.name for s in family.samples)
            if family.type == "counter":
                names.add(family.name + "_total")
            if family.type == "histogram":
                names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
    return names


def test_dashboards_are_generated_from_build_py_and_up_to_date() -> None:
    assert {p.name for p in DASHBOARDS} == {"bigk-gpus.json", "bigk-queues.json", "bigk-scheduler.json",
                                            "bigk-runs.json"}
    result = subprocess.run([sys.executable, str(ROOT / "dashboards" / "build.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_dashboards_use_only_metric_names_bigk_exports() -> None:
    exported = _exported_names()
    exprs = _panel_exprs() + _alert_exprs()
    for path in DASHBOARDS:
        for var in json.loads(path.read_text())["templating"]["list"]:
            if var["type"] == "query":
                exprs.append((f"{path.stem}: ${var['name']}", var["definition"]))
    for where, expr in exprs:
        used = set(re.findall(r"\bbigk_[a-z0-9_]+", expr))
        assert used, f"{where} reads no bigk metric"
        assert used <= exported, f"{where} uses unknown metrics {sorted(used - exported)}"


def test_panel_layout_is_valid_grafana() -> None:
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, f"{path.name}: {panel['title']} overflows the 24-column grid"
            assert panel["targets"] and all(t["expr"] for t in panel["targets"])
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_promtool_checks_and_unit_tests_the_alert_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install -y prometheus)")
    check = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run([promtool, "test", "rules", str(ALERTS.with_name("alerts_test.yaml"))],
                          capture_output=True, text=True)
    assert unit.returncode == 0, unit.stdout + unit.stderr


@pytest.mark.parametrize(("where", "expr"), _panel_exprs(), ids=[w for w, _ in _panel_exprs()])
def test_every_panel_query_returns_data(prom: Prom, where: str, expr: str) -> None:
    result = prom.query(_grafana(expr))
    assert result, f"{where}: no data for {expr!r}"


@pytest.mark.parametrize(("alert", "expr"), _alert_exprs(), ids=[a for a, _ in _alert_exprs()])
def test_every_alert_fires_on_a_cluster_with_that_problem(prom: Prom, alert: str, expr: str) -> None:
    assert prom.query(expr), f"{alert}: expression returned nothing: {expr!r}"


def test_template_variables_find_values(prom: Prom) -> None:
    for path in DASHBOARDS:
        for var in json.loads(path.read_text())["templating"]["list"]:
            if var["type"] != "query":
                continue
            metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", var["definition"]).groups()  # type: ignore[union-attr]
            values = {s["metric"].get(label) for s in prom.query(metric)}
            assert values - {None}, f"{path.name}: ${var['name']} would be empty"


def test_alerting_rules_are_loaded_and_evaluated_by_prometheus(prom: Prom) -> None:
    """Prometheus itself loaded alerts.yaml and evaluates it without errors."""
    import httpx

    rules = httpx.get(f"{prom.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    loaded = {r["name"]: r for g in rules for r in g["rules"]}
    assert set(loaded) == {a for a, _ in _alert_exprs()}
    assert all(r.get("health") in ("ok", "unknown") for r in loaded.values()), \
        {n: r.get("lastError") for n, r in loaded.items() if r.get("health") == "err"}


def test_dcgm_reader_against_real_prometheus(prom: Prom) -> None:
    reader = DcgmReader(prom.url)
    try:
        records = reader.read_node("gpu-node-1")
        everything = reader.read_all()
    finally:
        reader.close()
    assert set(everything) == {"gpu-node-1"}
    first, second = records
    assert (first.index, first.uuid, first.model) == (0, "GPU-h1-0", "NVIDIA H100 80GB HBM3")
    assert (first.memory_total_mib, first.memory_free_mib, first.utilization_pct) == (81559, 80000, 0.0)
    assert first.healthy and first.observed_at > 0
    assert not second.healthy and second.health_reasons == ("xid_48",)


def test_agent_in_dcgm_mode_prints_readings_from_prometheus(prom: Prom) -> None:
    ok = CliRunner().invoke(app, ["agent", "--node", "gpu-node-1", "--once", "--dry-run",
                                  "--dcgm-prometheus-url", prom.url])
    assert ok.exit_code == 0, ok.output
    printed = json.loads(ok.stdout)  # log lines go to stderr
    assert [(g["index"], g["healthy"]) for g in printed] == [(0, True), (1, False)]
    missing = CliRunner().invoke(app, ["agent", "--node", "no-such-node", "--once", "--dry-run",
                                       "--dcgm-prometheus-url", prom.url])
    assert missing.exit_code != 0
    assert "no DCGM series with Hostname='no-such-node'" in str(missing.exception)
