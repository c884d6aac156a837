"""The store and cron's job store on PostgreSQL (`--database-url`), against a throwaway local server.

Skipped where no PostgreSQL server binaries are installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bigk.service.runstate import RunState
from bigk.service.store import Store, StoreError
from tests.service.conftest import Running, job_yaml, wait_for
from tests.service.test_cron import Recorder, _cron, _spec

PG_BIN = next((Path(p) for p in ("/usr/local/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")
               if (Path(p) / "initdb").exists()), None)


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    if PG_BIN is None:
        pytest.skip("PostgreSQL server binaries are not installed")
    root = Path(tempfile.mkdtemp(prefix="bigk-pg-"))
    os.chmod(root, 0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data = root / "data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "bigk", "--auth=trust"]),
                   check=True, capture_output=True)
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-w", "-l",
                                 str(root / "log"), "start"]), check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://bigk@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_runs_and_idempotency_on_postgres(pg_url: str) -> None:
    store = Store(pg_url)
    run = store.create_run("pg-etl", now=1.0, trigger="schedule", fire_time=60.0)
    assert run is not None
    assert Store(pg_url).create_run("pg-etl", now=2.0, trigger="schedule", fire_time=60.0) is None
    store.transition(run.id, RunState.SUBMITTED, now=3.0, pods=[{"name": "d", "node": "n"}])
    again = Store(pg_url).get_run(run.id)
    assert again.state is RunState.SUBMITTED and again.pods == [{"name": "d", "node": "n"}]
    store.transition(run.id, RunState.FAILED, now=4.0, reason="boom")
    assert store.history("pg-etl")[0]["reason"] == "boom"


def test_cron_job_store_on_postgres_keeps_fire_times(pg_url: str) -> None:
    store = Store(pg_url)
    rec = Recorder()
    cron = _cron(store, rec, step=2)
    cron.sync({"pg-a": _spec("pg-a", grace=30)}, {})
    first = cron.next_fire("pg-a")
    cron.shutdown()
    cron2 = _cron(Store(pg_url), Recorder(), step=2)
    cron2.sync({"pg-a": _spec("pg-a", grace=30)}, {})
    assert cron2.next_fire("pg-a") == first
    cron2.resume()
    time.sleep(0.1)
    cron2.shutdown()


def test_unreachable_database_is_one_line() -> None:
    with pytest.raises(StoreError) as err:
        Store("postgresql+psycopg://u:secret@127.0.0.1:9/db")
    assert "secret" not in str(err.value) and "cannot open state database" in str(err.value)


def test_bigk_serve_runs_a_job_with_its_state_in_postgres(pg_url: str, tmp_path: Path,
                                                           serve: Callable[..., Running]) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "pg.yaml").write_text(job_yaml("pg-job", cron="0 3 * * *", instances=1, duration=10))
    svc = serve(specs, database_url=pg_url)
    with svc.client() as c:
        run = c.post("/api/v1/jobs/pg-job/run").json()
        wait_for(lambda: c.get(f"/api/v1/runs/{run['id']}").json()["state"] == "Succeeded", 15, "the run")
    assert Store(pg_url).get_run(run["id"]).state is RunState.SUCCEEDED  # written to PostgreSQL, not SQLite
    assert not (tmp_path / "state" / "bigk.db").exists()


def test_the_service_lease_on_postgres_lets_one_replica_lead(pg_url: str) -> None:
    """Several clusters: the service's leadership is a `bigk_leases` row; compare-and-swap holds on PostgreSQL."""
    from tests.service.test_store_lease import Clock, _elector

    clock = Clock()
    a, b = _elector(Store(pg_url), "a", clock), _elector(Store(pg_url), "b", clock)
    assert a.try_acquire_or_renew() and not b.try_acquire_or_renew()
    clock.t += 16.0
    assert b.try_acquire_or_renew() and not a.try_acquire_or_renew()
    assert b.release() and a.try_acquire_or_renew() and a.leader == "a"
