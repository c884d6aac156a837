"""Does a job fit the configured cluster at all? Checked at validate time, not at 3 a.m.

A pod that no node can ever hold would wait forever; a gang whose minimum needs
more than all eligible nodes together would too. Both are reported with the
reason most nodes gave, so the user knows which figure to change. The judgement
is the scheduler's own fit rule (`bigk.cluster.fit.Fit`) on empty nodes; only
lasting refusals count: a cordoned or not-ready node (its condition taints) may
hold the pod later.
"""

from __future__ import annotations

from collections.abc import Sequence

from bigk.cluster.labels import CONDITION_TAINT_KEYS
from bigk.cluster.model import Node, PodRequest, Toleration
from bigk.cluster.quantity import format_mib, format_milli
from bigk.cluster.state import ClusterState
from bigk.spec.gang import node_selector_for, pod_request, tolerations_for
from bigk.spec.model import JobSpec

# Condition taints come and go with the node's health; they never make a job unplaceable for good.
PASSING_TAINTS = tuple(Toleration(key=key, operator="Exists") for key in sorted(CONDITION_TAINT_KEYS))


def describe(req: PodRequest) -> str:
    text = f"cpu={format_milli(req.cpu_milli)} memory={format_mib(req.memory_mib)}"
    if req.is_fractional:
        text += f" gpu={req.gpu_milli / 1000:g} gpu-memory={format_mib(req.gpu_memory_mib)}"
    elif req.is_gpu:
        text += f" gpu={req.gpu_count}"
    if req.gpu_models:
        text += f" gpu-model={'|'.join(sorted(req.gpu_models))}"
    return text


def _role_problem(job: JobSpec, role: str, state: ClusterState, count: int) -> tuple[str, int] | None:
    req = pod_request(job, role)
    selector = node_selector_for(job, role)
    tolerations = (*[t.to_cluster() for t in tolerations_for(job, role)], *PASSING_TAINTS)
    fit = state.fit(None)
    static = state.static_mask(selector, tolerations, req.gpu_models)
    eligible = fit.nodes(req, static, fit.empty(), live=False, cordon=False)
    if not eligible.any():
        _, reasons = fit.reasons(req, selector, tolerations, usage=fit.empty(), live=False, cordon=False)
        summary = ", ".join(f"{c} {r}" for r, c in reasons.items())
        article = "an" if role == "executor" else "a"
        return f"{article} {role} pod needs {describe(req)} but no node of the cluster can hold it ({summary})", 0
    if count <= 1:
        return None
    cpu = int(state.cpu_cap[eligible].sum()) // max(req.cpu_milli, 1)
    mem = int(state.mem_cap[eligible].sum()) // max(req.memory_mib, 1)
    most = min(cpu, mem)
    if req.is_gpu:
        per_gpu = 1000 // req.gpu_milli if req.is_fractional else 1
        most = min(most, int(state.gpu_count[eligible].sum()) * per_gpu // req.gpu_count)
    if most < count:
        return (
            f"the gang minimum needs {count} {role} pods of {describe(req)}, but all {int(eligible.sum())} eligible "
            f"nodes together hold at most {most}",
            most,
        )
    return None


def fit_problems(job: JobSpec, nodes: Sequence[Node] | ClusterState) -> list[tuple[str, str]]:
    """(field path, message) for every way the job can never be placed on `nodes`."""
    state = nodes if isinstance(nodes, ClusterState) else ClusterState(nodes)
    out = []
    driver = _role_problem(job, "driver", state, 1)
    if driver:
        out.append(("spec.driver", driver[0]))
    executor = _role_problem(job, "executor", state, job.spec.executor.gang_min)
    if executor and job.spec.executor.gang_min > 0:
        count_field = "minInstances" if job.spec.executor.minInstances is not None else "instances"
        field = "spec.executor" if executor[1] == 0 else f"spec.executor.{count_field}"
        out.append((field, executor[0]))
    return out
