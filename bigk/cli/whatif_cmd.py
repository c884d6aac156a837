"""`bigk whatif SPEC.yaml`, and how start-time estimates read in the CLI (explain, describe, run --dry-run).

The service answers (bigk.service.eta); nothing is created. Times are shown in
local time with the distance from now, the range as p10..p90 of the forecast.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from bigk.durations import span as brief_span
from bigk.errors import BigkError, UsageError


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def _rel(ts: float, now: float) -> str:
    delta = ts - now
    return "now" if delta < 1 else f"in {brief_span(delta)}"


def eta_range(eta: dict[str, Any], now: float | None = None) -> str:
    """'ETA 14:05:10 (in 3m), p10..p90 14:03:00..14:09:30' or why there is none."""
    now = time.time() if now is None else now
    start, lo, hi = eta.get("eta"), eta.get("eta_low"), eta.get("eta_high")
    if start is None:
        return "ETA unknown (no start within the forecast horizon)"
    text = f"ETA {_clock(start)} ({_rel(start, now)})"
    if lo is not None and hi is not None:
        text += f", p10..p90 {_clock(lo)}..{_clock(hi)} ({_rel(lo, now)}..{_rel(hi, now)})"
    return text


def eta_lines(eta: dict[str, Any] | None, now: float | None = None) -> list[str]:
    """The lines `bigk explain` and `describe run` add for a waiting run (several clusters: its cluster's line; a
    run held by the dispatcher: the soonest cluster's estimate, 'if sent to CLUSTER', then each other cluster's)."""
    if not eta:
        return []
    if eta.get("held"):
        return held_lines(eta, now)
    where = f" on cluster {eta['cluster']}" if eta.get("cluster") else ""
    return [f"position {eta['position']} of {eta['waiting']} waiting runs{where}, {eta['queue_position']} of "
            f"{eta['queue_waiting']} in queue {eta['queue']}",
            eta_range(eta, now),
            f"waits for: {eta['waits_for']}"]


def held_lines(eta: dict[str, Any], now: float | None = None) -> list[str]:
    """A held run's estimate (position among the held runs, the soonest cluster's ETA and range, what it would
    wait for there), then one line per other cluster that would take it."""
    now = time.time() if now is None else now
    where = eta.get("if_sent_to")
    others = {name: row for name, row in (eta.get("clusters") or {}).items() if name != where}
    lines = [f"held by the dispatcher, not sent to a cluster yet: {eta['position']} of {eta['waiting']} held runs, "
             f"{eta['queue_position']} of {eta['queue_waiting']} in queue {eta['queue']}",
             f"{eta_range(eta, now)}, if sent to {where}" if where else eta_range(eta, now),
             f"waits for: {eta['waits_for']}"]
    lines += [f"if sent to {name}: {eta_range(row, now)}" for name, row in others.items()]
    return lines


def eta_cell(eta: dict[str, Any] | None, now: float | None = None) -> str:
    """The ETA column of `get runs` / `get queue`: 'in 3m' ('-' when none); a held run's: 'in 3m if sent to NAME'."""
    if not eta or eta.get("eta") is None:
        return "-"
    cell = _rel(eta["eta"], time.time() if now is None else now)
    return f"{cell} if sent to {eta['if_sent_to']}" if eta.get("held") and eta.get("if_sent_to") else cell


def whatif_lines(ans: dict[str, Any], now: float | None = None) -> list[str]:
    """A what-if answer as lines for people (several clusters: the soonest cluster's answer, then each cluster's)."""
    now = time.time() if now is None else now
    head = f"job {ans['job']} (queue {ans['queue']}, priority {ans['priority']})"
    if ans.get("cluster"):
        head += f" on cluster {ans['cluster']}"
    lines = []
    if ans.get("never_fits"):
        lines.append(f"{head} would never start: {ans['never_fits']}")
    elif ans.get("starts_now"):
        lines.append(f"{head} {ans['waits_for']}")
    elif ans.get("eta") is None:
        lines.append(f"{head} would wait with no start in sight: {ans['waits_for']}")
    else:
        lines.append(f"{head} would wait: {eta_range(ans, now)}")
        lines.append(f"it would start {ans['waits_for']}")
    behind = ans.get("behind") or []
    if behind and not ans.get("starts_now"):
        shown = ", ".join(behind[:5]) + (f" and {len(behind) - 5} more" if len(behind) > 5 else "")
        lines.append(f"behind {len(behind)} waiting run(s) of queue {ans['queue']}: {shown}")
    if ans.get("preempts"):
        lines.append(f"it would preempt: {', '.join(ans['preempts'])}")
    if ans.get("placement"):
        per_node: dict[str, list[int]] = {}
        for p in ans["placement"]:
            per_node.setdefault(p["node"], []).extend(p["gpus"])
        where = "; ".join(n + (f" GPUs {','.join(map(str, sorted(g)))}" if g else "") for n, g in per_node.items())
        lines.append(f"placement: {where}")
    d = ans.get("duration") or {}
    if d:
        lines.append(f"expected to run {brief_span(d['mid'])} "
                     f"(p10..p90 {brief_span(d['low'])}..{brief_span(d['high'])})")
    lines += cluster_lines(ans, now)
    lines.append("(a forecast; nothing was created)")
    return lines


def cluster_lines(ans: dict[str, Any], now: float) -> list[str]:
    """Several clusters: where it would start soonest, and one line per cluster."""
    rows = ans.get("clusters")
    if not rows:
        return []
    takers = [r["cluster"] for r in rows if r["dispatch"] in ("chosen", "fits", "waits")]
    soonest = ans.get("cluster")
    lines = [f"soonest on cluster {soonest} (of {', '.join(takers)})" if soonest else "no cluster would take it now"]
    for r in rows:
        if r["dispatch"] not in ("chosen", "fits", "waits"):
            text = f"not a candidate: {r['reason']}"
        elif r["starts_now"]:
            text = "would start now"
        elif r["eta"] is None:
            text = "would wait, no start in sight"
        else:
            text = f"would wait: {eta_range(r, now)}"
        lines.append(f"  {r['cluster']}: {text}")
    return lines


def _load_spec(path: Path) -> dict[str, Any]:
    """The one SparkJob in `path`, validated locally (problems as FILE:LINE:COL like `bigk validate`)."""
    from bigk.spec.loader import load_file

    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    loaded = load_file(path)
    if loaded.problems:
        raise BigkError("; ".join(str(p) for p in loaded.problems[:3]))
    if len(loaded.jobs) != 1:
        raise UsageError(f"{path}: holds {len(loaded.jobs)} SparkJobs; whatif takes a file with exactly one")
    return dict(loaded.jobs[0].spec.model_dump(mode="json", exclude_none=True))


def register(app: typer.Typer) -> None:
    """Add `bigk whatif`."""
    from bigk.cli.api_access import SERVER_OPT, client
    from bigk.cli.output import OUTPUT_OPT, parse_output

    @app.command("whatif")
    def whatif(spec: Path = typer.Argument(..., help="A SparkJob YAML file (not yet submitted)."),
               server: str | None = SERVER_OPT, output: str = OUTPUT_OPT) -> None:
        """When a run of this spec would start if submitted now: where, behind whom, preempting what."""
        from bigk.cli import output as out

        fmt = parse_output(output)
        body = _load_spec(spec)
        ans = client(server).post_json("/whatif", body)
        if fmt.structured:
            out.dump(ans, fmt.style)
            return
        for line in whatif_lines(ans):
            typer.echo(line)
