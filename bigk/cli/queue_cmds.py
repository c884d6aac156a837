"""`bigk get queues` (the queue tree with guarantee, maximum, usage, borrowing and share) and `bigk describe queue`.

Registered as the `queues` kind of `bigk get` (so -o json|yaml|name|jsonpath, -l
and --sort-by work as for every kind); `describe queue NAME` adds the queue's
priority range and the gangs waiting in it, in the order the scheduler takes them,
each with its explanation.
"""

from __future__ import annotations

from typing import Any

import typer

from bigk.cli import output as out
from bigk.cli.output import KindInfo, OutputFormat, register_kind


def _amounts(values: dict[str, Any] | None) -> str:
    """{"cpu": 96, "memory": 384, "gpu": 16, "gpuByModel": {"A100": 8}} -> "96 CPU, 384Gi, 16 GPU (A100: 8)"."""
    if not values:
        return "-"
    parts = []
    if "cpu" in values:
        parts.append(f"{values['cpu']:g} CPU")
    if "memory" in values:
        parts.append(f"{values['memory']:g}Gi")
    if "gpu" in values:
        parts.append(f"{values['gpu']:g} GPU")
    models = values.get("gpuByModel")
    if models:
        text = "(" + ", ".join(f"{m}: {v:g}" for m, v in models.items()) + ")"
        if "gpu" in values:
            parts[-1] += f" {text}"
        else:
            parts.append(f"GPU {text}")
    return ", ".join(parts) or "-"


def _used(q: dict[str, Any]) -> dict[str, Any]:
    """Allocated resources, leaving out zeros unless the queue has a limit on them (so idle queues read '-')."""
    limited = set(q["guarantee"]) | set(q["max"])
    out = {r: v for r, v in q["allocated"].items() if r in ("cpu", "memory", "gpu") and (v or r in limited)}
    if q["allocated"].get("gpuByModel"):
        out["gpuByModel"] = q["allocated"]["gpuByModel"]
    return out


def queue_rows(items: list[dict[str, Any]], wide: bool, tty: bool) -> tuple[list[str], list[list[Any]]]:
    from bigk.cli.whatif_cmd import eta_cell

    cols = ["NAME", "GUARANTEE", "MAX", "ALLOCATED", "BORROWED", "SHARE", "RUNNING", "PENDING", "NEXT ETA"]
    if wide:
        cols += ["WEIGHT", "BORROW", "LEND", "DECLARED"]
    rows = []
    for q in items:
        name = "  " * q["depth"] + q["name"].rpartition(".")[2] if q["depth"] else q["name"]
        row = [name, _amounts(q["guarantee"]), _amounts(q["max"]), _amounts(_used(q)), _amounts(q["borrowed"]),
               f"{100 * q['dominant_share']:.1f}%", q["running_runs"], q["pending_runs"],
               eta_cell({"eta": q.get("next_eta")})]
        if wide:
            row += [f"{q['weight']:g}", "yes" if q["borrow"] else "no", "yes" if q["lend"] else "no",
                    "yes" if q["declared"] else "no (implicit)"]
        rows.append(row)
    return cols, rows


QUEUES = KindInfo("queues", "queue", "Queue", "/queues", queue_rows, lambda q: q["name"], short=("q", "queuetree"),
                  labels=lambda q: {"parent": q["parent"], "leaf": str(q["leaf"]).lower(),
                                    "declared": str(q["declared"]).lower()},
                  detail_path="/queues/{name}", empty="No queues.", watchable=True)


def _priority(prio: dict[str, Any] | None) -> str:
    """'default 20, range 0..100'; a bound that is the spec's own limit (+-1,000,000) is left out."""
    if not prio:
        return "-"
    parts = [f"default {prio['default']}"] if prio["default"] is not None else ["no default (jobs keep their own)"]
    low, high = prio["min"] if prio["min"] > -1_000_000 else None, prio["max"] if prio["max"] < 1_000_000 else None
    if low is not None or high is not None:
        parts.append(f"range {'' if low is None else low}..{'' if high is None else high}")
    return ", ".join(parts)


def _products(products: dict[str, float] | None) -> str:
    """Where the queue's GPUs are: {"NVIDIA-A100-SXM4-80GB": 4} -> "4 on NVIDIA-A100-SXM4-80GB"."""
    if not products:
        return "-"
    return ", ".join(f"{v:g} on {p}" for p, v in products.items())


def describe_queue(client: Any, name: str, fmt: OutputFormat) -> None:
    """Print one queue and its waiting gangs (JSON/YAML: the API's object)."""
    from bigk.cli.api_access import path_segment as _q

    data = client.get(f"/queues/{_q(name)}")
    if not fmt.tabular:
        out.emit(QUEUES, [data], fmt, single=True)
        return
    prio = data.get("priority")
    lines = [
        f"Queue:       {data['name']}" + ("" if data["declared"] else "  (not declared: weight 1, no limits)"),
        f"Parent:      {data['parent'] or '-'}",
        f"Children:    {', '.join(data['children']) or '-'}",
        f"Weight:      {data['weight']:g}   borrow: {'yes' if data['borrow'] else 'no'}   "
        f"lend: {'yes' if data['lend'] else 'no'}",
        f"Priority:    {_priority(prio)}",
        f"Guarantee:   {_amounts(data['guarantee'])}",
        f"Max:         {_amounts(data['max'])}",
        f"Allocated:   {_amounts(_used(data))}",
        f"GPU models:  {_products(data['allocated'].get('gpuByProduct'))}",
        f"Borrowed:    {_amounts(data['borrowed'])}",
        f"Share:       {100 * data['dominant_share']:.1f}% of the cluster (dominant resource)",
        f"Runs:        {data['running_runs']} running, {data['pending_runs']} pending",
        f"Waiting:     {len(data['waiting'])} gang(s), in the order the scheduler takes them",
    ]
    for i, w in enumerate(data["waiting"], 1):
        who = f"run {w['run']} ({w['job']})" if w["run"] else w["gang"]
        lines.append(f"  {i}. {who}  queue {w['queue']}  priority {w['priority']}  [{w['state']}]")
        lines.append(f"     {w['explanation']}")
    typer.echo("\n".join(lines))


def register(app: typer.Typer) -> None:
    """Make `queues` a kind of `bigk get` (describe queue is routed here by ops_cmds)."""
    register_kind(QUEUES)
