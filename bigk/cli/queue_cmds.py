"""`bigk get queues` (the queue tree with guarantee, maximum, usage, borrowing and share) and `bigk describe queue`.

Registered as the `queues` kind of `bigk get` (so -o json|yaml|name|jsonpath, -l
and --sort-by work as for every kind); `describe queue NAME` adds the queue's
priority range and the gangs waiting in it, in the order the scheduler takes them,
each with its explanation.

Over several clusters the API's rows are sums with a per-cluster breakdown
(`clusters`): the table's ALLOCATED, BORROWED and SHARE are the sums (`-o wide`
adds BY CLUSTER), `--cluster NAME` asks for one cluster's figures, and `describe
queue` adds a block per cluster with its waiting gangs in that cluster's order.
With one cluster the output is as it was.
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


def _used(q: dict[str, Any], allocated: dict[str, Any] | None = None) -> dict[str, Any]:
    """Allocated resources (the queue's, or `allocated`: its part in one cluster), leaving out zeros unless the
    queue has a limit on them (so idle queues read '-')."""
    allocated = q["allocated"] if allocated is None else allocated
    limited = set(q["guarantee"]) | set(q["max"])
    out = {r: v for r, v in allocated.items() if r in ("cpu", "memory", "gpu") and (v or r in limited)}
    if allocated.get("gpuByModel"):
        out["gpuByModel"] = allocated["gpuByModel"]
    return out


def _by_cluster(q: dict[str, Any]) -> str:
    """Several clusters: 'onprem: 2 GPU; cloud-h100: -, 1 waiting' (one cluster: '-')."""
    parts = q.get("clusters") or {}
    return "; ".join(f"{c}: {_amounts(_used(q, p['allocated']))}"
                     + (f", {p['waiting_gangs']} waiting" if p.get("waiting_gangs") else "")
                     for c, p in parts.items()) or "-"


def queue_rows(items: list[dict[str, Any]], wide: bool, tty: bool) -> tuple[list[str], list[list[Any]]]:
    from bigk.cli.whatif_cmd import eta_cell

    cols = ["NAME", "GUARANTEE", "MAX", "ALLOCATED", "BORROWED", "SHARE", "RUNNING", "PENDING", "NEXT ETA"]
    several = any(q.get("clusters") for q in items)
    if wide:
        cols += ["WEIGHT", "BORROW", "LEND", "DECLARED"] + (["BY CLUSTER"] if several else [])
    rows = []
    for q in items:
        name = "  " * q["depth"] + q["name"].rpartition(".")[2] if q["depth"] else q["name"]
        row = [name, _amounts(q["guarantee"]), _amounts(q["max"]), _amounts(_used(q)), _amounts(q["borrowed"]),
               f"{100 * q['dominant_share']:.1f}%", q["running_runs"], q["pending_runs"],
               eta_cell({"eta": q.get("next_eta")})]
        if wide:
            row += [f"{q['weight']:g}", "yes" if q["borrow"] else "no", "yes" if q["lend"] else "no",
                    "yes" if q["declared"] else "no (implicit)"] + ([_by_cluster(q)] if several else [])
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


def describe_queue(client: Any, name: str, fmt: OutputFormat, cluster: str | None = None) -> None:
    """Print one queue and its waiting gangs (JSON/YAML: the API's object); several clusters: a block per cluster
    (`cluster`: that cluster's figures alone)."""
    from bigk.cli.api_access import path_segment as _q

    data = client.get(f"/queues/{_q(name)}", **({"cluster": cluster} if cluster else {}))
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
        f"Share:       {100 * data['dominant_share']:.1f}% of {_of(data.get('clusters'))} (dominant resource)",
        f"Runs:        {data['running_runs']} running, {data['pending_runs']} pending",
    ]
    clusters: dict[str, Any] = data.get("clusters") or {}
    if not clusters:
        lines.append(f"Waiting:     {len(data['waiting'])} gang(s), in the order the scheduler takes them")
        lines += _waiting_lines(data["waiting"], "  ")
        typer.echo("\n".join(lines))
        return
    lines.append(f"Waiting:     {len(data['waiting'])} gang(s), by cluster below")
    lines.append("Clusters:")
    for c, p in clusters.items():
        waiting = [w for w in data["waiting"] if w.get("cluster") == c]
        lines += [
            f"  {c}:" + ("" if p.get("reachable", True) else "  (unreachable: its scheduler's last figures)"),
            f"    Allocated:  {_amounts(_used(data, p['allocated']))}",
            f"    Borrowed:   {_amounts(p['borrowed'])}",
            f"    Share:      {100 * p['dominant_share']:.1f}% of {c} (dominant resource)",
            f"    Max here:   {_amounts(p['max'])}",
            f"    Runs:       {p['running_runs']} running, {p['pending_runs']} pending",
            f"    Waiting:    {len(waiting)} gang(s), in the order {c}'s scheduler takes them",
        ]
        lines += _waiting_lines(waiting, "      ")
    typer.echo("\n".join(lines))


def _of(clusters: dict[str, Any] | None) -> str:
    """What the share is of: the cluster, one named cluster, or several clusters' capacity together."""
    if not clusters:
        return "the cluster"
    if len(clusters) == 1:
        return f"cluster {next(iter(clusters))}"
    return f"the {len(clusters)} clusters' capacity together"


def _waiting_lines(waiting: list[dict[str, Any]], indent: str) -> list[str]:
    lines = []
    for i, w in enumerate(waiting, 1):
        who = f"run {w['run']} ({w['job']})" if w["run"] else w["gang"]
        lines.append(f"{indent}{i}. {who}  queue {w['queue']}  priority {w['priority']}  [{w['state']}]")
        lines.append(f"{indent}   {w['explanation']}")
    return lines


def register(app: typer.Typer) -> None:
    """Make `queues` a kind of `bigk get` (describe queue is routed here by ops_cmds)."""
    register_kind(QUEUES)
