"""Fixtures: an emulated cluster on loopback and `bigk serve` (in-process) pointed at it.

The service runs with `--submit-mode direct` (it creates the driver pod from the
real `Submission`; the emulator's simulated Spark driver creates the executors)
and, where a test needs cron to fire quickly, a seconds-granularity trigger in
place of the spec's minute cron. Everything else is the production code path.
"""

from __future__ import annotations

import contextlib
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from apscheduler.triggers.cron import CronTrigger

from bigk.cluster.config import load_cluster
from bigk.emulator import EmulatedCluster
from bigk.service.api import create_app
from bigk.service.app import Service, ServiceConfig
from bigk.service.http import HttpServer
from tests.realk8s import ClusterUnderTest, cluster_params, real_cluster_under_test

ROOT = Path(__file__).resolve().parents[2]
TIME_SCALE = 0.05  # a 20 s expected duration runs 1 s


def job_yaml(name: str, *, cron: str | None = None, instances: int = 2, duration: int = 20, extra: str = "",
             schedule_extra: str = "", driver_annotations: dict[str, str] | None = None,
             gpu: bool = False) -> str:
    """One SparkJob document."""
    sched = ""
    if cron is not None:
        sched = f"  schedule:\n    cron: \"{cron}\"\n" + textwrap.indent(textwrap.dedent(schedule_extra), "    ")
    ann = ""
    if driver_annotations:
        ann = "  driver:\n    annotations:\n" + "".join(f"      {k}: \"{v}\"\n" for k, v in driver_annotations.items())
    gpu_block = "    gpu:\n      count: 1\n" if gpu else ""
    return (f"apiVersion: bigk.io/v1\nkind: SparkJob\nmetadata:\n  name: {name}\nspec:\n  type: Python\n"
            f"  image: bigk/spark-apps:0.1\n  mainApplicationFile: local:///opt/app.py\n"
            f"  expectedDurationSeconds: {duration}\n{sched}{ann}"
            f"  executor:\n    cores: 1\n    memory: 1g\n    instances: {instances}\n{gpu_block}"
            + textwrap.indent(textwrap.dedent(extra), "  "))


ON_BOTH_CLUSTERS = pytest.mark.parametrize("cluster", cluster_params(), indirect=True)


def every_seconds(step: int) -> Callable[[Any], CronTrigger]:
    """Test trigger: fire every `step` seconds whatever the spec's cron says."""
    return lambda spec: CronTrigger(second=f"*/{step}", timezone="UTC")


@pytest.fixture()
def cluster(request: pytest.FixtureRequest) -> Iterator[ClusterUnderTest]:
    """The embedded emulator; a module that sets `pytestmark = ON_BOTH_CLUSTERS` runs on it and (marked
    `cluster`) on a real kube-apiserver with simulated nodes."""
    if getattr(request, "param", "emulated") == "real":
        yield from real_cluster_under_test(request)
        return
    emu = EmulatedCluster(load_cluster(ROOT / "jobspecs" / "cluster.yaml"), time_scale=TIME_SCALE)
    emu.start()
    try:
        yield ClusterUnderTest("emulated", url=emu.url, emulator=emu)
    finally:
        emu.stop()


@dataclass
class Running:
    service: Service
    http: HttpServer
    url: str
    token: str

    def client(self, token: bool = True) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)

    def stop(self) -> None:
        self.http.stop()
        self.service.stop()

    def crash(self) -> None:
        """Stop without the graceful path's final work, as close to kill -9 as a thread allows."""
        self.http.stop()
        svc = self.service
        svc._stop.set()
        if svc.cron is not None:
            svc.cron.scheduler.shutdown(wait=False)
        if svc.catalog is not None:
            svc.catalog.stop()
        if svc.loop is not None:
            svc.loop.stop()
        if svc.elector is not None:
            svc.elector.stop(release=False)


@pytest.fixture()
def serve(tmp_path: Path, cluster: ClusterUnderTest) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(specs: Path, state: Path | None = None, **overrides: Any) -> Running:
        overrides.setdefault("submit_mode", "direct")
        cfg = ServiceConfig(specs=[specs], **cluster.service_kwargs(), state_dir=state or tmp_path / "state",
                            tick_s=0.2, reload_s=0.3, leader_lease_s=3.0, **overrides)
        service = Service(cfg).start()
        http = HttpServer("127.0.0.1", 0)
        url = http.start(create_app(service, "test-token"))
        running = Running(service, http, url, "test-token")
        started.append(running)
        wait_for(lambda: service.is_leader, 10, "leadership")
        return running

    yield start
    for running in started:
        with contextlib.suppress(Exception):
            running.stop()


def wait_for(cond: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
