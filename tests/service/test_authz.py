"""Who may do what, decided by the cluster: Kubernetes credentials, RBAC on bigk.io, and the audit trail.

Runs on the embedded emulator (tokens registered with it; its SubjectAccessReviews read the RBAC
objects it stores) and, marked `cluster`, on the real kube-apiserver of testenv/ (ServiceAccount
tokens from the TokenRequest API, real RBAC). The CLI is used as an operator would: the only
credentials it has are the token in its kubeconfig.
"""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli_main import run_main
from tests.realk8s import ClusterUnderTest
from tests.service.conftest import ON_BOTH_CLUSTERS, Running, job_yaml, wait_for
from tests.service.rbac_users import User, Users


@pytest.fixture()
def users(cluster: ClusterUnderTest) -> Iterator[Callable[[str, list[str]], User]]:
    """users(name, verbs on runs) -> a user with a bearer token whose RBAC grants exactly those verbs."""
    made = Users(cluster)

    def make(name: str, verbs: list[str]) -> User:
        return made.make(name, [{"apiGroups": ["bigk.io"], "resources": ["runs"], "verbs": verbs},
                                {"apiGroups": ["bigk.io"], "resources": ["jobs", "audit"], "verbs": ["get", "list"]}])

    yield make
    made.cleanup()


CLI = Callable[..., tuple[int, str, str]]


@pytest.fixture()
def bigk(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> CLI:
    """bigk(args..., server=URL, user=User|None, static=TOKEN|None) -> (exit code, stdout, stderr)."""

    def run(*args: str, server: str, user: User | None = None, static: str | None = None) -> tuple[int, str, str]:
        monkeypatch.setenv("BIGK_STATE_DIR", str(tmp_path / "cli-state"))  # no token file here
        monkeypatch.setenv("BIGK_SERVER", server)
        monkeypatch.delenv("BIGK_TOKEN", raising=False)
        monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
        if static:
            monkeypatch.setenv("BIGK_TOKEN", static)
        if user is not None:  # a kubeconfig like any cluster user's: the token is their only credential
            path = user.kubeconfig(tmp_path / f"kubeconfig-{user.username.rsplit(':', 1)[-1]}")
            monkeypatch.setenv("KUBECONFIG", str(path))
        return run_main(args, monkeypatch, capsys)

    return run


@ON_BOTH_CLUSTERS
def test_rbac_allows_get_runs_but_not_cancel_and_the_audit_says_who(
        tmp_path: Path, serve: Callable[..., Running], users: Callable[[str, list[str]], User], bigk: CLI,
        caplog: pytest.LogCaptureFixture) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "long.yaml").write_text(job_yaml("long", instances=1, duration=100_000))
    svc = serve(specs)
    alice = users("alice", ["get", "list"])
    bob = users("bob", ["get", "list", "cancel"])
    with svc.client() as admin:
        run = admin.post("/api/v1/jobs/long/run").json()["id"]
    caplog.set_level(logging.INFO, logger="bigk.service.audit")

    code, out, err = bigk("get", "runs", server=svc.url, user=alice)
    assert code == 0 and run in out, err
    code, out, err = bigk("cancel", run, server=svc.url, user=alice)
    assert code == 4, (out, err)
    assert f"{alice.username} may not cancel runs in bigk.io" in err and len(err.strip().splitlines()) == 1
    with svc.client() as admin:
        assert admin.get(f"/api/v1/runs/{run}").json()["state"] != "Cancelled"
    assert bigk("cancel", run, server=svc.url, user=bob)[0] == 0
    with svc.client() as admin:
        wait_for(lambda: admin.get(f"/api/v1/runs/{run}").json()["state"] == "Cancelled", 10, "the cancel")

    code, out, err = bigk("history", "--audit", "-o", "json", server=svc.url, user=alice)
    assert code == 0, err
    trail = [(r["user"], r["verb"], r["resource"], r["name"], r["outcome"], r["status"])
             for r in json.loads(out)["items"]]
    assert trail[:3] == [
        (bob.username, "cancel", "runs", run, "allowed", 200),
        (alice.username, "cancel", "runs", run, "denied", 403),
        ("bigk:static-token", "run", "jobs", "long", "allowed", 201),
    ]
    assert all(r["source"] == "127.0.0.1" for r in json.loads(out)["items"][:3])
    code, out, _ = bigk("history", "--audit", server=svc.url, static=svc.token)
    assert code == 0 and f"{alice.username}" in out and "denied (403)" in out
    lines = [r.getMessage() for r in caplog.records if "event=audit " in r.getMessage()]
    assert any(f"user={alice.username} " in m and "verb=cancel" in m and "outcome=denied" in m for m in lines)


@ON_BOTH_CLUSTERS
def test_tokens_the_cluster_does_not_know_are_refused(tmp_path: Path, serve: Callable[..., Running],
                                                      bigk: CLI) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "a.yaml").write_text(job_yaml("a"))
    svc = serve(specs)
    stranger = User("not-a-token-anyone-issued", "nobody")
    code, _, err = bigk("run", "a", server=svc.url, user=stranger)
    assert code == 4 and "did not accept your kubeconfig's credentials" in err
    code, _, err = bigk("get", "jobs", server=svc.url, user=stranger)  # a wrong token is refused for reads too
    assert code == 4
    with svc.client() as admin:
        trail = admin.get("/api/v1/audit").json()
    assert trail[0]["user"] == "(unauthenticated)" and trail[0]["outcome"] == "unauthenticated"


def test_host_header_must_be_one_of_the_servers_names(tmp_path: Path, serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    svc = serve(specs, allowed_hosts=["bigk.example.internal"])
    with svc.client() as c:
        assert c.get("/api/v1/jobs").status_code == 200  # Host: 127.0.0.1:PORT
        assert c.get("/api/v1/jobs", headers={"Host": "localhost:8080"}).status_code == 200
        assert c.get("/api/v1/jobs", headers={"Host": "bigk.example.internal"}).status_code == 200
        rebound = c.post("/api/v1/jobs/a/run", headers={"Host": "attacker.example.com"})
        assert rebound.status_code == 400 and "not one of this server's names" in rebound.json()["detail"]
        assert c.get("/healthz", headers={"Host": "attacker.example.com"}).status_code == 200  # probes
        big = c.post("/api/v1/jobs/a/run", content=b"x" * 70_000)
        assert big.status_code == 413
        long_limit = "9" * 5000
        echo = c.get("/api/v1/runs", params={"limit": long_limit})
        assert echo.status_code == 422 and len(echo.text) < 1000 and "5000 characters" in echo.text


def test_state_dir_and_database_are_private(tmp_path: Path, serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    state = tmp_path / "state-open"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    serve(specs, state=state)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "bigk.db").stat().st_mode) == 0o600
