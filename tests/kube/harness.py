"""What a scenario needs from a cluster, whether emulated or real: an API, a namespace, loops, pods."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bigk.cluster.model import Pod
from bigk.kube.leader import LeaderElector
from bigk.kube.loop import SchedulerLoop
from bigk.scheduler import Scheduler
from tests.kube.objects import pod_dict

T = TypeVar("T")
HOSTNAME = "kubernetes.io/hostname"


@dataclass
class Harness:
    api: client.ApiClient
    namespace: str
    scheduler_name: str = "bigk"
    image: str = "spark"
    timeout: float = 15.0
    pod_annotations: dict[str, str] = field(default_factory=dict)  # added to every pod the harness creates
    loops: list[SchedulerLoop] = field(default_factory=list)
    electors: list[LeaderElector] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)  # run by close(), last first

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def loop(self, *, start: bool = True, **kwargs: Any) -> SchedulerLoop:
        """A scheduling loop (single replica unless an elector/leader_election is given)."""
        kwargs.setdefault("leader_election", False)
        kwargs.setdefault("interval_s", 0.1)
        kwargs.setdefault("scheduler_name", self.scheduler_name)
        kwargs.setdefault("lease_namespace", self.namespace)
        policy = kwargs.pop("policy", "binpack")
        loop = SchedulerLoop(self.api, Scheduler(policy, reservation_ttl_s=kwargs.pop("reservation_ttl_s", 300.0)),
                             **kwargs)
        self.loops.append(loop)
        return loop.start() if start else loop

    def elector(self, lease: str, **kwargs: Any) -> LeaderElector:
        kwargs.setdefault("lease_duration_s", 2.0)
        kwargs.setdefault("renew_deadline_s", 1.4)
        kwargs.setdefault("retry_period_s", 0.2)
        elector = LeaderElector(self.api, name=lease, namespace=self.namespace, **kwargs)
        self.electors.append(elector)
        return elector

    def pod(self, name: str, *, priority: int | None = None, node_selector: dict[str, str] | None = None,
            extra_spec: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Create a pod for bigk (tiny by default); returns the created object as a dict."""
        kwargs.setdefault("scheduler", self.scheduler_name)
        kwargs.setdefault("memory", "16Mi")
        kwargs.setdefault("cpu", "10m")
        data = pod_dict(name, namespace=self.namespace, **kwargs)
        data["metadata"].pop("uid")
        data["metadata"].pop("resourceVersion")
        data["metadata"].pop("creationTimestamp")
        data.pop("status")
        spec = data["spec"]
        spec["containers"][0]["image"] = self.image
        spec["terminationGracePeriodSeconds"] = 0
        if node_selector:
            spec["nodeSelector"] = node_selector
        if priority is not None:
            data["metadata"]["annotations"]["bigk.io/priority"] = str(priority)
        data["metadata"]["annotations"].update(self.pod_annotations)
        spec.update(extra_spec or {})  # extra pod spec fields (affinity, volumes, init containers, ...)
        created = self.core.create_namespaced_pod(self.namespace, data)  # type: ignore[arg-type]
        return dict(self.api.sanitize_for_serialization(created))

    def read(self, name: str) -> client.V1Pod | None:
        try:
            return self.core.read_namespaced_pod(name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def node_of(self, name: str) -> str:
        pod = self.read(name)
        return (pod.spec.node_name or "") if pod is not None and pod.spec is not None else ""

    def gone_or_terminating(self, name: str) -> bool:
        pod = self.read(name)
        return pod is None or (pod.metadata is not None and pod.metadata.deletion_timestamp is not None)

    def events_for(self, name: str) -> list[client.CoreV1Event]:
        items = self.core.list_namespaced_event(self.namespace).items
        return [e for e in items if e.involved_object is not None and e.involved_object.name == name]

    def reasons_for(self, name: str) -> list[str]:
        return [str(e.reason) for e in self.events_for(name)]

    def wait(self, predicate: Callable[[], T], timeout: float | None = None, what: str = "condition") -> T:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def free_cpu(self, loop: SchedulerLoop, node: str) -> int:
        """Unrequested CPU (milli) on `node`, as the loop's cache accounts it."""
        nodes = {n.name: n for n in loop.cache.nodes()}
        used = sum(p.request.cpu_milli for p in loop.cache.pods() if p.node == node)
        return nodes[node].cpu_milli - used

    def schedulable_node(self, loop: SchedulerLoop, *, gpus: bool = False) -> str:
        """A ready, schedulable, untainted node (with GPUs when asked) with the most free CPU."""
        nodes = [n for n in loop.cache.nodes() if not n.unschedulable and not n.taints and bool(n.gpus) == gpus]
        assert nodes, "no schedulable untainted node"
        return max(nodes, key=lambda n: (self.free_cpu(loop, n.name), n.name)).name

    def close(self) -> None:
        for loop in self.loops:
            loop.stop()
        for elector in self.electors:
            elector.stop(release=False)
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except ApiException as exc:
                if exc.status != 404:
                    raise


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def bound_pods(loop: SchedulerLoop) -> list[Pod]:
    return [p for p in loop.cache.pods() if p.node]
