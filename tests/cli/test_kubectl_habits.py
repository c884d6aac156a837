"""kubectl habits against a running `bigk serve`: kind names, KIND/NAME, -n/-A, -l, -o, --watch, version, completion."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bigk.cli.main import app
from tests.cli_main import run_main
from tests.service.conftest import Running, cluster, job_yaml, serve, wait_for  # noqa: F401  (fixtures)

CLI = Callable[..., tuple[int, str, str]]
pytestmark = pytest.mark.parametrize("cluster", ["emulated"], indirect=True)


@pytest.fixture()
def bigk(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> CLI:
    monkeypatch.setenv("BIGK_STATE_DIR", str(tmp_path / "cli-state"))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))

    def run(*args: str, svc: Running) -> tuple[int, str, str]:
        monkeypatch.setenv("BIGK_SERVER", svc.url)
        monkeypatch.setenv("BIGK_TOKEN", svc.token)
        return run_main(args, monkeypatch, capsys)

    return run


@pytest.fixture()
def svc(tmp_path: Path, serve: Callable[..., Running]) -> Running:  # noqa: F811
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "etl.yaml").write_text(job_yaml("etl", instances=1, duration=40))
    (specs / "team.yaml").write_text(job_yaml("team", instances=1, duration=5000).replace(
        "metadata:\n  name: team\n", "metadata:\n  name: team\n  namespace: team-a\n"))
    policy = tmp_path / "policy.yaml"
    policy.write_text("namespaces:\n  default: restricted\n  team-a: restricted\n")
    return serve(specs, spec_policy=policy)


def test_get_the_kubectl_way(svc: Running, bigk: CLI) -> None:
    code, out, _ = bigk("run", "etl", "--wait", "--timeout", "30", svc=svc)
    assert code == 0, out
    etl = out.splitlines()[0].split()[1].rstrip(":")
    team = bigk("run", "team", svc=svc)[1].split()[1]
    for spelling in (["run"], ["runs"], ["r"]):
        code, out, _ = bigk("get", *spelling, "-o", "name", svc=svc)
        assert (code, sorted(out.split())) == (0, sorted([f"run/{etl}", f"run/{team}"]))
    assert bigk("get", f"run/{etl}", "-o", "jsonpath={.state}", svc=svc)[1].strip() == "Succeeded"
    assert bigk("get", "run", etl, "-o", "jsonpath={.state}", svc=svc)[1].strip() == "Succeeded"
    assert bigk("describe", f"run/{etl}", svc=svc)[1].startswith(f"Run:        {etl}")
    assert bigk("get", "run/deadbeef", svc=svc)[0] == 3

    listed = json.loads(bigk("get", "runs", "-o", "json", svc=svc)[1])
    assert listed["kind"] == "List" and {i["kind"] for i in listed["items"]} == {"Run"}
    assert all(i["created_at"].endswith("Z") and "T" in i["created_at"] for i in listed["items"])
    assert yaml.safe_load(bigk("get", "jobs", "-o", "yaml", svc=svc)[1])["kind"] == "List"

    assert bigk("get", "runs", "-n", "team-a", "-o", "name", svc=svc)[1].split() == [f"run/{team}"]
    assert len(bigk("get", "runs", "-A", "-o", "name", svc=svc)[1].split()) == 2
    assert bigk("get", "runs", "-l", "job=etl", "-o", "name", svc=svc)[1].split() == [f"run/{etl}"]
    assert bigk("get", "runs", "-l", "state!=Succeeded", "-o", "name", svc=svc)[1].split() == [f"run/{team}"]
    out = bigk("get", "runs", "--sort-by", ".created_at", "--no-headers",
               "-o", "custom-columns=RUN:.id,JOB:.job", svc=svc)[1]
    assert [line.split() for line in out.splitlines()] == [[etl, "etl"], [team, "team"]]
    table = bigk("get", "runs", "--sort-by", ".job", svc=svc)[1].splitlines()
    assert table[0].split()[0] == "RUN" and table[1].split()[1] == "etl" and table[2].split()[1] == "team"
    assert bigk("get", "no", "--no-headers", "-l", "pool=cpu", svc=svc)[1].splitlines()[0].startswith("cpu-0")
    out = bigk("get", "gpu/gpu-a100-0/3", "-o", "jsonpath={.node} {.index}", svc=svc)[1]
    assert out.strip() == "gpu-a100-0 3"

    for bad in (["get", "pods"], ["get", "runs", "-o", "wide2"], ["get", "runs", "-n", "a", "-A"],
                ["get", "runs", "-l", "a b"], ["get", "problems", "--watch"], ["describe", "node", "x"]):
        assert bigk(*bad, svc=svc)[0] == 2, bad


def test_get_watch_prints_changes_as_they_happen(svc: Running, bigk: CLI) -> None:
    import threading

    store = svc.service.store
    assert store is not None
    started: dict[str, str] = {}

    def start_a_run_once_watching() -> None:
        wait_for(lambda: svc.service.loop is not None, 5, "scheduler")
        import time

        time.sleep(2.0)  # the watch has listed by now
        with svc.client() as api:
            started["id"] = api.post("/api/v1/jobs/etl/run").json()["id"]

    thread = threading.Thread(target=start_a_run_once_watching)
    thread.start()
    code, out, err = bigk("get", "runs", "--watch", "--watch-timeout", "9", "-l", "job=etl", svc=svc)
    thread.join()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "No runs."  # the first listing: nothing of etl yet
    rows = [line.split() for line in lines[1:]]
    run_id = started["id"]
    states = [r[2] for r in rows if r[0] == run_id]
    assert states[0] != "Succeeded" and states[-1] == "Succeeded", out  # seen new, then seen end
    assert len(states) >= 2 and not any(r[0] == "RUN" for r in rows)  # one row per change, no more headers

    code, out, _ = bigk("get", "runs", "--watch", "--watch-timeout", "3", "-o", "json", svc=svc)
    assert code == 0 and json.loads(out)["kind"] == "List"
    code, out, _ = bigk("get", "gpus", "-w", "--watch-timeout", "2", "-o", "name", svc=svc)
    assert code == 0 and len(set(out.split())) == 24 and "gpu/gpu-a100-0/0" in out.split()
    code, out, _ = bigk("get", "queues", "-w", "--watch-timeout", "2", "-o", "name", svc=svc)
    assert code == 0 and "queue/default" in out.split()  # the queue the runs above used


def test_version_completion_help_and_usage_exit_codes(svc: Running, bigk: CLI) -> None:
    code, out, _ = bigk("version", svc=svc)
    assert code == 0 and out.startswith("Client Version: ") and "Server Version: " in out and svc.url in out
    data = json.loads(bigk("version", "-o", "json", svc=svc)[1])
    assert data["clientVersion"]["version"] == data["serverVersion"]["version"]
    for shell in ("bash", "zsh", "fish"):
        code, out, _ = bigk("completion", shell, svc=svc)
        assert code == 0 and "_BIGK_COMPLETE" in out, shell
    assert bigk("completion", "tcsh", svc=svc)[0] == 2
    runner = CliRunner()
    help_text = runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    assert "Exit codes: 0 ok, 1 error" in help_text and "2 usage, 3 not found, 4 unauthorized, 5 server unreachable" \
        in help_text
    run_help = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output
    assert "--wait" in run_help and "<bool>" not in run_help and "<float>" in run_help
    get_help = runner.invoke(app, ["get", "--help"], env={"COLUMNS": "200"}).output
    for flag in ("--namespace", "-A", "--selector", "--sort-by", "--no-headers", "--watch", "jsonpath="):
        assert flag in get_help, flag
    assert bigk("render", "-o", "wide", "etl", svc=svc)[0] == 2
    assert bigk("simulate", "--policy", "nope", svc=svc)[0] == 2
