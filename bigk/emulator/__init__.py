"""The embedded emulated cluster: a development and test fixture, not Kubernetes.

`EmulatedCluster(nodes, ...)` serves a Kubernetes-compatible REST API on loopback
(enough for the official Python client, kubectl and the fabric8 client inside
`spark-submit`) with a simulated kubelet, Spark driver and GPUs:

    with EmulatedCluster(load_cluster("jobspecs/cluster.yaml"), time_scale=0.1) as cluster:
        cluster.write_kubeconfig("kubeconfig")
        cluster.faults.add("POST", r"/binding$", 500, count=1)
        ...

What it does not do: no authentication, authorization, TLS, admission webhooks,
quotas or LimitRanges; no protobuf, no HTTP/2, no server-side field ownership
(apply is create-or-merge); no PodDisruptionBudgets (eviction always deletes);
no real containers, images, logs, exec or port-forward; no controllers besides
owner-reference garbage collection (no Deployments, Jobs, ReplicaSets, Endpoints);
no scheduler (pods wait for a binding unless created with spec.nodeName) and no
resource accounting on nodes (the kubelet runs whatever is bound to it); lists
always serve the latest state (an older Exact version is 410 Gone, and
`limit`/`continue` pages are not snapshot-consistent); dryRun only on create;
watch history is a fixed number of events per resource, not a time window;
state lives in memory: it survives `stop()` and `start()` of the same object (a
restart of the API server and node agents, pods running on) and is lost with the
process. Simulated Spark covers static
executor allocation only (no dynamic allocation, no shuffle, no real tasks).
"""

from bigk.emulator.cluster import EmulatedCluster
from bigk.emulator.errors import ApiError, EmulatorError
from bigk.emulator.faults import Faults

__all__ = ["ApiError", "EmulatedCluster", "EmulatorError", "Faults"]
