"""`bigk simulate`: replay a cluster trace through bigk's placement policies and report packing quality."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import typer

from bigk.cluster.model import Node
from bigk.errors import BigkError, UsageError
from bigk.scheduler.policies.base import policy_names
from bigk.sim import trace
from bigk.sim.runner import parse_seeds

DEFAULT_POLICIES = "fgd,bestfit,bigk"


class SimulateError(BigkError):
    """Bad arguments to `bigk simulate`."""


def _policies(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    known = policy_names()
    unknown = [p for p in names if p not in known]
    if unknown or not names:
        raise UsageError(f"--policy: unknown policy {', '.join(unknown) or '(none)'}; known: {', '.join(known)}")
    return names


@contextlib.contextmanager
def _progress(quiet: bool, runs: int) -> Iterator[Callable[[str, int], Callable[[int, int], None]] | None]:
    """A rich progress bar (runs and pods of the current run) on stderr, or nothing when quiet."""
    if quiet:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        overall = bar.add_task("runs", total=runs)
        current = bar.add_task("pods", total=None)

        def start(policy: str, seed: int) -> Callable[[int, int], None]:
            bar.update(current, description=f"{policy} seed {seed}", completed=0, total=None)

            def advance(done: int, total: int) -> None:
                bar.update(current, completed=done, total=total)
                if done == total:
                    bar.advance(overall)

            return advance

        yield start


def register(app: typer.Typer) -> None:
    """Add `bigk simulate`."""

    @app.command("simulate")
    def simulate(
        nodes: Path = typer.Option(trace.DEFAULT_NODES, "--nodes", help="Node list CSV (Alibaba trace format)."),
        pods: Path = typer.Option(trace.DEFAULT_PODS, "--pods", help="Pod list CSV (Alibaba trace format)."),
        protocol: str = typer.Option("inflation", "--protocol", help="inflation (FGD paper), timeline, or eta "
                                     "(accuracy of start-time estimates, docs/eta.md)."),
        policy: str = typer.Option(DEFAULT_POLICIES, "--policy", help="Comma-separated policies to compare."),
        seeds: str | None = typer.Option(None, "--seeds",
                                         help="Seeds, e.g. 42-51 or 1,2,5-7 (default 42-51; timeline 42)."),
        ratio: float = typer.Option(1.3, "--ratio", help="Inflation: sample pods up to this share of GPU capacity."),
        speedup: float = typer.Option(1.0, "--speedup", help="Timeline: compress arrival times by this factor."),
        variant: str | None = typer.Option(
            None, "--variant", help="Variant traces as in the FGD artifact (cpu050, gpushare40, multigpu20, gpuspec33, "
            "... or KIND=SHARE), comma-separated, 'default' for the base trace; 'all': the default and all 16."),
        variant_seed: int = typer.Option(7, "--variant-seed", help="Seed of generated variants."),
        offline: bool = typer.Option(False, "--offline", help="Inflation: also the offline best and bound (HiGHS) "
                                     "for the pods arrived on the first seed, per trace."),
        offline_time: float = typer.Option(60.0, "--offline-time", help="Time limit of each offline solve, seconds."),
        json_out: Path | None = typer.Option(None, "--json", help="Write the JSON report here."),
        plot_out: Path | None = typer.Option(None, "--plot", help="Write a PNG plot here."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
        jobs: int = typer.Option(0, "--jobs", min=0, help="Inflation: runs at once, each in its own process "
                                 "(0: one per CPU; 1: in this process). Results do not depend on it."),
        eta_sample: float = typer.Option(0.05, "--eta-sample", help="eta: estimate the start of this share of the "
                                         "arrivals (each costs a forecast)."),
        eta_workload: str = typer.Option("alibaba,spark", "--eta-workload",
                                         help="eta: alibaba (the trace, with --speedup), spark (synthetic cron and "
                                         "ad-hoc Spark gangs), or both."),
        split: int = typer.Option(0, "--split", help="Inflation or timeline: also spread the nodes over this many "
                                  "clusters, dispatch every pod to one (bigk.scheduler.dispatch) and compare with one "
                                  "cluster of the same nodes (issue 18)."),
        split_by: str = typer.Option("model", "--split-by", help="--split: model (each cluster whole GPU models: "
                                     "different shapes) or even (nodes dealt round robin)."),
        dispatch_when: str = typer.Option("once", "--dispatch", help="--split with timeline: once (every pod at its "
                                          "arrival) or late (a pod only once it fits now somewhere; held until "
                                          "then)."),
        hold_limit: float | None = typer.Option(None, "--hold-limit", help="--dispatch late: a pod held this many "
                                                "seconds queues where it should start soonest."),
        fill: str = typer.Option("spread", "--fill", help="--split: among clusters where a pod fits, the emptiest "
                                 "(spread) or the fullest (pack)."),
    ) -> None:
        """Replay a trace through the scheduling policies and compare how well they pack GPUs."""
        from bigk.sim import report as rep
        from bigk.sim.runner import default_jobs, parse_seeds, run_inflation_sweep

        names = _policies(policy)
        try:
            seed_list = parse_seeds(seeds or ("42" if protocol == "timeline" else "42-51"))
        except ValueError as exc:
            raise UsageError(f"--seeds: {exc}") from None
        if speedup <= 0:
            raise UsageError("--speedup: must be positive")
        if protocol not in ("inflation", "timeline", "eta"):
            raise UsageError(f"--protocol: unknown protocol {protocol!r}; use inflation, timeline or eta")
        if split:
            _federated(nodes, pods, names, seed_list, protocol, ratio, speedup, split, split_by, fill,
                       (dispatch_when, hold_limit), variant, offline, json_out, quiet)
            return
        if protocol == "eta":
            _eta(nodes, pods, names if policy != DEFAULT_POLICIES else ["bigk"], seeds, speedup, eta_sample,
                 eta_workload, json_out, quiet)
            return
        if not 1.0 <= ratio <= 10.0:
            raise UsageError("--ratio: must be between 1.0 and 10.0")
        if variant:  # a usage error is told before any file is read
            from bigk.sim.variants import parse_variant

            try:
                for name in (n.strip() for n in variant.split(",")):
                    if name and name not in ("all", "default"):
                        parse_variant(name)
            except ValueError as exc:
                raise UsageError(f"--variant: {exc}") from None
        started = time.perf_counter()
        node_list = trace.load_nodes(nodes)
        pod_list = trace.load_pods(pods)
        meta: dict[str, object] = {"nodes_file": str(nodes), "pods_file": str(pods), "seeds": seed_list,
                                   "policies": names}
        from bigk.sim import suite

        traces = None
        if variant:
            try:
                traces = suite.variant_traces(variant, pods, pod_list, node_list, variant_seed)
            except ValueError as exc:
                raise UsageError(f"--variant: {exc}") from None
            meta |= {"variant": variant, "variant_seed": variant_seed}
            if protocol == "timeline":
                if len(traces) != 1:
                    raise UsageError("--variant: the timeline protocol replays one trace at a time")
                pod_list = traces[0].pods
        if protocol == "inflation":
            if not any(n.gpus for n in node_list):
                raise SimulateError(f"{nodes}: the inflation protocol needs GPU nodes; this file has none")
            meta |= {"ratio": ratio, "gpu_nodes": sum(1 for n in node_list if n.gpus),
                     "gpus": sum(len(n.gpus) for n in node_list), "trace_pods": len(pod_list)}
            published = suite.is_published_trace(nodes, pods)
            if traces is not None or offline:
                traces = traces or [suite.Trace("default", pod_list, "base")]
                with _progress(quiet, len(names) * len(seed_list) * len(traces)) as progress:
                    report = suite.run_suite(node_list, traces, names, seed_list, published, ratio, offline,
                                             offline_time, progress, jobs=jobs or default_jobs())
                report["meta"] = meta
                suite.print_suite(report)
                plot = suite.plot_suite
            else:
                with _progress(quiet, len(names) * len(seed_list)) as progress:
                    runs = run_inflation_sweep(node_list, pod_list, names, seed_list, ratio, progress,
                                               jobs or default_jobs())
                report = rep.inflation_report(runs, meta, published=published)
                plot = rep.plot_inflation
                rep.print_inflation(report)
        else:
            from bigk.sim.timeline import run_timeline_sweep

            with _progress(quiet, len(names) * len(seed_list)) as progress:
                truns = run_timeline_sweep(node_list, pod_list, names, seed_list, progress, speedup)
            meta["speedup"] = speedup
            report = rep.timeline_report(truns, meta)
            plot = rep.plot_timeline
            rep.print_timeline(report)
        report["meta"]["seconds"] = round(time.perf_counter() - started, 2)
        if json_out is not None:
            rep.write_json(report, json_out)
        if plot_out is not None:
            plot(report, plot_out)


def _eta(nodes: Path, pods: Path, policies: list[str], seeds: str | None, speedup: float, sample: float,
         workloads: str, json_out: Path | None, quiet: bool) -> None:
    """`--protocol eta`: estimated vs actual starts on replays (bigk.sim.eta_accuracy)."""
    from bigk.sim import eta_accuracy, report

    chosen = [w.strip() for w in workloads.split(",") if w.strip()]
    if not chosen or any(w not in ("alibaba", "spark") for w in chosen):
        raise UsageError("--eta-workload: alibaba, spark, or alibaba,spark")
    if not 0 < sample <= 1:
        raise UsageError("--eta-sample: a share in (0, 1]")
    if len(policies) != 1:
        raise UsageError("--protocol eta: give one --policy (the one bigk serve runs)")
    try:
        seed_list = parse_seeds(seeds or "42")
    except ValueError as exc:
        raise UsageError(f"--seeds: {exc}") from None
    started = time.perf_counter()
    node_list = trace.load_nodes(nodes) if "alibaba" in chosen else []
    pod_list = trace.load_pods(pods) if "alibaba" in chosen else []
    with _progress(quiet, len(chosen)) as progress:
        advance = progress(policies[0], seed_list[0]) if progress is not None else None
        out = eta_accuracy.run_protocol(node_list, pod_list, policies[0], seed_list[0], speedup, sample, chosen,
                                        progress=advance)
    out["meta"] = {"nodes_file": str(nodes), "pods_file": str(pods), "policy": policies[0], "seed": seed_list[0],
                   "speedup": speedup, "seconds": round(time.perf_counter() - started, 1)}
    eta_accuracy.print_report(out)
    if json_out is not None:
        report.write_json(out, json_out)


def _federated(nodes: Path, pods: Path, policies: list[str], seeds: list[int], protocol: str, ratio: float,
               speedup: float, clusters: int, split_by: str, fill: str, dispatching: tuple[str, float | None],
               variant: str | None, offline: bool, json_out: Path | None, quiet: bool) -> None:
    """`--split N`: the inflation protocol on one cluster and on N clusters of the same nodes (bigk.sim.federation)."""
    from bigk.sim import federation, report

    if protocol not in ("inflation", "timeline"):
        raise UsageError("--split: with --protocol inflation or timeline")
    if variant or offline:
        raise UsageError("--split: not with --variant or --offline")
    if clusters < 1:
        raise UsageError("--split: at least 1 cluster")
    if split_by not in federation.SPLITS:
        raise UsageError(f"--split-by: {' or '.join(federation.SPLITS)}")
    if fill not in ("pack", "spread"):
        raise UsageError("--fill: pack or spread")
    when, hold_limit = dispatching
    if when not in ("once", "late"):
        raise UsageError("--dispatch: once or late")
    if hold_limit is not None and (when != "late" or hold_limit < 0):
        raise UsageError("--hold-limit: seconds >= 0, with --dispatch late")
    if when != "once" and protocol != "timeline":
        raise UsageError("--dispatch late: only with --protocol timeline (the inflation protocol has no queue)")
    if not 1.0 <= ratio <= 10.0:
        raise UsageError("--ratio: must be between 1.0 and 10.0")
    started = time.perf_counter()
    node_list = trace.load_nodes(nodes)
    pod_list = trace.load_pods(pods)
    requests = [p.request for p in pod_list]
    try:
        federation.split_nodes(node_list if protocol == "timeline" else [n for n in node_list if n.gpus], clusters,
                               split_by)
    except ValueError as exc:
        raise UsageError(f"--split: {exc}") from None
    if protocol == "timeline":
        _federated_timeline(node_list, pod_list, policies, seeds, clusters, split_by, fill, dispatching, speedup,
                            {"nodes_file": str(nodes), "pods_file": str(pods)}, started, json_out, quiet)
        return
    runs = []
    with _progress(quiet, len(policies) * len(seeds)) as progress:
        for name in policies:
            for seed in seeds:
                advance = progress(name, seed) if progress is not None else None
                runs.append(federation.run_federated(node_list, requests, name, seed, clusters, split_by,
                                                     "pack" if fill == "pack" else "spread", ratio, advance))
    meta = {"nodes_file": str(nodes), "pods_file": str(pods), "seeds": seeds, "policies": policies, "ratio": ratio,
            "clusters": clusters, "split": split_by, "fill": fill,
            "seconds": round(time.perf_counter() - started, 1)}
    out = federation.federation_report(runs, meta)
    federation.print_federation(out)
    if json_out is not None:
        report.write_json(out, json_out)


def _federated_timeline(node_list: list[Node], pod_list: list[trace.TracePod], policies: list[str], seeds: list[int],
                        clusters: int, split_by: str, fill: str, dispatching: tuple[str, float | None],
                        speedup: float, meta: dict[str, object],
                        started: float, json_out: Path | None, quiet: bool) -> None:
    """`--protocol timeline --split N`: queue waits on one cluster and on N clusters (bigk.sim.federated_timeline),
    one row each per policy."""
    from bigk.sim import report
    from bigk.sim.federated_timeline import run_timeline_federated
    from bigk.sim.federation import split_nodes
    from bigk.sim.timeline import TimelineRun, run_timeline

    when, hold_limit = dispatching
    runs: dict[str, list[TimelineRun]] = {}
    taken: dict[str, list[list[int]]] = {}
    with _progress(quiet, 2 * len(policies) * len(seeds)) as progress:
        for name in policies:
            late = f", late{'' if hold_limit is None else f' <= {hold_limit:g} s'}" if when == "late" else ""
            one, many = f"{name} (1 cluster)", f"{name} ({clusters} clusters{late})"
            for seed in seeds:
                advance = progress(one, seed) if progress is not None else None
                runs.setdefault(one, []).append(run_timeline(node_list, pod_list, name, seed, advance, speedup))
                advance = progress(many, seed) if progress is not None else None
                run, pods_per_cluster = run_timeline_federated(node_list, pod_list, name, seed, clusters, split_by,
                                                               "pack" if fill == "pack" else "spread", advance,
                                                               speedup, when, hold_limit)
                runs.setdefault(many, []).append(run)
                taken.setdefault(many, []).append(pods_per_cluster)
    shapes = [{"cluster": f"c{k}", "nodes": len(part), "gpus": sum(len(n.gpus) for n in part)}
              for k, part in enumerate(split_nodes(node_list, clusters, split_by))]
    meta |= {"seeds": seeds, "policies": policies, "speedup": speedup, "clusters": clusters, "split": split_by,
             "fill": fill, "dispatch": when, "hold_limit_s": hold_limit, "cluster_shapes": shapes,
             "pods_per_cluster": taken,
             "seconds": round(time.perf_counter() - started, 1)}
    out = report.timeline_report(runs, meta)
    report.print_timeline(out)
    if json_out is not None:
        report.write_json(out, json_out)
