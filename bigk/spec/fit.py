"""Does a job fit the configured cluster at all? Checked at validate time, not at 3 a.m.

A pod that no node can ever hold would wait forever; a gang whose minimum needs
more than all eligible nodes together would too. Both are reported with the
reason most nodes gave, so the user knows which figure to change.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from bigk.cluster.gpu_labels import OWNER_BIGK, OWNER_DEVICE_PLUGIN, model_allowed
from bigk.cluster.labels import CONDITION_TAINT_KEYS
from bigk.cluster.model import Node, PodRequest, Toleration
from bigk.cluster.quantity import format_mib, format_milli
from bigk.spec.gang import node_selector_for, pod_request, tolerations_for
from bigk.spec.model import JobSpec


def describe(req: PodRequest) -> str:
    text = f"cpu={format_milli(req.cpu_milli)} memory={format_mib(req.memory_mib)}"
    if req.is_fractional:
        text += f" gpu={req.gpu_milli / 1000:g} gpu-memory={format_mib(req.gpu_memory_mib)}"
    elif req.is_gpu:
        text += f" gpu={req.gpu_count}"
    if req.gpu_models:
        text += f" gpu-model={'|'.join(sorted(req.gpu_models))}"
    return text


def _tolerated(node: Node, tolerations: Sequence[Toleration]) -> bool:
    """Lasting taints only: a cordoned or not-ready node (its condition taints) may hold the pod later."""
    return all(
        taint.effect == "PreferNoSchedule" or taint.key in CONDITION_TAINT_KEYS
        or any(t.tolerates(taint) for t in tolerations)
        for taint in node.taints
    )


def reject_reason(node: Node, req: PodRequest, selector: dict[str, str], tolerations: Sequence[Toleration]) -> str:
    """Why `node` can never hold the pod, or '' if it can (when empty)."""
    if any(node.labels.get(k) != v for k, v in selector.items()):
        return "node selector does not match"
    if not _tolerated(node, tolerations):
        return "taint not tolerated"
    if req.cpu_milli > node.cpu_milli:
        return "too little CPU"
    if req.memory_mib > node.memory_mib:
        return "too little memory"
    if req.is_gpu:
        if not node.gpus:
            return "no GPUs"
        if not model_allowed(node.gpu_model, req.gpu_models):
            return "GPU model not allowed"
        if node.gpu_owner == (OWNER_DEVICE_PLUGIN if req.is_fractional else OWNER_BIGK):
            return "GPUs assigned by the device plugin" if req.is_fractional else "GPUs shared by bigk"
        if req.gpu_count > len(node.gpus):
            return "too few GPUs"
        if req.is_fractional and req.gpu_memory_mib > max(g.memory_mib for g in node.gpus):
            return "too little GPU memory"
    return ""


def _role_problem(job: JobSpec, role: str, nodes: Sequence[Node], count: int) -> tuple[str, int] | None:
    req = pod_request(job, role)
    selector = node_selector_for(job, role)
    tolerations = [t.to_cluster() for t in tolerations_for(job, role)]
    reasons = Counter(reject_reason(n, req, selector, tolerations) for n in nodes)
    eligible = [n for n in nodes if not reject_reason(n, req, selector, tolerations)]
    if not eligible:
        summary = ", ".join(f"{c} {r}" for r, c in reasons.most_common())
        article = "an" if role == "executor" else "a"
        return f"{article} {role} pod needs {describe(req)} but no node of the cluster can hold it ({summary})", 0
    if count <= 1:
        return None
    cpu = sum(n.cpu_milli for n in eligible) // max(req.cpu_milli, 1)
    mem = sum(n.memory_mib for n in eligible) // max(req.memory_mib, 1)
    fit = min(cpu, mem)
    if req.is_gpu:
        per_gpu = 1000 // req.gpu_milli if req.is_fractional else 1
        gpus = sum(len(n.gpus) for n in eligible) * per_gpu // req.gpu_count
        fit = min(fit, gpus)
    if fit < count:
        return (
            f"the gang minimum needs {count} {role} pods of {describe(req)}, but all {len(eligible)} eligible "
            f"nodes together hold at most {fit}",
            fit,
        )
    return None


def fit_problems(job: JobSpec, nodes: Sequence[Node]) -> list[tuple[str, str]]:
    """(field path, message) for every way the job can never be placed on `nodes`."""
    out = []
    driver = _role_problem(job, "driver", nodes, 1)
    if driver:
        out.append(("spec.driver", driver[0]))
    executor = _role_problem(job, "executor", nodes, job.spec.executor.gang_min)
    if executor and job.spec.executor.gang_min > 0:
        count_field = "minInstances" if job.spec.executor.minInstances is not None else "instances"
        field = "spec.executor" if executor[1] == 0 else f"spec.executor.{count_field}"
        out.append((field, executor[0]))
    return out
