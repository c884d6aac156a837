"""The operator CLI against a running `bigk serve`: what on-call sees, and the exit codes scripts rely on."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli_main import run_main
from tests.realk8s import ClusterUnderTest
from tests.service.conftest import Running, cluster, job_yaml, serve, wait_for  # noqa: F401  (fixtures)
from tests.service.rbac_users import READ_ALL, Users

CLI = Callable[..., tuple[int, str, str]]


@pytest.fixture()
def bigk(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
         cluster: ClusterUnderTest) -> Iterator[CLI]:  # noqa: F811
    monkeypatch.setenv("BIGK_STATE_DIR", str(tmp_path / "cli-state"))  # no token file, no server file here
    monkeypatch.delenv("BIGK_TOKEN", raising=False)
    monkeypatch.delenv("BIGK_SERVER", raising=False)
    people = Users(cluster)
    # Token-less reads are for a local cluster only: on the real one the operator reads with their kubeconfig.
    viewer = people.make("cli-viewer", READ_ALL).kubeconfig(tmp_path / "viewer") if cluster.kind == "real" else None

    def run(*args: str, server: str | None = None, token: str | None = None,
            anonymous: bool = False) -> tuple[int, str, str]:
        monkeypatch.setenv("KUBECONFIG", str(viewer if viewer and not anonymous else tmp_path / "no-kubeconfig"))
        if server:
            monkeypatch.setenv("BIGK_SERVER", server)
        if token:
            monkeypatch.setenv("BIGK_TOKEN", token)
        return run_main(args, monkeypatch, capsys)

    yield run
    people.cleanup()


@pytest.fixture()
def svc(tmp_path: Path, serve: Callable[..., Running]) -> Running:  # noqa: F811
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "etl.yaml").write_text(job_yaml("etl", cron="0 2 * * *", instances=2, duration=30))
    (specs / "long.yaml").write_text(job_yaml("long", instances=1, duration=5000))
    (specs / "gpu.yaml").write_text(job_yaml("gpu", instances=2, duration=5000, gpu=True,
                                             extra="pools: [gpu-t4]\n"))
    return serve(specs)


def test_run_wait_then_every_view_shows_it(svc: Running, bigk: CLI) -> None:
    s, t = svc.url, svc.token
    code, out, err = bigk("run", "etl", "--wait", "--timeout", "30", server=s, token=t)
    assert code == 0, err
    run_id = out.splitlines()[0].split()[1].rstrip(":")
    assert f"run {run_id}: Running" in out and "-driver: Running on " in out and "-exec-1: Running on " in out
    assert out.strip().endswith(f"run {run_id} Succeeded")

    code, out, _ = bigk("get", "runs", "-o", "json", server=s, token=t)
    [run] = json.loads(out)["items"]
    assert code == 0 and run["id"] == run_id and run["state"] == "Succeeded"
    code, out, _ = bigk("get", "runs", server=s)
    assert out.split()[:9] == ["RUN", "JOB", "STATE", "ATTEMPT", "AGE", "WAIT", "ETA", "DURATION", "REASON"]
    assert run_id in out and "Succeeded" in out and "\x1b[" not in out  # no colour when not a terminal
    code, out, _ = bigk("get", "jobs", "-o", "wide", server=s)
    assert "FILE" in out and "etl.yaml:" in out and "0 2 * * *" in out
    assert yaml.safe_load(bigk("get", "jobs", "-o", "yaml", server=s)[1])["items"][0]["name"] == "etl"
    code, out, _ = bigk("describe", "run", run_id, server=s)
    assert code == 0 and "State:      Succeeded" in out and "Pods:" in out and "Submitted -> Admitted" in out
    code, out, _ = bigk("describe", "job", "etl", server=s)
    assert "Schedule:    0 2 * * * (UTC)" in out and run_id in out
    code, out, _ = bigk("explain", run_id, server=s)
    assert out.startswith(f"run {run_id} (etl) is Succeeded")
    code, out, _ = bigk("history", "etl", server=s)
    assert code == 0 and "1 finished runs, 1 succeeded (100.0%)" in out and "duration   p50" in out
    code, out, _ = bigk("get", "nodes", server=s)
    assert "cpu-0" in out and "gpu-a100-1" in out
    assert out.splitlines()[0].split()[:2] == ["NAME", "POOL"], out  # one cluster: no CLUSTER column (#18)
    gpus = json.loads(bigk("get", "gpus", "-o", "json", server=s)[1])["items"]
    assert len(gpus) == 24 and {g["cluster"] for g in gpus} == {"default"}
    assert bigk("get", "gpus", server=s)[1].splitlines()[0].split()[0] == "NODE"
    assert bigk("get", "queue", server=s)[1].strip() == "No queue."


def test_actions_cancel_suspend_cordon_drain(svc: Running, bigk: CLI) -> None:
    s, t = svc.url, svc.token
    code, out, _ = bigk("run", "long", server=s, token=t)
    run_id = out.split()[1]
    code, out, _ = bigk("suspend", "etl", server=s, token=t)
    assert (code, out.strip()) == (0, "job etl suspended")
    assert json.loads(bigk("get", "jobs", "-o", "json", server=s)[1])["items"][0]["suspended"] is True
    assert bigk("resume", "etl", server=s, token=t)[1].startswith("job etl resumed; next fire in ")
    wait_for(lambda: svc.service.store and svc.service.store.get_run(run_id).state == "Running", 10, "long running")
    code, out, _ = bigk("cancel", run_id, server=s, token=t)
    assert (code, out.strip()) == (0, f"run {run_id} Cancelled")
    code, _, err = bigk("cancel", run_id, server=s, token=t)
    assert (code, err.strip()) == (1, f"error: run {run_id} already Cancelled; nothing to cancel")

    assert bigk("cordon", "cpu-3", server=s, token=t)[1].strip() == "cordoned cpu-3"
    assert "SchedulingDisabled" in next(line for line in bigk("get", "nodes", server=s)[1].splitlines()
                                        if line.startswith("cpu-3"))
    assert bigk("uncordon", "cpu-3", server=s, token=t)[0] == 0

    _, out, _ = bigk("run", "gpu", server=s, token=t)
    gpu_run = out.split()[1]
    store = svc.service.store
    assert store is not None

    def executors() -> list[dict[str, Any]] | None:
        bound = [p for p in store.get_run(gpu_run).pods if p["role"] == "executor" and p["node"]]
        return bound if len(bound) == 2 else None

    bound = wait_for(executors, 10, "GPU executors bound")
    before = {n["name"]: n for n in json.loads(bigk("get", "nodes", "-o", "json", server=s)[1])["items"]}
    pool = before[bound[0]["node"]]["pool"]
    members = sorted(name for name, n in before.items() if n["pool"] == pool)
    hit = len([p for p in bound if before[p["node"]]["pool"] == pool])
    code, out, _ = bigk("drain", "--pool", pool, "--dry-run", server=s, token=t)
    assert code == 0 and out.startswith(f"would cordon {', '.join(members)} and evict {hit} bigk pod(s)\n"), out
    assert f"(executor of run {gpu_run})" in out and f"run {gpu_run} (gpu, Running) loses {hit} executor(s)" in out
    nodes = {n["name"]: n for n in json.loads(bigk("get", "nodes", "-o", "json", server=s)[1])["items"]}
    assert not any(nodes[m]["unschedulable"] for m in members)  # a dry run changes nothing
    code, _, err = bigk("drain", "--pool", pool, server=s, token=t)  # no terminal to ask on, no --yes
    assert code == 2 and "without confirmation: pass --yes" in err
    code, out, _ = bigk("drain", "--pool", pool, "--yes", "--timeout", "20", server=s, token=t)
    assert code == 0 and out.startswith(f"drained {', '.join(members)}: evicted {hit} pod(s)"), out
    assert out.strip().splitlines()[-1].startswith("evictions done in ")
    nodes = {n["name"]: n for n in json.loads(bigk("get", "nodes", "-o", "json", server=s)[1])["items"]}
    assert all(nodes[m]["unschedulable"] and nodes[m]["bigk_pods"] == 0 for m in members)
    code, out, _ = bigk("uncordon", "--pool", pool, server=s, token=t)
    assert (code, out.strip()) == (0, f"uncordoned {', '.join(members)}")
    nodes = {n["name"]: n for n in json.loads(bigk("get", "nodes", "-o", "json", server=s)[1])["items"]}
    assert not any(nodes[m]["unschedulable"] for m in members)
    assert bigk("uncordon", "--pool", "nope", server=s, token=t)[0] == 3


def test_exit_codes_and_one_line_errors(svc: Running, bigk: CLI) -> None:
    s = svc.url
    code, _, err = bigk("describe", "job", "nope", server=s)
    assert code == 3 and err.strip() == "error: no job 'nope' (list them with `bigk get jobs`)"
    assert bigk("explain", "deadbeef", server=s)[0] == 3
    code, _, err = bigk("run", "etl", server=s, anonymous=True)  # no token anywhere
    assert code == 4 and len(err.strip().splitlines()) == 1 and "BIGK_TOKEN" in err
    code, _, err = bigk("get", "runs", server="http://127.0.0.1:9")
    assert code == 5 and "cannot reach bigk at http://127.0.0.1:9" in err and "bigk serve" in err
    assert bigk("drain", server=s, token=svc.token)[0] == 2  # neither node nor pool
    assert bigk("get", "pods", server=s)[0] == 2
    code, _, err = bigk("suspend", "long", server=s, token=svc.token)  # no schedule: nothing to suspend
    assert (code, err.strip()) == (1, "error: job long has no schedule, so there is nothing to suspend "
                                      "(it runs only with `bigk run long`)")
    for odd in ("a/b", "a?b", "a b", "_x", ".."):  # names nothing can have: not found, never another endpoint
        code, _, err = bigk("history", odd, server=s)
        assert code == 3 and err.startswith(f"error: nothing is named {odd!r}"), (odd, err)
    assert bigk("describe", "run", "a/b", server=s)[0] == 3
    code, _, err = bigk("get", "runs", "--state", "bogus", server=s)
    assert code == 2 and "not a run state" in err and "Succeeded" in err
    assert bigk("get", "runs", "--state", "running", server=s)[1].strip() == "No runs."  # any case will do
    assert svc.service.store is not None and svc.service.store.list_runs() == []


def test_sick_gpus_and_nodes_stand_out(svc: Running, bigk: CLI, cluster: Any) -> None:  # noqa: F811
    cluster.emulator.gpus.set_health("gpu-a100-1", 3, False)
    cluster.emulator.gpus.refresh_soon()
    s = svc.url

    def sick_row() -> str | None:
        rows = bigk("get", "gpus", server=s)[1].splitlines()
        return next((r for r in rows if r.split()[:2] == ["gpu-a100-1", "3"] and "unhealthy" in r), None)

    row = wait_for(sick_row, 10, "the unhealthy GPU to show")
    assert row.split()[7] == "NO"
    nodes = bigk("get", "nodes", server=s)[1]
    assert "Ready,1GPUUnhealthy" in next(line for line in nodes.splitlines() if line.startswith("gpu-a100-1"))
    sick_rows = [r for r in bigk("get", "gpus", server=s)[1].splitlines()[1:] if "unhealthy" in r]
    assert len(sick_rows) == 1


def test_wrong_server_or_token_says_what_to_do(svc: Running, bigk: CLI, cluster: Any) -> None:  # noqa: F811
    code, _, err = bigk("get", "runs", server=cluster.url)  # a Kubernetes API, not bigk: its 404 is no "not found"
    assert code == 5 and len(err.strip().splitlines()) == 1
    assert "not a bigk server" in err and "{'kind'" not in err
    code, _, err = bigk("get", "runs", "--server", "127.0.0.1:8080")
    assert code == 2 and "is not a URL" in err and "http://" in err
    code, _, err = bigk("suspend", "etl", server=svc.url, anonymous=True)
    assert code == 4 and "none was found" in err and "BIGK_STATE_DIR" in err
    assert bigk("describe", "run", "deadbeef", server=svc.url)[0] == 3  # a real "not found" stays 3
    code, _, err = bigk("suspend", "etl", server=svc.url, token="not-the-token")
    assert code == 4 and "refused the token" in err
    assert bigk("describe", "run", "deadbeef", server=svc.url)[0] == 4  # a wrong token is refused for reads too


def test_broken_spec_while_serving_is_visible_from_the_cli(svc: Running, bigk: CLI, tmp_path: Path) -> None:
    s = svc.url
    assert bigk("get", "problems", server=s)[1].strip() == "No spec problems."
    specs = tmp_path / "specs"
    (specs / "etl.yaml").write_text(job_yaml("etl", cron="0 2 * * *", instances=2, duration=30)
                                    .replace("instances: 2", "instanses: 2"))
    (specs / "bad.yaml").write_text("apiVersion: bigk.io/v1\nkind: SparkJob\nmetadata: {name: Bad_Name}\n")

    def reported() -> str | None:
        out = bigk("get", "problems", server=s)[1]
        return out if "instanses" in out and "bad.yaml:" in out else None

    out = wait_for(reported, 10, "both broken files to be reported")
    assert f"{specs / 'etl.yaml'}:" in out and "did you mean 'instances'" in out
    assert "kept at their last good version: etl" in out
    code, out, err = bigk("get", "jobs", server=s)
    assert code == 0 and "etl" in out and "long" in out  # the other jobs stay, etl at its last good version
    assert err.startswith("warning: ") and "etl kept at their last good version" in err and "bigk get problems" in err
    assert json.loads(bigk("get", "problems", "-o", "json", server=s)[1])["kept_jobs"] == ["etl"]
    out = bigk("describe", "job", "etl", server=s)[1]
    assert "bigk runs the last good version" in out and "Problems:" in out and "instanses" in out
    assert "Problems:" not in bigk("describe", "job", "long", server=s)[1]


def test_a_job_that_can_never_fit_is_refused_with_the_reason(svc: Running, bigk: CLI, tmp_path: Path) -> None:
    """serve uses validate's fit rule: no run of a never-fitting job is created, and the refusal says why."""
    s, t = svc.url, svc.token
    huge = job_yaml("huge", instances=20, gpu=True).replace("count: 1\n", "count: 1\n      model: A100\n")
    (tmp_path / "specs" / "huge.yaml").write_text(huge)  # 20 executors of 1 A100 each; the cluster has 16 A100s
    wait_for(lambda: bigk("describe", "job", "huge", server=s)[0] == 0, 10, "the new spec to load")
    code, out, err = bigk("run", "huge", server=s, token=t)
    assert code != 0 and out == ""
    assert "can never run on the cluster's 8 nodes" in err and "spec.executor.instances" in err
    assert len(err.strip().splitlines()) == 1
    assert svc.service.store is not None and svc.service.store.list_runs("huge") == []
    problems = bigk("get", "problems", server=s)[1]
    assert "huge.yaml:13:5: spec.executor.instances:" in problems and "bigk creates no runs of it" in problems
    _, out, _ = bigk("run", "long", server=s, token=t)  # one that fits says nothing of the kind
    assert "never" not in bigk("explain", out.split()[1], server=s)[1]


def test_resume_clear_hands_suspend_back_to_the_spec(svc: Running, bigk: CLI, tmp_path: Path) -> None:
    s, t = svc.url, svc.token
    sleepy = job_yaml("sleepy", cron="0 3 * * *", schedule_extra="suspend: true\n")
    (tmp_path / "specs" / "sleepy.yaml").write_text(sleepy)
    wait_for(lambda: bigk("describe", "job", "sleepy", server=s)[0] == 0, 10, "the new spec to load")

    def job(name: str) -> dict[str, Any]:
        return next(j for j in json.loads(bigk("get", "jobs", "-o", "json", server=s)[1])["items"] if j["name"] == name)

    assert job("sleepy")["suspended"] is True and job("sleepy")["suspend_override"] is None
    assert bigk("resume", "sleepy", server=s, token=t)[0] == 0
    assert job("sleepy")["suspended"] is False and job("sleepy")["suspend_override"] is False
    assert "set by operator" in bigk("describe", "job", "sleepy", server=s)[1]
    code, out, _ = bigk("resume", "sleepy", "--clear", server=s, token=t)
    assert (code, out.strip()) == (0, "job sleepy follows its spec's schedule.suspend again: suspended")
    assert job("sleepy")["suspended"] is True and job("sleepy")["suspend_override"] is None
    assert "set by operator" not in bigk("describe", "job", "sleepy", server=s)[1]

    assert bigk("suspend", "etl", server=s, token=t)[0] == 0  # a spec that does not suspend: clearing resumes it
    code, out, _ = bigk("resume", "etl", "--clear", server=s, token=t)
    assert code == 0 and out.startswith("job etl follows its spec's schedule.suspend again: not suspended; next fire")
    assert job("etl")["suspended"] is False and job("etl")["next_fire"] is not None
    assert bigk("resume", "nope", "--clear", server=s, token=t)[0] == 3


def test_a_driver_lost_to_bigk_drain_says_so(svc: Running, bigk: CLI) -> None:
    s, t = svc.url, svc.token
    run_id = bigk("run", "long", server=s, token=t)[1].split()[1]
    store = svc.service.store
    assert store is not None
    wait_for(lambda: store.get_run(run_id).state == "Running", 10, "long running")
    node = next(p["node"] for p in store.get_run(run_id).pods if p["role"] == "driver")
    assert bigk("drain", node, server=s, token=t)[0] == 0
    wait_for(lambda: store.get_run(run_id).state == "Failed", 15, "the run to fail without its driver")
    code, out, _ = bigk("describe", "run", run_id, server=s)
    assert f"driver pod long-{run_id}-driver evicted by `bigk drain {node}`" in out
    assert "outside bigk" not in out


def test_drain_on_a_named_cluster_waits_by_reading_that_clusters_nodes(monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The watch stream carries home's nodes only: a drain on another cluster polls `GET /nodes?cluster=` (#18)."""
    from bigk.cli import ops_cmds

    asked: list[tuple[str, dict[str, Any]]] = []
    counts = iter([2, 1, 0])

    class Fake:
        def get(self, path: str, **params: Any) -> list[dict[str, Any]]:
            asked.append((path, params))
            return [{"name": "cpu-0", "bigk_pods": next(counts)}, {"name": "cpu-1", "bigk_pods": 3}]

    monkeypatch.setattr(ops_cmds.time, "sleep", lambda _s: None)
    ops_cmds._wait_empty(Fake(), ["cpu-0"], 30.0, "cloud-l4")
    assert asked == [("/nodes", {"cluster": "cloud-l4"})] * 3
    assert capsys.readouterr().out.startswith("evictions done in ")
