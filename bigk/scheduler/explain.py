"""One-line, actionable reasons for waiting work.

The same text feeds Kubernetes Events, the HTTP API and the CLI, e.g.
`gang needs 1 driver + 8 executors (8 GPUs A100); 5 executors fit; 0/40 nodes have
2 free GPUs: 31 insufficient nvidia.com/gpu, 6 GPU model mismatch, 3 unhealthy GPU`.
"""

from __future__ import annotations

from bigk.cluster.model import Role
from bigk.scheduler.filters import describe_request
from bigk.scheduler.placement import Failure
from bigk.scheduler.types import Explanation
from bigk.scheduler.units import Unit


def amount(resource: str, value: int) -> str:
    """A queue quantity for people: "cpu" millicores and "gpu" milli-GPU as whole units, memory in MiB."""
    if resource == "memory":
        return f"{value} MiB"
    unit = "GPU" if resource == "gpu" else "CPU"
    n = value / 1000
    return f"{n:g} {unit}" + ("s" if n != 1 else "")


def explain(unit: Unit, state: str, failure: Failure | None, nodes_total: int, detail: str = "",
            victims: int = 0) -> Explanation:
    """Build the structured explanation and its message for a waiting unit."""
    drivers = 1 if unit.driver_pending else 0
    executors = unit.executors if unit.gang else 0
    gpus = sum(it.request.gpu_count for it in unit.items)
    models = sorted({m for it in unit.items for m in it.request.gpu_models})
    executors_fit = 0
    if failure is not None and unit.gang:
        before = unit.items[: failure.index]
        executors_fit = sum(1 for it in before if it.pod is None or it.pod.role is Role.EXECUTOR)
    exp = Explanation(
        gang=unit.name, queue=unit.queue, priority=unit.priority, state=state, drivers=drivers,
        executors=executors, executors_fit=executors_fit, gpus=gpus, gpu_models=tuple(models),
        nodes_total=nodes_total, nodes_fit=failure.nodes_fit if failure else 0,
        failing_request=failure.item.request if failure else None,
        reasons=dict(failure.reasons) if failure else {}, victims=victims)
    exp.message = _message(unit, exp, failure, detail)
    return exp


def behind(head: str | None) -> str:
    """The last part of a behind-head explanation."""
    return f"behind {head}, which holds room"


def behind_another(exp: Explanation, was: str, head: str | None) -> Explanation | None:
    """`exp` (behind `was`) behind `head` instead, without rebuilding it (a backlog's parked units are re-told
    every cycle the head changes); None if its message does not end as `behind` writes it."""
    return retold(exp, behind(was), behind(head))


def retold(exp: Explanation, old: str, new: str) -> Explanation | None:
    """`exp` with its message's ending `old` replaced by `new` (None if it does not end so): a shallow copy,
    without copy.copy's generic machinery (a hot path: every parked unit when the head changes)."""
    message = exp.message
    if not message.endswith(old):
        return None
    fields = exp.__dict__.copy()
    fields["message"] = message[: len(message) - len(old)] + new
    out = Explanation.__new__(Explanation)
    out.__dict__ = fields
    return out


def _need(unit: Unit, exp: Explanation) -> str:
    parts = []
    if unit.gang and (exp.drivers or exp.executors):
        if exp.drivers:
            parts.append("1 driver")
        if exp.executors:
            parts.append(f"{exp.executors} executor" + ("s" if exp.executors != 1 else ""))
        head = "gang needs " + " + ".join(parts)
    else:
        req = unit.items[0].request
        head = f"pod needs {req.cpu_milli / 1000:g} CPU + {req.memory_mib} MiB"
    fractions = sum(1 for it in unit.items if it.request.is_fractional)
    whole = exp.gpus - fractions
    gpu_bits = []
    if whole:
        gpu_bits.append(f"{whole} GPU" + ("s" if whole != 1 else ""))
    if fractions:
        gpu_bits.append(f"{fractions} GPU share" + ("s" if fractions != 1 else ""))
    if gpu_bits:
        head += " (" + " + ".join(gpu_bits) + (" " + "|".join(exp.gpu_models) if exp.gpu_models else "") + ")"
    return head


def _message(unit: Unit, exp: Explanation, failure: Failure | None, detail: str) -> str:
    parts = [_need(unit, exp)]
    if failure is not None:
        if unit.gang and exp.drivers and failure.index == 0:
            parts.append("driver does not fit")
        elif unit.gang and exp.executors:
            parts.append(f"{exp.executors_fit} executor" + ("s" if exp.executors_fit != 1 else "") + " fit")
        text = f"{failure.nodes_fit}/{exp.nodes_total} nodes have {describe_request(failure.item.request)}"
        if failure.reasons:
            text += ": " + ", ".join(f"{n} {r}" for r, n in failure.reasons.items())
        parts.append(text)
    if detail:
        parts.append(detail)
    return "; ".join(parts)
