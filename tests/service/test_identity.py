"""A restarted replica takes its own unexpired Lease back at once; /readyz and /leaderz tell serving from leading."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from bigk.kube.leader import IdentityClaim
from bigk.service.api import create_app
from bigk.service.app import Service, ServiceConfig
from bigk.service.http import HttpServer
from tests.realk8s import ClusterUnderTest
from tests.service.conftest import job_yaml, wait_for


def test_identity_is_kept_across_restarts_and_never_shared(tmp_path: Path) -> None:
    first = IdentityClaim(tmp_path)
    second = IdentityClaim(tmp_path)  # the state folder is in use: a fresh identity
    assert first.stable and not second.stable and first.identity != second.identity
    first.release()
    again = IdentityClaim(tmp_path)
    assert again.stable and again.identity == first.identity
    again.release()


def test_a_restarted_replica_leads_again_at_once(tmp_path: Path, cluster: ClusterUnderTest) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "j.yaml").write_text(job_yaml("j"))
    state = tmp_path / "state"

    def replica() -> Service:  # a 30 s lease: a stranger would wait that long for it
        return Service(ServiceConfig(specs=[specs], **cluster.service_kwargs(), state_dir=state,
                                     submit_mode="direct", tick_s=0.2, reload_s=0.3, leader_lease_s=30.0)).start()

    first = replica()
    try:
        wait_for(lambda: first.is_leader, 10, "leadership")
        other = replica()  # a second replica on the same state folder: it follows, with an identity of its own
        try:
            time.sleep(1.0)
            assert not other.is_leader and other.elector.identity != first.elector.identity
            http = HttpServer("127.0.0.1", 0)
            base = http.start(create_app(other, "t"))
            try:
                ready = httpx.get(f"{base}/readyz", timeout=5)
                leading = httpx.get(f"{base}/leaderz", timeout=5)
                assert ready.status_code == 200 and ready.json()["checks"]["leader"] is False
                assert leading.status_code == 503 and leading.json()["leading"] is False
            finally:
                http.stop()
        finally:
            other.stop()
        before = first.elector.identity
        crash(first)  # as kill -9: the Lease is not released, and the dead process's file lock goes with it
    except BaseException:
        first.stop()
        raise
    started = time.monotonic()
    restarted = replica()
    try:
        assert restarted.elector.identity == before
        wait_for(lambda: restarted.is_leader, 5, "the restarted replica to lead")  # not the lease's 30 s
        assert time.monotonic() - started < 10
    finally:
        restarted.stop()


def crash(svc: Service) -> None:
    """Stop without releasing anything a dead process could not release (see conftest's Running.crash)."""
    svc._stop.set()
    if svc.cron is not None:
        svc.cron.scheduler.shutdown(wait=False)
    if svc.catalog is not None:
        svc.catalog.stop()
    if svc.loop is not None:
        svc.loop.stop()
    svc.elector.stop(release=False)
    svc.identity_claim.release()
    if svc.store is not None:
        svc.store.close()
