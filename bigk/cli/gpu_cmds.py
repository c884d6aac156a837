"""`bigk get gpus --idle`: GPUs held by runs yet idle for the whole window, and GPUs busy without bigk.

Reads `GET /api/v1/gpus/idle` (bigk.service.gpu_watch): the leader keeps a window of every GPU's
readings; a GPU is idle once every reading for `--gpu-idle-minutes` (serve) stayed below
`--gpu-idle-threshold`. Over several clusters (bigk serve --clusters / --emulate) every cluster's
GPUs are found and a CLUSTER column comes first; `--cluster NAME` asks for one.
"""

from __future__ import annotations

from typing import Any

import typer

from bigk.cli import output as out
from bigk.errors import UsageError


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f}m" if seconds >= 60 else f"{seconds:.0f}s"


def _several(data: dict[str, Any]) -> bool:
    """Found by bigk serve over several clusters (the rule of `get runs`: a cluster not named `default`)."""
    return any(name != "default" for name in data.get("clusters") or {})


def idle_rows(data: dict[str, Any], wide: bool) -> tuple[list[str], list[list[Any]]]:
    """One row per (idle GPU, pod holding it); then GPUs busy with no bigk pod, RUN shown as '(not bigk)'. Several
    clusters: CLUSTER first."""
    cols = ["NODE", "GPU", "POD", "RUN", "JOB", "QUEUE", "IDLE FOR", "MEAN UTIL"]
    if wide:
        cols += ["UUID", "POOL"]
    rows: list[list[Any]] = []
    for gpu in data["idle"]:
        for holder in gpu["holders"]:
            row = [gpu["node"], gpu["gpu"], holder["pod"], holder["run"], holder["job"], holder["queue"],
                   _minutes(gpu["idle_s"]), f"{gpu['mean_utilization_pct']:.1f}%"]
            rows.append(row + ([gpu["uuid"], gpu["pool"]] if wide else []))
    for gpu in data["foreign"]:
        row = [gpu["node"], gpu["gpu"], ",".join(gpu["other_pods"]) or "(no pod)", "(not bigk)", "", "",
               f"busy {_minutes(gpu['busy_s'])}", f"{gpu['utilization_pct']:.1f}%"]
        rows.append(row + ([gpu["uuid"], gpu["pool"]] if wide else []))
    if _several(data):
        cols.insert(0, "CLUSTER")
        found = [gpu for gpu in data["idle"] for _ in gpu["holders"]] + list(data["foreign"])
        for row, gpu in zip(rows, found, strict=True):
            row.insert(0, gpu.get("cluster") or "-")
    return cols, rows


def show_idle(client: Any, kind: str, fmt: out.OutputFormat, headers: bool = True,
              cluster: str | None = None) -> None:
    """Print the idle GPUs (`bigk get gpus --idle [--cluster NAME]`)."""
    if out.find_kind(kind.partition("/")[0]).plural != "gpus":
        raise UsageError("--idle goes with gpus: bigk get gpus --idle")
    data = client.get("/gpus/idle", **({"cluster": cluster} if cluster else {}))
    if fmt.structured:
        out.dump(data, fmt.style)
        return
    if not fmt.tabular:
        raise UsageError("bigk get gpus --idle prints -o table, wide, json or yaml")
    cols, rows = idle_rows(data, fmt.style == "wide")
    window = f"{data['idle_minutes']:g} minutes below {data['threshold_pct']:g}%" if data["idle_minutes"] else ""
    out.table(cols, rows, f"No idle GPUs ({window})." if window else "No idle GPUs.", headers)
    if rows and headers and window:
        typer.echo(f"idle = every reading for {window} (bigk serve --gpu-idle-minutes, --gpu-idle-threshold)",
                   err=True)
