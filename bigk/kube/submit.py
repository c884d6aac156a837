"""Submitting a run with pyspark's own `spark-submit` in cluster mode, and following its driver pod.

`bigk.spark.cluster_mode` runs spark-submit (waitAppCompletion=false: it exits
once the driver pod and its resources are created); here we wait until the API
shows the driver pod, and follow and delete it. Runs are found again after a
restart by their labels, not by anything kept in memory.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bigk.cluster.labels import SPARK_ROLE
from bigk.kube.client import api_client, drain
from bigk.kube.retry import Backoff, status_of
from bigk.spark.cluster_mode import check_argv, master_server, run_spark_submit, tail
from bigk.spark.errors import SubmitError
from bigk.spark.home import submit_environment

log = logging.getLogger(__name__)


class SubmissionLike(Protocol):
    """What `bigk.spark.submit.build_submission` returns (only the fields used here)."""

    argv: list[str]
    env: dict[str, str]
    driver_pod_name: str
    namespace: str


@dataclass(frozen=True, order=True)
class SubmittedRun:
    driver_pod_name: str
    namespace: str


class SparkSubmitter:
    """Runs spark-submit against `master_url` and tracks driver pods through the API.

    api: the client for following pods; by default one for the master URL itself when
        it is plain http (the emulator), else the usual in-cluster/kubeconfig lookup.
    """

    def __init__(self, master_url: str, *, api: client.ApiClient | None = None, submit_timeout_s: float = 300.0,
                 driver_wait_s: float = 60.0, kubeconfig: str | None = None) -> None:
        self.master_url = master_url
        self.kubeconfig = kubeconfig  # spark-submit (fabric8) signs in with the same credentials as bigk
        server = master_server(master_url)
        if api is None:
            api = api_client(server=server) if server.startswith("http://") else api_client()
        self.api = api
        self.core = client.CoreV1Api(api)
        self.submit_timeout_s = submit_timeout_s
        self.driver_wait_s = driver_wait_s
        self._backoff = Backoff(attempts=4)

    # ---- submit -----------------------------------------------------------------------------
    def submit(self, submission: SubmissionLike) -> SubmittedRun:
        """Run spark-submit (no shell) and return once the driver pod exists."""
        argv = list(submission.argv)
        check_argv(argv, self.master_url)
        env = submit_environment(submission.env)
        if self.kubeconfig:
            env["KUBECONFIG"] = self.kubeconfig
        started = time.monotonic()
        log.info("event=spark_submit driver=%s/%s master=%s", submission.namespace, submission.driver_pod_name,
                 self.master_url)
        output = run_spark_submit(argv, env, self.submit_timeout_s, submission.driver_pod_name)
        run = SubmittedRun(submission.driver_pod_name, submission.namespace)
        if not self._wait_for_driver(run):
            raise SubmitError(f"spark-submit succeeded but driver pod {run.namespace}/{run.driver_pod_name} did not "
                              f"appear within {self.driver_wait_s:.0f} s: {tail(output)}")
        log.info("event=spark_submitted driver=%s/%s seconds=%.1f", run.namespace, run.driver_pod_name,
                 time.monotonic() - started)
        return run

    def _wait_for_driver(self, run: SubmittedRun) -> bool:
        deadline = time.monotonic() + self.driver_wait_s
        while time.monotonic() < deadline:
            if self._read(run.namespace, run.driver_pod_name) is not None:
                return True
            time.sleep(0.2)
        return False

    # ---- follow -----------------------------------------------------------------------------
    def driver_phase(self, namespace: str, name: str) -> str | None:
        """Pending / Running / Succeeded / Failed / Unknown; None once the pod is gone."""
        pod = self._read(namespace, name)
        if pod is None:
            return None
        return (pod.status.phase if pod.status else None) or "Pending"

    def find_runs(self, label_selector: str, namespace: str | None = None) -> list[SubmittedRun]:
        """Driver pods carrying `label_selector` (e.g. 'bigk.io/job=nightly-etl'), to pick runs up after a restart."""
        selector = ",".join(s for s in (label_selector, f"{SPARK_ROLE}=driver") if s)
        if namespace is None:
            pods = self._backoff.call(lambda: self.core.list_pod_for_all_namespaces(label_selector=selector),
                                      what="find_runs")
        else:
            pods = self._backoff.call(lambda: self.core.list_namespaced_pod(namespace, label_selector=selector),
                                      what="find_runs")
        return sorted(SubmittedRun(p.metadata.name, p.metadata.namespace) for p in pods.items
                      if p.metadata is not None and p.metadata.name and p.metadata.namespace)

    def kill(self, namespace: str, driver_pod_name: str, grace_period_s: int | None = None) -> bool:
        """Delete the driver pod (executors follow through ownerReferences); False if it was already gone."""
        try:
            drain(self._backoff.call(lambda: self.core.delete_namespaced_pod(
                driver_pod_name, namespace, grace_period_seconds=grace_period_s, _preload_content=False),
                what="kill"))
        except ApiException as exc:
            if status_of(exc) == 404:
                return False
            raise SubmitError(f"cannot delete driver pod {namespace}/{driver_pod_name}: HTTP {status_of(exc)}") \
                from None
        log.info("event=run_killed driver=%s/%s", namespace, driver_pod_name)
        return True

    def _read(self, namespace: str, name: str) -> client.V1Pod | None:
        try:
            pod: client.V1Pod = self._backoff.call(lambda: self.core.read_namespaced_pod(name, namespace),
                                                   what="read_driver")
            return pod
        except ApiException as exc:
            if status_of(exc) == 404:
                return None
            raise
