"""Submission: spark-submit in cluster mode against the emulated cluster, following and killing drivers."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bigk.cluster import labels as L
from bigk.emulator import EmulatedCluster
from bigk.kube.client import api_client
from bigk.kube.submit import SparkSubmitter, SubmitError, SubmittedRun
from tests.kube.conftest import small_cluster
from tests.kube.harness import Harness

WAIT = "spark.kubernetes.submission.waitAppCompletion"


class Sub:
    def __init__(self, argv: list[str], name: str = "x-driver") -> None:
        self.argv = argv
        self.env: dict[str, str] = {}
        self.driver_pod_name = name
        self.namespace = "default"


def test_submission_that_would_wait_or_go_elsewhere_is_refused(emulator: EmulatedCluster) -> None:
    master = f"k8s://{emulator.url}"
    submitter = SparkSubmitter(master)
    with pytest.raises(SubmitError, match="waitAppCompletion=false"):
        submitter.submit(Sub(["spark-submit", "--master", master, "app.py"]))
    with pytest.raises(SubmitError, match="targets"):
        submitter.submit(Sub(["spark-submit", "--master", "k8s://http://elsewhere:1", "--conf", f"{WAIT}=false"]))


def test_failed_spark_submit_reports_its_output(emulator: EmulatedCluster) -> None:
    master = f"k8s://{emulator.url}"
    argv = ["sh", "-c", "echo 'Exception: no such image' >&2; exit 3", "--master", master, "--conf", f"{WAIT}=false"]
    with pytest.raises(SubmitError, match="exited with 3.*no such image"):
        SparkSubmitter(master).submit(Sub(argv))


def test_runs_are_found_by_label_followed_and_killed(emulator: EmulatedCluster, harness: Harness) -> None:
    h = harness
    submitter = SparkSubmitter(f"k8s://{emulator.url}")
    h.pod("nightly-r1-driver", app="spark-1", role="driver", labels={L.JOB_LABEL: "nightly", L.RUN_LABEL: "r1"})
    h.pod("nightly-r1-exec-1", app="spark-1", role="executor", labels={L.JOB_LABEL: "nightly", L.RUN_LABEL: "r1"})
    h.pod("other-r2-driver", app="spark-2", role="driver", labels={L.JOB_LABEL: "other", L.RUN_LABEL: "r2"})
    assert submitter.find_runs(f"{L.JOB_LABEL}=nightly") == [SubmittedRun("nightly-r1-driver", "default")]
    assert submitter.driver_phase("default", "nightly-r1-driver") == "Pending"
    assert submitter.kill("default", "nightly-r1-driver", grace_period_s=0)
    assert submitter.driver_phase("default", "nightly-r1-driver") is None
    assert submitter.kill("default", "nightly-r1-driver") is False
    assert submitter.find_runs(f"{L.JOB_LABEL}=nightly") == []


@pytest.fixture
def spark_cluster() -> Iterator[EmulatedCluster]:
    cluster = EmulatedCluster(small_cluster(), time_scale=0.05)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.mark.spark
def test_spark_submit_cluster_mode_driver_then_executors_bound_by_bigk(spark_cluster: EmulatedCluster) -> None:
    from bigk.spark.submit import build_submission
    from bigk.spec.loader import load_specs

    h = Harness(api_client(server=spark_cluster.url), namespace="default", timeout=60)
    try:
        loop = h.loop()
        job = next(iter(load_specs(["jobspecs/adhoc-report.yaml"]).jobs.values())).spec
        master = f"k8s://{spark_cluster.url}"
        submission = build_submission(job, "r1", master, Path(tempfile.mkdtemp()))
        submitter = SparkSubmitter(master)
        run = submitter.submit(submission)
        assert run == SubmittedRun("adhoc-report-r1-driver", "default")
        h.wait(lambda: h.node_of(run.driver_pod_name), what="driver bound")
        h.wait(lambda: "Scheduled" in h.reasons_for(run.driver_pod_name), what="Scheduled event for the driver")
        executors = h.wait(lambda: [p for p in h.core.list_namespaced_pod(
            "default", label_selector=f"{L.SPARK_ROLE}=executor").items if p.spec and p.spec.node_name],
            what="simulated executors bound")
        h.wait(lambda: all("Scheduled" in h.reasons_for(str(p.metadata.name)) for p in executors if p.metadata),
               what="Scheduled events for the executors")
        driver = h.read(run.driver_pod_name)
        assert driver is not None and driver.metadata is not None
        app = (driver.metadata.labels or {})[L.SPARK_APP_SELECTOR]  # set by Spark: the gang bigk scheduled
        assert {(p.metadata.labels or {}).get(L.SPARK_APP_SELECTOR) for p in executors if p.metadata} == {app}
        assert submitter.find_runs(f"{L.RUN_LABEL}=r1") == [run]
        assert submitter.driver_phase(run.namespace, run.driver_pod_name) in ("Pending", "Running", "Succeeded")
        assert submitter.kill(run.namespace, run.driver_pod_name, grace_period_s=0)
        h.wait(lambda: not h.core.list_namespaced_pod("default", label_selector=f"{L.RUN_LABEL}=r1").items,
               what="driver and executors gone after kill")
        assert loop.stats.bind_failed == 0
    finally:
        h.close()
