"""The operator CLI: `bigk get|describe|explain|run|suspend|resume|cancel|cordon|uncordon|drain|history`.

kubectl habits: `-o table|wide|json|yaml`, `--server` or `$BIGK_SERVER`, colour
only on a terminal. Exit codes: 0 ok, 1 error, 2 usage, 3 not found,
4 unauthorized, 5 server unreachable; every error is one line saying what to do.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from bigk.cli import output as out
from bigk.cli.api_access import SERVER_OPT, NoSuchName
from bigk.cli.api_access import client as _client
from bigk.cli.api_access import path_segment as _q
from bigk.cli.cluster_rows import CLUSTERS
from bigk.cli.output import OUTPUT_OPT, KindInfo, OutputFormat, UsageError, parse_output, register_kind
from bigk.durations import span as brief_span
from bigk.errors import BigkError
from bigk.service.runstate import RunState

TERMINAL = {"Succeeded", "Failed", "Cancelled", "TimedOut"}
_STATE_STYLE = {"Succeeded": "green", "Failed": "red", "TimedOut": "red", "Cancelled": "yellow",
                "Running": "cyan", "Admitted": "blue", "Submitted": "magenta", "Pending": "white",
                "Unknown": "yellow"}



def _console() -> Console:
    return out.console()


RUN_STATES = tuple(str(s) for s in RunState)


def _run_state(state: str | None) -> str | None:
    """`--state running` means Running; an unknown state is a usage error that lists the real ones."""
    if state is None:
        return None
    found = next((s for s in RUN_STATES if s.lower() == state.strip().lower()), None)
    if found is None:
        raise UsageError(f"--state {state!r} is not a run state; use one of {', '.join(RUN_STATES)}")
    return found


# ---- formatting -------------------------------------------------------------------------------


def age(ts: float | None, now: float | None = None) -> str:
    """Seconds since `ts` as kubectl does: 45s, 3m, 2h, 4d."""
    if ts is None:
        return "-"
    return span((now or time.time()) - ts)


def span(seconds: float | None) -> str:
    """Durations in tables, with tenths of a second below 10 s."""
    return brief_span(seconds, tenths_below=10)


def _until(ts: float | None) -> str:
    if ts is None:
        return "-"
    return "in " + span(ts - time.time())


def _state(state: str, tty: bool) -> str:
    style = _STATE_STYLE.get(state)
    return f"[{style}]{state}[/]" if style and tty else state


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> None:
    out.table(columns, rows, empty)


def _run_duration(run: dict[str, Any]) -> float | None:
    start = run.get("running_at")
    if start is None:
        return None
    return (run.get("finished_at") or time.time()) - start


def _wait(run: dict[str, Any]) -> float | None:
    sub = run.get("submitted_at")
    if sub is None:
        return None
    return (run.get("running_at") or run.get("finished_at") or time.time()) - sub


def _jobs_rows(items: list[dict[str, Any]], wide: bool, tty: bool) -> tuple[list[str], list[list[Any]]]:
    cols = ["NAME", "QUEUE", "SCHEDULE", "SUSPENDED", "ACTIVE", "LAST RUN", "LAST STATE", "NEXT"]
    if wide:
        cols += ["TIMEZONE", "POLICY", "PRIORITY", "FILE"]
    rows = []
    for j in items:
        row = [j["name"], j["queue"], j["schedule"], "yes" if j["suspended"] else "no", j["active_runs"],
               j["last_run"], _state(j["last_state"], tty) if j["last_state"] else None, _until(j["next_fire"])]
        if wide:
            row += [j["time_zone"], j["concurrency_policy"], j["priority"], f"{j['file']}:{j['line']}"]
        rows.append(row)
    return cols, rows


def _runs_rows(items: list[dict[str, Any]], wide: bool, tty: bool) -> tuple[list[str], list[list[Any]]]:
    from bigk.cli.whatif_cmd import eta_cell

    cols = ["RUN", "JOB", "STATE", "ATTEMPT", "AGE", "WAIT", "ETA", "DURATION", "REASON"]
    clusters = _several_clusters(items)
    if clusters:  # bigk serve over several clusters: where each run went
        cols.insert(3, "CLUSTER")
    if wide:
        cols += ["TRIGGER", "QUEUE", "DRIVER", "PODS", "NODES"]
    rows = []
    for r in items:
        row = [r["id"], r["job"], _state(r["state"], tty), r["attempt"], age(r["created_at"]), span(_wait(r)),
               eta_cell(r.get("eta")), span(_run_duration(r)), (r.get("reason") or "")[:80]]
        if clusters:
            row.insert(3, r.get("cluster") or "-")
        if wide:
            nodes = sorted({p["node"] for p in r.get("pods", []) if p.get("node")})
            row += [r["trigger"], r["queue"], r["driver_pod"], len(r.get("pods", [])), ",".join(nodes)]
        rows.append(row)
    return cols, rows


def _several_clusters(runs: list[dict[str, Any]]) -> bool:
    """Whether the runs come from bigk serve over several clusters (a run on a cluster not named `default`, or one
    held by the dispatcher); with one cluster the listings stay as they were."""
    return any(r.get("cluster") not in (None, "", "default") or r.get("dispatch_reason") for r in runs)


def _queue_rows(items: list[dict[str, Any]], wide: bool, tty: bool) -> tuple[list[str], list[list[Any]]]:
    from bigk.cli.whatif_cmd import eta_cell

    cols = ["RUN", "JOB", "QUEUE", "PRIORITY", "STATE", "WAITING", "ETA", "WHY"]
    rows = [[q["run"], q["job"], q["queue"], q["priority"], _state(q["state"], tty), span(q["wait_s"]),
             eta_cell(q.get("eta")), _why(q) if wide else _short_why(q)] for q in items]
    return cols, rows


def _cluster_first(items: list[dict[str, Any]], cols: list[str], rows: list[list[Any]]) -> None:
    """Nodes and GPUs of bigk serve over several clusters: a CLUSTER column first (one cluster: no column)."""
    if _several_clusters(items):
        cols.insert(0, "CLUSTER")
        for item, row in zip(items, rows, strict=True):
            row.insert(0, item.get("cluster") or "-")


def _nodes_rows(items: list[dict[str, Any]], wide: bool, tty: bool) -> tuple[list[str], list[list[Any]]]:
    cols = ["NAME", "POOL", "STATUS", "CPU", "MEMORY", "GPUS", "BIGK PODS"]
    if wide:
        cols += ["GPU MODEL", "PODS", "TAINTS"]
    rows = []
    for n in items:
        status = ("Ready" if n["ready"] else "NotReady") + (",SchedulingDisabled" if n["unschedulable"] else "")
        if n.get("gpus_unhealthy"):
            status += f",{n['gpus_unhealthy']}GPUUnhealthy"
        row = [n["name"], n["pool"], status, f"{n['cpu_used_milli'] / 1000:g}/{n['cpu_milli'] / 1000:g}",
               f"{n['memory_used_mib'] / 1024:.0f}/{n['memory_mib'] / 1024:.0f}Gi",
               f"{n['gpus_used']:g}/{n['gpus']}" if n["gpus"] else "-", n["bigk_pods"]]
        if wide:
            row += [n["gpu_model"], n["pods"], ",".join(n["taints"])]
        rows.append(row)
    _cluster_first(items, cols, rows)
    return cols, rows


def _fmt(value: Any, suffix: str = "") -> str:
    return "-" if value is None else f"{value:g}{suffix}" if isinstance(value, float) else f"{value}{suffix}"


def _gpus_rows(items: list[dict[str, Any]], wide: bool, tty: bool) -> tuple[list[str], list[list[Any]]]:
    cols = ["NODE", "GPU", "MODEL", "ALLOCATED", "UTIL", "MEM FREE", "TEMP", "HEALTHY", "NOTES"]
    if wide:
        cols += ["UUID", "READING AGE", "PODS"]
    rows = []
    for g in items:
        healthy = "-" if g["healthy"] is None else ("yes" if g["healthy"] else "NO")
        if tty and g["healthy"] is False:
            healthy = "[red]NO[/]"
        mem = "-" if g["memory_free_mib"] is None else f"{g['memory_free_mib']}/{g['memory_mib']}Mi"
        row = [g["node"], g["index"], g["model"], f"{g['allocated_milli'] / 1000:g}", _fmt(g["utilization_pct"], "%"),
               mem, _fmt(g["temperature_c"], "C"), healthy, ",".join(g.get("notes", []))]
        if wide:
            row += [g["uuid"], _fmt(g["reading_age_s"], "s"), ",".join(g["pods"])]
        rows.append(row)
    _cluster_first(items, cols, rows)
    return cols, rows


def _run_labels(r: dict[str, Any]) -> dict[str, str]:
    out = {"job": r["job"], "queue": r["queue"], "state": r["state"], "trigger": r["trigger"],
           "namespace": r.get("namespace") or "default"}
    if r.get("cluster"):  # `-l cluster=onprem`
        out["cluster"] = r["cluster"]
    return out


def _gpu_labels(g: dict[str, Any]) -> dict[str, str]:
    out = {"node": g["node"], "pool": g.get("pool") or "default", "model": g["model"] or ""}
    out.update({note: "true" for note in g.get("notes", [])})
    if g.get("cluster"):  # `-l cluster=onprem`
        out["cluster"] = g["cluster"]
    return out


def _node_labels(n: dict[str, Any]) -> dict[str, str]:
    out = {"pool": n["pool"], "model": n.get("gpu_model") or "", "ready": str(n["ready"]).lower(),
           "unschedulable": str(n["unschedulable"]).lower()}
    if n.get("cluster"):  # `-l cluster=onprem`
        out["cluster"] = n["cluster"]
    return out


for _info in (
    KindInfo("jobs", "job", "Job", "/jobs", _jobs_rows, lambda j: j["name"], short=("sparkjob", "sparkjobs", "sj"),
             labels=lambda j: {"queue": j["queue"], "namespace": j["namespace"],
                               "suspended": str(j["suspended"]).lower()},
             namespaced=True, watchable=True, detail_path="/jobs/{name}"),
    KindInfo("runs", "run", "Run", "/runs", _runs_rows, lambda r: r["id"], short=("r",), labels=_run_labels,
             namespaced=True, watchable=True, detail_path="/runs/{name}"),
    KindInfo("queue", "pending", "PendingRun", "/queue", _queue_rows, lambda q: q["run"], short=("waiting",),
             labels=lambda q: {"job": q["job"], "queue": q["queue"], "state": q["state"]},
             watchable=True, empty="No queue."),
    KindInfo("nodes", "node", "Node", "/nodes", _nodes_rows, lambda n: n["name"], short=("no",),
             labels=_node_labels, watchable=True),
    KindInfo("gpus", "gpu", "GPU", "/gpus", _gpus_rows, lambda g: f"{g['node']}/{g['index']}", labels=_gpu_labels,
             watchable=True),
):
    register_kind(_info)
register_kind(CLUSTERS)  # bigk get clusters (bigk.cli.cluster_rows)


def _short_why(q: dict[str, Any]) -> str:
    """The queue table's WHY: cut to 100 characters, but a run that can never fit says so first."""
    text = q["explanation"]
    if q.get("never_fits"):
        text = f"NEVER FITS (bigk explain {q['run']}): {text}"
    return text[:100]


def _why(data: dict[str, Any]) -> str:
    """The explanation, and when the run can never fit the cluster, that too (the API keeps them apart)."""
    return data["explanation"] + (f"; {data['never_fits']}" if data.get("never_fits") else "")


def _show_problems(data: dict[str, Any]) -> None:
    """The served specs' problems, one `FILE:LINE:COL: field: message` line each, as `bigk validate` prints them."""
    for line in data["problems"]:
        typer.echo(line)
    if data.get("kept_jobs"):
        typer.echo(f"kept at their last good version: {', '.join(data['kept_jobs'])}")
        for v in data.get("kept_versions") or []:
            at = v.get("stored_at")
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)) if at is not None else "?"
            how = "restored from the state database after a restart" if v.get("restored") else "kept in memory"
            typer.echo(f"  {v['file']}: serving sha256 {v['sha256'][:12] or '?'} stored {when} ({how})")
    if not data["problems"]:
        typer.echo("No spec problems.")


def _warn_problems(client: Any) -> None:
    """After `get jobs`: a broken spec file contributes no jobs, so say so instead of letting them vanish quietly."""
    try:
        data = client.get("/problems")
    except BigkError:
        return
    if data["problems"]:
        kept = f" ({', '.join(data['kept_jobs'])} kept at their last good version)" if data.get("kept_jobs") else ""
        typer.echo(f"warning: {len(data['problems'])} problem(s) in the served job specs{kept}; "
                   "see `bigk get problems`", err=True)


def _describe_run(run: dict[str, Any], explanation: str) -> None:
    console = _console()
    tty = console.is_terminal
    lines = [f"Run:        {run['id']}", f"Job:        {run['job']}", f"State:      {_state(run['state'], tty)}",
             f"Attempt:    {run['attempt']}" + (f" (retry of {run['retry_of']})" if run.get("retry_of") else ""),
             f"Trigger:    {run['trigger']}", f"Queue:      {run['queue']}"]
    for label, key in (("Created", "created_at"), ("Submitted", "submitted_at"), ("Admitted", "admitted_at"),
                       ("Running", "running_at"), ("Finished", "finished_at")):
        if run.get(key):
            lines.append(f"{label + ':':<11} {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(run[key]))}"
                         f" ({age(run[key])} ago)")
    if _several_clusters([run]):
        lines.append(f"Cluster:    {run.get('cluster') or '- (not dispatched yet)'}")
        if run.get("dispatch_reason"):
            lines.append(f"Dispatch:   {run['dispatch_reason']}")
    lines.append(f"Driver:     {run.get('driver_pod') or '-'}")
    if run.get("driver_pod"):  # bigk.cli.runio_cmds
        lines += [f"Logs:       bigk logs {run['id']} [-f] [--executor N]", f"Spark UI:   bigk ui {run['id']}"]
    if run.get("spark_app_id"):
        lines.append(f"Spark app:  {run['spark_app_id']}")
    if run.get("reason"):
        lines.append(f"Reason:     {run['reason']}")
    lines.append(f"Why:        {explanation}")
    from bigk.cli.whatif_cmd import eta_lines

    lines += [f"{label:<11} {text}" for label, text in zip(("Position:", "ETA:", "Waits for:"),
                                                          eta_lines(run.get("eta")), strict=False)]
    console.print("\n".join(lines), markup=tty)
    pods = run.get("pods", [])
    if pods:
        console.print("Pods:")
        _table(["NAME", "ROLE", "NODE", "PHASE"], [[p["name"], p["role"], p["node"], p["phase"]] for p in pods], "")
    events = run.get("events", [])
    if events:
        console.print("Events:")
        _table(["AGE", "KIND", "MESSAGE"], [[age(e["at"]), e["kind"], e["message"]] for e in reversed(events)], "")


def _override_note(job: dict[str, Any]) -> str:
    if job.get("suspend_override") is None:
        return ""
    return f" (set by operator; `bigk resume {job['name']} --clear` hands it back to the spec)"


def _describe_job(job: dict[str, Any]) -> None:
    console = _console()
    tty = console.is_terminal
    lines = [f"Job:         {job['name']}", f"Namespace:   {job['namespace']}", f"Queue:       {job['queue']}",
             f"Priority:    {job['priority']}", f"Defined in:  {job['file']}:{job['line']}"]
    if job["schedule"]:
        lines += [f"Schedule:    {job['schedule']} ({job['time_zone']}), concurrencyPolicy {job['concurrency_policy']}",
                  f"Suspended:   {'yes' if job['suspended'] else 'no'}" + _override_note(job),
                  f"Next fire:   {_until(job['next_fire'])}"]
    else:
        lines.append("Schedule:    none (run it with `bigk run JOB`)")
    if job.get("kept"):
        lines.append("Spec:        its file is broken; bigk runs the last good version "
                     f"(`bigk validate {job['file']}`)")
    console.print("\n".join(lines), markup=tty)
    if job.get("problems"):
        console.print("Problems:")
        for line in job["problems"]:
            typer.echo(f"  {line}")
    if job.get("runs"):
        console.print("Recent runs:")
        cols, rows = _runs_rows(job["runs"], False, tty)
        _table(cols, rows, "")
    if job.get("events"):
        console.print("Events:")
        _table(["AGE", "KIND", "RUN", "MESSAGE"],
               [[age(e["at"]), e["kind"], e["run_id"], e["message"]] for e in reversed(job["events"])], "")


def _progress_table(run: dict[str, Any], explanation: str, tty: bool) -> Table:
    table = Table(title=f"run {run['id']} of {run['job']}: {_state(run['state'], tty)}", box=None, title_justify="left",
                  caption=explanation if run["state"] in ("Pending", "Submitted") else None, caption_justify="left")
    for col in ("POD", "ROLE", "NODE", "PHASE"):
        table.add_column(col)
    for pod in sorted(run.get("pods", []), key=lambda p: (p["role"] != "driver", p["name"])):
        table.add_row(pod["name"], pod["role"], pod["node"] or "(waiting for bigk)", _state(pod["phase"], tty))
    return table


def _follow(client: Any, run_id: str, timeout: float) -> dict[str, Any]:
    """Show the run's driver and executors until it ends: live on a terminal, one line per change otherwise.

    Fed by the API's watch stream (the run, and its row in the queue with why it waits), not by polling.
    """
    from rich.live import Live

    from bigk.cli import watching

    console = _console()
    run: dict[str, Any] = {}
    why = ""
    seen: set[tuple[str, str, str]] = set()
    live = Live(console=console, refresh_per_second=4, transient=False) if console.is_terminal else None

    def show() -> None:
        if live is not None:
            live.update(_progress_table(run, why, True))
            return
        marks: list[tuple[str, str, str]] = [("run", run["state"], "")]
        if run["state"] in ("Pending", "Submitted") and why:  # why it waits, each time the reason changes
            marks.append(("why", why, ""))
        marks += [(p["name"], p["phase"], p["node"]) for p in run.get("pods", [])]
        for mark in marks:
            if mark not in seen:
                seen.add(mark)
                if mark[0] == "run":
                    typer.echo(f"run {run_id}: {run['state']}")
                elif mark[0] == "why":
                    typer.echo(f"  waiting: {mark[1]}")
                else:
                    typer.echo(f"  pod {mark[0]}: {mark[1]}" + (f" on {mark[2]}" if mark[2] else ""))
        sys.stdout.flush()

    if live is not None:
        live.start()
    try:
        for event in watching.events(client, ["runs", "queue"], [run_id], watching.deadline_after(timeout)):
            if event.object is None:
                continue
            if event.kind == "queue":
                why = "" if event.type == "DELETED" else _why(event.object)
            else:
                run = event.object
            if run:
                show()
            if run.get("state") in TERMINAL:
                break
    finally:
        if live is not None:
            live.stop()
    if not run:
        run = client.get(f"/runs/{_q(run_id)}")
    if run["state"] not in TERMINAL:
        why = _why(client.get(f"/runs/{_q(run_id)}/explain"))
        raise BigkError(f"run {run_id} still {run['state']} after {timeout:g}s ({why}); follow it with "
                        f"`bigk describe run {run_id}`")
    return dict(run)


def _bare(name: str, kind: str) -> str:
    """`job/etl` -> `etl` (any spelling of the kind); another kind's KIND/NAME is a usage error."""
    if "/" not in name:
        return name
    info, bare = out.split_kind_name(name, None)
    if info.plural != out.find_kind(kind).plural or not bare:
        raise UsageError(f"{name}: expected a {kind} ({kind}/NAME or NAME)")
    return bare


def _check_target(action: str, node: str | None, pool: str | None) -> None:
    if bool(node) == bool(pool):
        raise UsageError(f"give a node name or --pool POOL (not both): bigk {action} NODE | --pool POOL")


def _on(path: str, cluster: str | None) -> str:
    """A node or pool path on one cluster (`?cluster=NAME`); without, the server finds the one cluster that has it."""
    return f"{path}?cluster={_q(cluster)}" if cluster else path


def _cluster_cordon(action: str, cluster: str, server: str | None) -> None:
    """`bigk cordon --cluster NAME`: dispatch nothing new to that cluster (its runs keep running); uncordon undoes."""
    _client(server).post(f"/clusters/{_q(cluster)}/{action}")
    typer.echo(f"{action}ed cluster {cluster}" + (": no new runs are dispatched there (its runs keep running)"
                                                  if action == "cordon" else ""))


def _off_home(data: dict[str, Any]) -> str | None:
    """The cluster an action answered from, when it may not be home (any cluster not named `default`)."""
    name = data.get("cluster")
    return name if name and name != "default" else None


def _where(data: dict[str, Any]) -> str:
    """` on cluster NAME` for an answer from bigk serve over several clusters; nothing with one."""
    name = _off_home(data)
    return f" on cluster {name}" if name else ""


def _show_plan(plan: dict[str, Any], verb: str) -> None:
    """A drain plan: nodes, pods and the runs they belong to (a lost driver fails its run)."""
    typer.echo(f"{verb}cordon {', '.join(plan['nodes'])}{_where(plan)} and evict {len(plan['pods'])} bigk pod(s)")
    for pod in plan["pods"]:
        typer.echo(f"  {verb}evict {pod['pod']} on {pod['node']}" + (f" ({pod['role']} of run {pod['run']})"
                                                                      if pod["run"] else ""))
    for run in plan["runs"]:
        hit = "loses its driver and fails" if run["driver_evicted"] else f"loses {run['pods']} executor(s)"
        typer.echo(f"  run {run['run']} ({run['job'] or '?'}, {run['state'] or '?'}) {hit}")


def _confirm(what: str) -> None:
    """Pool-wide actions ask first; without a terminal to ask on, they need --yes."""
    if not sys.stdin.isatty():
        raise UsageError(f"refusing to {what} without confirmation: pass --yes (or --dry-run to see the plan)")
    if not typer.confirm(f"{what}?", default=False):
        raise typer.Exit(1)


def _wait_empty(client: Any, nodes: list[str], timeout: float, cluster: str | None = None) -> None:
    """Follow the nodes on the watch stream until none holds a bigk pod (evictions done), or time out. On a named
    cluster (the watch stream carries home's nodes only) the cluster's node list is read every second instead."""
    from bigk.cli import watching

    left = {name: -1 for name in nodes}
    started = time.monotonic()
    if cluster:
        while time.monotonic() - started < timeout:
            for row in client.get("/nodes", cluster=cluster):
                if row.get("name") in left:
                    left[row["name"]] = int(row.get("bigk_pods", 0))
            if all(count == 0 for count in left.values()):
                typer.echo(f"evictions done in {span(time.monotonic() - started)}")
                return
            time.sleep(1.0)
        busy = ", ".join(f"{name} ({count} bigk pod(s))" for name, count in sorted(left.items()) if count)
        raise BigkError(f"evictions not done after {timeout:g}s on cluster {cluster}: {busy or 'nodes not found'}; "
                        f"see `bigk get nodes --cluster {cluster}` (the nodes stay cordoned)")
    for event in watching.events(client, ["nodes"], nodes, watching.deadline_after(timeout)):
        if event.object is not None and event.name in left:
            left[event.name] = int(event.object.get("bigk_pods", 0))
        if all(count == 0 for count in left.values()):
            typer.echo(f"evictions done in {span(time.monotonic() - started)}")
            return
    busy = ", ".join(f"{name} ({count} bigk pod(s))" for name, count in sorted(left.items()) if count)
    raise BigkError(f"evictions not done after {timeout:g}s: {busy or 'no answer from the watch stream'}; "
                    "see `bigk get nodes` (the nodes stay cordoned)")


class _Filter:
    """What `get` keeps: --job, --state, -n, -l and a name, applied alike to lists and watch events."""

    def __init__(self, info: KindInfo, job: str | None, state: str | None, namespace: str | None,
                 reqs: list[out.Requirement], name: str | None) -> None:
        self.info, self.job, self.state, self.namespace, self.reqs, self.name = info, job, state, namespace, reqs, name

    def exact(self, key: str) -> str | None:
        """The value of a `key=value` requirement, which the server can filter on itself."""
        found = [r.values[0] for r in self.reqs if r.key == key and r.op == "=" and len(r.values) == 1]
        return found[0] if len(found) == 1 else None

    def keep(self, item: dict[str, Any]) -> bool:
        info = self.info
        if self.name is not None and info.name_of(item) != self.name:
            return False
        if info.plural == "runs" and (self.job and item.get("job") != self.job
                                      or self.state and item.get("state") != self.state):
            return False
        if self.namespace and info.namespaced and (item.get("namespace") or "default") != self.namespace:
            return False
        return all(r.matches(info.labels(item)) for r in self.reqs)

    def apply(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [item for item in items if self.keep(item)]


def _named(client: Any, info: KindInfo, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The object by name: from its own endpoint where there is one, else found in the list (several clusters: a
    node name may be found on more than one, each with its `cluster`)."""
    if info.detail_path:
        return [dict(client.get(info.detail_path.format(name=_q(name)), **params))]
    found = [dict(item) for item in client.get(info.path, **params) if info.name_of(item) == name]
    if not found:
        raise NoSuchName(f"no {info.singular} {name!r} (list them with `bigk get {info.plural}`)")
    return found


def _watch_cluster(client: Any, cluster: str) -> None:
    """`-w --cluster NAME` follows that cluster's events of the stream (which carries every cluster's nodes and GPUs,
    each with its `cluster`): the name must be one of the service's."""
    names = [row["name"] for row in client.get("/clusters")]
    if cluster not in names:
        raise NoSuchName(f"no cluster {cluster!r}; this bigk serve runs {', '.join(names)}")


def _queue_head(client: Any, info: KindInfo, flt: _Filter, limit: int, whole: bool) -> list[dict[str, Any]]:
    """The first `limit` waiting runs in queue order (with filters: of those that match), saying on stderr how
    many wait in all when that is more: the server reads and explains only the head (a backlog of thousands)."""
    from bigk.service.client import WAITING_HEADER

    if whole:  # filtered here: the whole queue, then its head
        items = flt.apply(client.get(info.path))
        total = len(items)
    else:
        listing, headers = client.get_with_headers(info.path, limit=limit)
        items = flt.apply(listing)
        total = int(headers.get(WAITING_HEADER) or len(items))
    if total > limit:
        typer.echo(f"(the first {limit} of {total} waiting runs; --limit N shows more)", err=True)
    return items[:limit]


def _newest_first(info: KindInfo, items: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The order `get` lists a kind in: runs newest first (at most `limit`), the rest by name."""
    if info.plural == "runs":
        return sorted(items, key=lambda r: (-r["created_at"], r["id"]))[:limit]
    if info.plural == "queue":
        return sorted(items, key=lambda q: (-q["priority"], q["created_at"]))
    return sorted(items, key=info.name_of)


def _watch_kind(client: Any, info: KindInfo, flt: _Filter, fmt: OutputFormat, sort_by: str | None, limit: int,
                headers: bool, timeout: float | None) -> None:
    """`get KIND --watch`: the list from the watch stream's first listing, then one line per change."""
    from bigk.cli import watching

    listing: list[dict[str, Any]] = []
    synced = False
    names = [flt.name] if flt.name else None
    try:
        for event in watching.events(client, [info.plural], names, watching.deadline_after(timeout)):
            if event.type == "RESET":
                listing, synced = [], False
            elif event.type == "SYNCED" and not synced:
                synced = True
                items = out.sort_items(_newest_first(info, flt.apply(listing), limit), sort_by)
                if items or fmt.tabular:
                    out.emit(info, items, fmt, headers=headers)
                headers = False
                sys.stdout.flush()
            elif event.object is not None and flt.keep(event.object):
                if not synced:
                    listing.append(event.object)
                    continue
                out.emit_event(info, event.type, event.object, fmt)
                sys.stdout.flush()
    except KeyboardInterrupt:
        return


def register(app: typer.Typer) -> None:
    """Add the operator commands."""

    @app.command("get")
    def get(kind: str = typer.Argument(..., help="KIND or KIND/NAME: jobs, runs, queue, nodes, gpus, clusters or "
                                                  "problems (singular, plural or short: run, runs, r, run/ID)."),
            name: str | None = typer.Argument(None, help="Only this one (a run id, job, node or NODE/INDEX)."),
            job: str | None = typer.Option(None, "--job", help="runs: only this job."),
            state: str | None = typer.Option(None, "--state", help="runs: only this state (e.g. Running)."),
            limit: int = typer.Option(50, "--limit", min=1, help="runs: at most this many (newest first); "
                                                                 "queue: its first this many."),
            namespace: str | None = typer.Option(None, "--namespace", "-n",
                                                 help="Only this namespace (jobs, runs; default: all)."),
            all_namespaces: bool = typer.Option(False, "--all-namespaces", "-A", help="Every namespace (default)."),
            selector: str | None = typer.Option(None, "--selector", "-l",
                                                help="Label selector, e.g. job=etl,state!=Failed (runs: job, queue, "
                                                     "state, trigger, namespace, cluster; nodes: pool, model, "
                                                     "cluster; gpus: node, pool, model, cluster, unhealthy, "
                                                     "allocated-idle)."),
            sort_by: str | None = typer.Option(None, "--sort-by", help="Sort by this field, e.g. .created_at."),
            no_headers: bool = typer.Option(False, "--no-headers", help="Tables without the header line."),
            watch: bool = typer.Option(False, "--watch", "-w",
                                       help="After the list, print each change as it happens (Ctrl-C stops)."),
            watch_timeout: float | None = typer.Option(None, "--watch-timeout", min=0.1,
                                                       help="With --watch: stop after this many seconds."),
            idle: bool = typer.Option(False, "--idle", help="gpus: GPUs held by runs but idle for the whole window "
                                                             "(node, GPU, pod, run, job), and GPUs busy without bigk."),
            cluster: str | None = typer.Option(None, "--cluster", help="nodes, gpus, runs, queues: only this "
                                               "cluster's (bigk serve over several clusters; see `bigk get "
                                               "clusters`)."),
            server: str | None = SERVER_OPT, output: str = OUTPUT_OPT) -> None:
        """List jobs, runs, the queue (why runs wait), nodes, GPUs or the problems of the served specs."""
        fmt = parse_output(output)
        if namespace and all_namespaces:
            raise UsageError("give -n NAMESPACE or -A, not both")
        reqs = out.parse_selector(selector)
        client = _client(server)
        if idle:  # bigk.cli.gpu_cmds
            from bigk.cli.gpu_cmds import show_idle

            show_idle(client, kind, fmt, headers=not no_headers, cluster=cluster)
            return
        if kind.strip().lower() in ("problems", "problem"):
            if watch:
                raise UsageError("problems cannot be watched; use `bigk get problems` again")
            data = client.get("/problems")
            if fmt.structured:
                out.dump(out.with_rfc3339(data), fmt.style)
            else:
                _show_problems(data)
            return
        info, name = out.split_kind_name(kind, name)
        params: dict[str, Any] = {}
        if cluster:
            if info.plural not in ("nodes", "gpus", "runs", "queues"):
                raise UsageError(f"--cluster lists nodes, gpus, runs or queues of one cluster, not {info.plural}")
            if info.plural == "queues" and watch:
                raise UsageError("queues -w follows every cluster's sums; drop --cluster (or leave out -w)")
            if info.plural == "runs" or watch:  # runs (and watch events) carry their cluster: kept like -l cluster=
                reqs = [*reqs, out.Requirement("cluster", "=", (cluster,))]
            else:  # the server lists that cluster alone (an unknown name: exit 3)
                params["cluster"] = cluster
        flt = _Filter(info, job, _run_state(state), None if all_namespaces else namespace, reqs, name)
        if watch:
            if not info.watchable:
                raise UsageError(f"{info.plural} cannot be watched")
            if cluster and info.plural in ("nodes", "gpus"):
                _watch_cluster(client, cluster)
            _watch_kind(client, info, flt, fmt, sort_by, limit, not no_headers, watch_timeout)
            return
        if name:
            items = flt.apply(_named(client, info, name, params))
        else:
            if info.plural == "runs":
                params = {"job": job or flt.exact("job"), "state": flt.state or flt.exact("state"), "limit": limit}
            if info.plural == "queue":
                items = _queue_head(client, info, flt, limit, whole=bool(job or state or reqs or namespace))
            else:
                items = flt.apply(client.get(info.path, **params))
        items = out.sort_items(items, sort_by)
        out.emit(info, items, fmt, headers=not no_headers, single=bool(name) and len(items) == 1)
        if info.plural == "jobs" and fmt.tabular:
            _warn_problems(client)

    @app.command("describe")
    def describe(thing: str = typer.Argument(..., help="job or run (or KIND/NAME: run/ID, job/NAME)."),
                 name: str | None = typer.Argument(None), server: str | None = SERVER_OPT,
                 cluster: str | None = typer.Option(None, "--cluster", help="queue: only this cluster's figures "
                                                    "(bigk serve over several clusters)."),
                 output: str = OUTPUT_OPT) -> None:
        """Everything about one job or run: state, times, pods, events, why it waits."""
        fmt = parse_output(output)
        if thing.strip().lower().partition("/")[0] in ("queue", "queues", "q"):  # bigk.cli.queue_cmds
            from bigk.cli.queue_cmds import describe_queue

            queue = thing.partition("/")[2] or name
            if not queue:
                raise UsageError("describe queue NAME (or queue/NAME)")
            describe_queue(_client(server), queue, fmt, cluster)
            return
        if cluster:
            raise UsageError("--cluster describes a queue on one cluster; a run or job is on its own cluster")
        info, name = out.split_kind_name(thing, name)
        if info.plural not in ("jobs", "runs") or not name:
            raise UsageError("describe job NAME | run ID | queue NAME (or job/NAME, run/ID, queue/NAME)")
        client = _client(server)
        data = client.get(f"/{info.plural}/{_q(name)}")
        if not fmt.tabular:
            out.emit(info, [data], fmt, single=True)
        elif info.plural == "runs":
            _describe_run(data, _why(client.get(f"/runs/{_q(name)}/explain")))
        else:
            _describe_job(data)

    @app.command("explain")
    def explain(run: str = typer.Argument(..., help="Run id."), server: str | None = SERVER_OPT,
                output: str = OUTPUT_OPT) -> None:
        """Why a run waits (or how it ended), from the scheduler's explanation."""
        fmt = parse_output(output)
        run = _bare(run, "run")
        data = _client(server).get(f"/runs/{_q(run)}/explain")
        if fmt.structured:
            out.dump(out.with_rfc3339(data), fmt.style)
        elif fmt.style == "jsonpath":
            typer.echo(out.jsonpath(fmt.arg, data))
        else:
            from bigk.cli.whatif_cmd import eta_lines

            typer.echo(f"run {data['run']} ({data['job']}) is {data['state']}: {_why(data)}")
            for line in eta_lines(data.get("eta")):
                typer.echo(line)
            if data.get("dispatch") and data["dispatch"] != data["explanation"]:  # several clusters: where and why
                typer.echo(f"cluster {data.get('cluster') or '- (not dispatched yet)'}: {data['dispatch']}")

    @app.command("run")
    def run(job: str = typer.Argument(..., help="Job name."),
            wait: bool = typer.Option(False, "--wait", help="Follow driver and executors until the run ends."),
            timeout: float = typer.Option(3600.0, "--timeout", help="With --wait: give up after this many seconds."),
            dry_run: bool = typer.Option(False, "--dry-run", help="Create nothing: say when a run would start, where, "
                                         "behind whom and preempting what."),
            server: str | None = SERVER_OPT, output: str = OUTPUT_OPT) -> None:
        """Start a run of JOB now (exit 1 with --wait if it does not succeed)."""
        fmt = parse_output(output)
        runs = out.find_kind("runs")
        client = _client(server)
        job = _bare(job, "job")
        if dry_run:
            from bigk.cli.whatif_cmd import whatif_lines

            answer = client.get(f"/jobs/{_q(job)}/whatif")
            if fmt.structured:
                out.dump(answer, fmt.style)
            else:
                for line in whatif_lines(answer):
                    typer.echo(line)
            return
        created = client.post(f"/jobs/{_q(job)}/run")
        if not wait:
            if not fmt.tabular:
                out.emit(runs, [created], fmt, single=True)
            else:
                typer.echo(f"run {created['id']} of {job} created")
            return
        final = _follow(client, created["id"], timeout)
        if not fmt.tabular:
            out.emit(runs, [final], fmt, single=True)
        else:
            typer.echo(f"run {final['id']} {final['state']}" + (f": {final['reason']}" if final.get("reason") else ""))
        if final["state"] != "Succeeded":
            raise typer.Exit(1)

    @app.command("suspend")
    def suspend(job: str = typer.Argument(...), server: str | None = SERVER_OPT) -> None:
        """Stop firing JOB on schedule (runs in progress continue)."""
        job = _bare(job, "job")
        _client(server).post(f"/jobs/{_q(job)}/suspend")
        typer.echo(f"job {job} suspended")

    @app.command("resume")
    def resume(job: str = typer.Argument(...),
               clear: bool = typer.Option(False, "--clear", help="Drop the operator's suspend/resume instead: the "
                                          "spec's own schedule.suspend decides again."),
               server: str | None = SERVER_OPT) -> None:
        """Fire JOB on schedule again (from the next fire time on)."""
        job = _bare(job, "job")
        if clear:
            data = _client(server).post(f"/jobs/{_q(job)}/clear-suspend")
            state = "suspended" if data["suspended"] else f"not suspended; next fire {_until(data.get('next_fire'))}"
            typer.echo(f"job {job} follows its spec's schedule.suspend again: {state}")
            return
        data = _client(server).post(f"/jobs/{_q(job)}/resume")
        typer.echo(f"job {job} resumed; next fire {_until(data.get('next_fire'))}")

    @app.command("cancel")
    def cancel(run: str = typer.Argument(..., help="Run id."), server: str | None = SERVER_OPT) -> None:
        """Kill a run's pods and mark it Cancelled (exit 1 if it had already finished)."""
        client = _client(server)
        run = _bare(run, "run")
        before = client.get(f"/runs/{_q(run)}")["state"]
        if before in TERMINAL:
            raise BigkError(f"run {run} already {before}; nothing to cancel")
        data = client.post(f"/runs/{_q(run)}/cancel")
        typer.echo(f"run {run} {data['state']}")

    def _nodes_action(action: str, node: str | None, pool: str | None, server: str | None,
                      cluster: str | None = None) -> Any:
        _check_target(action, node, pool)
        path = f"/pools/{_q(pool)}/{action}" if pool else f"/nodes/{_q(node)}/{action}"
        return _client(server).post(_on(path, cluster))

    def _plan(client: Any, node: str | None, pool: str | None, cluster: str | None) -> Any:
        """What a drain would evict (`GET .../drain-plan`; a query in a GET's path would be dropped: a parameter)."""
        return client.get(f"/pools/{_q(pool)}/drain-plan" if pool else f"/nodes/{_q(node)}/drain-plan",
                          cluster=cluster)

    @app.command("drain")
    def drain(node: str | None = typer.Argument(None), pool: str | None = typer.Option(None, "--pool"),
              dry_run: bool = typer.Option(False, "--dry-run", help="Only show what would be cordoned and evicted, "
                                                                   "and which runs it would hit."),
              yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before draining a whole pool."),
              wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait until the evicted pods are gone."),
              timeout: float = typer.Option(300.0, "--timeout", min=0.1,
                                            help="With --wait: give up after this many seconds (exit 1)."),
              cluster: str | None = typer.Option(None, "--cluster", help="The node (or pool) on this cluster "
                                                 "(bigk serve over several clusters, where the name is on more "
                                                 "than one)."),
              server: str | None = SERVER_OPT) -> None:
        """Cordon a node (or every node of a pool) and evict its bigk pods, then wait until they are gone."""
        _check_target("drain", node, pool)
        client = _client(server)
        plan = _plan(client, node, pool, cluster)
        if dry_run:
            _show_plan(plan, "would ")
            return
        if pool and not yes:
            _show_plan(plan, "will ")
            _confirm(f"drain every node of pool {pool}")
        data = _nodes_action("drain", node, pool, server, cluster)
        typer.echo(f"drained {', '.join(data['nodes'])}{_where(data)}: evicted {len(data['evicted'])} pod(s)")
        for key in data["evicted"]:
            typer.echo(f"  evicted {key}")
        if wait and data["evicted"]:
            _wait_empty(client, data["nodes"], timeout, cluster or _off_home(data))

    @app.command("cordon")
    def cordon(node: str | None = typer.Argument(None), pool: str | None = typer.Option(None, "--pool"),
               dry_run: bool = typer.Option(False, "--dry-run", help="Only show which nodes would be cordoned."),
               yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before cordoning a whole pool."),
               cluster: str | None = typer.Option(None, "--cluster",
                                                  help="Alone: cordon a whole cluster (no new runs are dispatched "
                                                       "there). With a node or --pool: the node or pool on this "
                                                       "cluster."),
               server: str | None = SERVER_OPT) -> None:
        """Mark a node (or a pool) unschedulable; running pods stay. --cluster alone: dispatch no new runs there."""
        if cluster and not node and not pool:
            if dry_run:
                _client(server).get(f"/clusters/{_q(cluster)}")  # says "no cluster" for a wrong name
                typer.echo(f"would cordon cluster {cluster}")
                return
            _cluster_cordon("cordon", cluster, server)
            return
        _check_target("cordon", node, pool)
        if pool and (dry_run or not yes):
            plan = _plan(_client(server), None, pool, cluster)
            typer.echo(f"{'would' if dry_run else 'will'} cordon {', '.join(plan['nodes'])}{_where(plan)} "
                       f"({len(plan['pods'])} bigk pod(s) there keep running)")
            if dry_run:
                return
            _confirm(f"cordon every node of pool {pool}")
        elif dry_run:
            plan = _plan(_client(server), node, None, cluster)  # says "no node" for a wrong name
            typer.echo(f"would cordon {node}{_where(plan)}")
            return
        data = _nodes_action("cordon", node, pool, server, cluster)
        typer.echo(f"cordoned {', '.join(data.get('nodes', [data.get('node')]))}{_where(data)}")

    @app.command("uncordon")
    def uncordon(node: str | None = typer.Argument(None), pool: str | None = typer.Option(None, "--pool"),
                 cluster: str | None = typer.Option(None, "--cluster",
                                                    help="Alone: uncordon a whole cluster (runs are dispatched there "
                                                         "again). With a node or --pool: the node or pool on this "
                                                         "cluster."),
                 server: str | None = SERVER_OPT) -> None:
        """Make a node (or every node of a pool, e.g. after `drain --pool`) schedulable again."""
        if cluster and not node and not pool:
            _cluster_cordon("uncordon", cluster, server)
            return
        data = _nodes_action("uncordon", node, pool, server, cluster)
        typer.echo(f"uncordoned {', '.join(data.get('nodes', [data.get('node')]))}{_where(data)}")

    @app.command("history")
    def history(job: str | None = typer.Argument(None), limit: int = typer.Option(1000, "--limit", min=1),
                server: str | None = SERVER_OPT, output: str = OUTPUT_OPT,
                audit: bool = typer.Option(False, "--audit", help="The audit trail instead: who did what, when, "
                                                                   "from where, with what outcome (of JOB if given)."),
                user: str | None = typer.Option(None, "--user", help="With --audit: only this user's actions."),
                ) -> None:
        """Success rate and p50/p95 duration and queue wait of JOB's finished runs (--audit: the audit trail)."""
        fmt = parse_output(output)
        if audit:
            from bigk.cli import audit_cmd

            audit_cmd.show(_client(server), job, user, limit, fmt)
            return
        if job is None:
            raise typer.BadParameter("name a job (or use --audit)", param_hint="JOB")
        data = _client(server).get(f"/jobs/{_q(job)}/history", limit=limit)
        if fmt.structured:
            out.dump(out.with_rfc3339(data), fmt.style)
            return
        s = data["summary"]
        if not s["runs"]:
            typer.echo(f"No finished runs of {job} yet.")
            return
        rate = f"{100 * s['success_rate']:.1f}%"
        typer.echo(f"{job}: {s['runs']} finished runs, {s['succeeded']} succeeded ({rate}), {s['failed']} not")
        typer.echo(f"duration   p50 {span(s['duration_p50_s'])}  p95 {span(s['duration_p95_s'])}")
        typer.echo(f"queue wait p50 {span(s['queue_wait_p50_s'])}  p95 {span(s['queue_wait_p95_s'])}")
        rows = [[r["run_id"], r["state"], r["attempt"], age(r["finished_at"]),
                 span(r["finished_at"] - r["running_at"]) if r.get("running_at") else "-",
                 span(r["running_at"] - r["submitted_at"]) if r.get("running_at") and r.get("submitted_at") else "-",
                 (r.get("reason") or "")[:60]]
                for r in data["runs"][: 20 if fmt.style == "table" else None]]
        _table(["RUN", "STATE", "ATTEMPT", "FINISHED", "DURATION", "WAIT", "REASON"], rows, "")
