"""How a run reaches the cluster, and how the service reads a run's pods back.

Two submit modes, both starting from the same `Submission` that `bigk render`
shows (argv, conf, driver and executor pod templates):

- `spark`: pyspark's own `spark-submit --deploy-mode cluster` (through
  `bigk.kube.submit.SparkSubmitter`). What production uses; about 10 s and a
  JVM per run.
- `direct`: the service creates the driver pod itself through the Kubernetes
  API, the way spark-submit would (pod template + `spark.kubernetes.driver.*`
  conf, the conf as a `spark-drv-*-conf-map` config map). Used with the embedded
  emulated cluster, whose simulated Spark driver then creates the executors. It
  is a development and test mode: on a real cluster a real driver image needs
  what spark-submit also uploads, so use `spark` there.

Pods are found by label (`bigk.io/run`), never by memory, so this works the same
after a restart.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from bigk.cluster import labels as L
from bigk.errors import BigkError
from bigk.kube.informer import older_version
from bigk.kube.podlist import PodMemo, list_pod_status
from bigk.kube.runpods import RunPodFeed
from bigk.spark.driver_pod import (
    POD_TEMPLATE_KEY,
    RESOURCE_TYPE_KEY,
    SPARK_PROPERTIES_KEY,
    build_driver_pod,
    config_map_name,
    properties_text,
    template_map_name,
)
from bigk.spark.errors import SubmitError

if TYPE_CHECKING:
    from bigk.spark.submit import Submission
    from bigk.spec.policy import SpecPolicy

log = logging.getLogger(__name__)


def driver_pod_name(job: str, run_id: str) -> str:
    """The deterministic driver pod name: a second submit of one run collides instead of duplicating."""
    from bigk.spec.naming import driver_pod_name as spec_driver_pod_name

    return spec_driver_pod_name(job, run_id)


def pod_summary(pod: Any) -> dict[str, Any]:
    """What the store keeps of one pod: name, role, node, phase."""
    labels = pod.metadata.labels or {}
    return {
        "name": pod.metadata.name,
        "role": labels.get(L.SPARK_ROLE, "pod"),
        "node": (pod.spec.node_name if pod.spec is not None else None) or "",
        "phase": (pod.status.phase if pod.status is not None else None) or "Pending",
    }


class RunSubmitter(Protocol):
    mode: str
    policy: Any  # the install's SpecPolicy (None: the built-in default)

    def submit(self, spec: Any, run_id: str) -> str:
        """Hand one run of `spec` (a JobSpec) to the cluster; return the driver pod name."""
        ...

    def kill(self, namespace: str, run_id: str) -> None:
        """Delete every pod of the run (driver first)."""
        ...


class ClusterPods:
    """Reads and deletes bigk run pods by label.

    After `follow()`, `pods_by_run` reads a watch-fed cache (`bigk.kube.runpods`) once a one-item listing shows
    the cluster answers and still has the history the cache followed; otherwise (not following, the cache not
    current, the server's version behind the cache's) it lists them all, as it always did."""

    def __init__(self, api: client.ApiClient, list_timeout_s: float | None = None) -> None:
        self.core = client.CoreV1Api(api)
        self.list_timeout_s = list_timeout_s  # with several clusters, one silent cluster must not stall the others
        self._memo = PodMemo()
        self._feed: RunPodFeed | None = None

    def follow(self) -> None:
        """Keep the run pods current from a watch from now on (started once; `stop` ends it)."""
        if self._feed is None:
            self._feed = RunPodFeed(self.core, L.RUN_LABEL).start()

    def stop(self) -> None:
        if self._feed is not None:
            self._feed.stop()

    def pods_by_run(self) -> dict[str, list[Any]]:
        feed = self._feed
        if feed is not None:
            # Asked every tick: whether the cluster answers (a silent one times out here, as the listing would) and
            # whether it still knows the version the cache is at (a restarted, empty one does not).
            probe = self.core.list_pod_for_all_namespaces(label_selector=L.RUN_LABEL, limit=1,
                                                          _request_timeout=self.list_timeout_s)
            if not older_version((probe.metadata or client.V1ListMeta()).resource_version, feed.resource_version):
                found = feed.current()
                if found is not None:
                    return found
        # Only metadata, status and node are read from these (every tick, thousands with a backlog): a light listing.
        items: list[Any] = list_pod_status(self.core, self._memo, label_selector=L.RUN_LABEL,
                                           _request_timeout=self.list_timeout_s)
        out: dict[str, list[Any]] = {}
        for pod in items:
            run = (pod.metadata.labels or {}).get(L.RUN_LABEL)
            if run:
                out.setdefault(run, []).append(pod)
        return out

    def run_pods(self, namespace: str, run_id: str) -> list[Any]:
        return list(self.core.list_namespaced_pod(namespace, label_selector=f"{L.RUN_LABEL}={run_id}").items)

    def delete_run_pods(self, namespace: str, run_id: str) -> int:
        pods = self.run_pods(namespace, run_id)
        pods.sort(key=lambda p: (p.metadata.labels or {}).get(L.SPARK_ROLE) != "driver")
        for pod in pods:
            try:
                self.core.delete_namespaced_pod(pod.metadata.name, namespace, grace_period_seconds=0)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        return len(pods)


def apply_config_maps(core: client.CoreV1Api, submission: Any) -> None:
    """Create (or update) the ConfigMaps the job brings along (`spec.configMaps`) before its driver starts."""
    for manifest in getattr(submission, "config_maps", []) or []:
        namespace = manifest["metadata"]["namespace"]
        name = manifest["metadata"]["name"]
        try:
            core.create_namespaced_config_map(namespace, manifest)
        except ApiException as exc:
            if exc.status != 409:
                raise SubmitError(f"cannot create ConfigMap {namespace}/{name}: {exc.status} {exc.reason}") from None
            core.replace_namespaced_config_map(name, namespace, manifest)


class _Submitter:
    """What both submit modes share: the API, the run's pods, and the submission rendered under the policy."""

    mode = ""
    policy: SpecPolicy | None = None  # the install's, enforced again at every submission

    def __init__(self, api: client.ApiClient, master_url: str, workdir: str = ".") -> None:
        self.core = client.CoreV1Api(api)
        self.pods = ClusterPods(api)
        self.master_url = master_url
        self.workdir = workdir

    def _submission(self, spec: Any, run_id: str) -> Submission:
        """`bigk render`'s submission of one run, after the spec policy has been enforced again."""
        from bigk.spark.submit import build_submission
        from bigk.spec.policy import enforce

        level = enforce(spec, self.policy)
        return build_submission(spec, run_id, self.master_url, Path(self.workdir), level=level)


class DirectSubmitter(_Submitter):
    """Creates the driver pod (and its conf map) through the Kubernetes API. See the module docstring."""

    mode = "direct"

    def submit(self, spec: Any, run_id: str) -> str:
        job = spec.metadata.name
        namespace = spec.metadata.namespace
        try:
            submission = self._submission(spec, run_id)
        except BigkError as exc:
            raise SubmitError(f"job {job}: cannot build the submission: {exc}") from None
        conf = {k: str(v) for k, v in dict(submission.conf).items()}
        conf.setdefault("spark.app.id", f"spark-{run_id}")
        conf.setdefault(RESOURCE_TYPE_KEY, submission.resource_type)  # as spark-submit tells its driver
        manifest = build_driver_pod(submission, job, run_id, namespace)
        labels = {L.JOB_LABEL: job, L.RUN_LABEL: run_id}
        maps = [
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name=config_map_name(run_id), namespace=namespace,
                                                            labels=labels),
                               data={SPARK_PROPERTIES_KEY: properties_text(conf)}),
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name=template_map_name(manifest["metadata"]["name"]),
                                                            namespace=namespace, labels=labels),
                               data={POD_TEMPLATE_KEY: yaml.safe_dump(submission.executor_template,
                                                                      sort_keys=False)}),
        ]
        try:
            apply_config_maps(self.core, submission)
            for conf_map in maps:
                try:
                    self.core.create_namespaced_config_map(namespace, conf_map)
                except ApiException as exc:
                    if exc.status != 409:
                        raise
            self.core.create_namespaced_pod(namespace, cast(Any, manifest))
        except ApiException as exc:
            if exc.status == 409:  # the driver exists: this run was already submitted
                return str(manifest["metadata"]["name"])
            raise SubmitError(f"job {job}: API server refused the driver pod: {exc.status} {exc.reason}") from None
        except SubmitError as exc:
            raise SubmitError(f"job {job}: {exc}") from None
        except Exception as exc:  # urllib3 connection errors and the like
            raise SubmitError(f"job {job}: cannot reach the API server: {exc}") from None
        log.info("event=run_submitted mode=direct job=%s run=%s driver=%s", job, run_id, manifest["metadata"]["name"])
        return str(manifest["metadata"]["name"])

    def kill(self, namespace: str, run_id: str) -> None:
        self.pods.delete_run_pods(namespace, run_id)
        try:
            maps: list[Any] = list(self.core.list_namespaced_config_map(
                namespace, label_selector=f"{L.RUN_LABEL}={run_id}").items)
            for conf_map in maps:
                self.core.delete_namespaced_config_map(conf_map.metadata.name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                log.warning("event=conf_map_delete_failed run=%s status=%s", run_id, exc.status)


class SparkSubmitSubmitter(_Submitter):
    """Runs pyspark's `spark-submit` in cluster mode (waitAppCompletion=false) through the kube backend."""

    mode = "spark"

    def __init__(self, api: client.ApiClient, master_url: str, workdir: str = ".",
                 kubeconfig: str | None = None) -> None:
        from bigk.kube.submit import SparkSubmitter

        super().__init__(api, master_url, workdir)
        self.inner = SparkSubmitter(master_url, api=api, kubeconfig=kubeconfig)

    def submit(self, spec: Any, run_id: str) -> str:
        job = spec.metadata.name
        try:
            submission = self._submission(spec, run_id)
            apply_config_maps(self.core, submission)
            self.inner.submit(submission)
        except BigkError as exc:
            raise SubmitError(f"job {job}: spark-submit failed: {exc}") from None
        log.info("event=run_submitted mode=spark job=%s run=%s", job, run_id)
        return driver_pod_name(job, run_id)

    def kill(self, namespace: str, run_id: str) -> None:
        self.pods.delete_run_pods(namespace, run_id)
