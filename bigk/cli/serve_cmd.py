"""`bigk serve`: the long-running service (cron, runs, scheduler, HTTP API).

With no cluster option it starts the embedded emulated cluster from the cluster
file, so `pip install -e . && bigk serve` shows runs within seconds. SIGTERM and
Ctrl-C stop it gracefully: no new fires, submissions in flight recorded, lease
released.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType

import typer

from bigk.errors import BigkError
from bigk.gctune import tune_for_long_lived_state
from bigk.switching import favour_waiting_threads

log = logging.getLogger("bigk.serve")


def setup_logging(level: str = "INFO", fmt: str = "logfmt") -> None:
    """Log lines on stderr, logfmt (`ts=... level=... logger=... event=...`) or JSON (see bigk.cli.logs)."""
    from bigk.cli.logs import setup_logging as setup

    setup(level, fmt)


def register(app: typer.Typer) -> None:
    """Add `bigk serve`."""

    @app.command("serve")
    def serve(
        specs: list[Path] = typer.Option([Path("jobspecs")], "--specs", help="Job spec folder or file (repeatable)."),
        queues: Path | None = typer.Option(None, "--queues",
                                           help="Queue file (kind: Queue documents; the Helm chart writes it from "
                                                "its queues values). When given, it alone declares the queues and "
                                                "Queue documents under --specs are ignored."),
        cluster: Path = typer.Option(Path("jobspecs/cluster.yaml"), "--cluster",
                                     help="Cluster file for the embedded emulated cluster."),
        clusters: Path | None = typer.Option(None, "--clusters",
                                             help="Clusters file (kind: Clusters; jobspecs/clusters/clusters.yaml): "
                                                  "run several clusters and dispatch each run to one of them "
                                                  "(docs/multicluster.md)."),
        emulate: int = typer.Option(0, "--emulate", min=0,
                                    help="Run N embedded emulated clusters: the first N of "
                                         "jobspecs/clusters/clusters.yaml (N <= 3), each run dispatched to one."),
        dispatch_hold: float = typer.Option(3600.0, "--dispatch-hold-seconds", min=0.0,
                                            help="Several clusters: a run that fits nowhere now waits unsubmitted "
                                                 "at most this long, then goes where it should start soonest."),
        cluster_grace: float = typer.Option(300.0, "--cluster-grace-seconds", min=0.0,
                                            help="Several clusters: runs of an unreachable cluster are Unknown this "
                                                 "long; then those that never started are dispatched elsewhere."),
        kubeconfig: str | None = typer.Option(None, "--kubeconfig", help="Use this real cluster (kubeconfig file)."),
        kube_server: str | None = typer.Option(None, "--kube-server", help="Use the API server at this URL."),
        in_cluster: bool | None = typer.Option(None, "--in-cluster/--no-in-cluster",
                                               help="Use the pod's service account (default: on inside a "
                                                    "Kubernetes pod, i.e. when KUBERNETES_SERVICE_HOST is set)."),
        policy: str = typer.Option("bigk", "--policy", help="Placement policy."),
        listen: str = typer.Option("127.0.0.1:8080", "--listen", help="HOST:PORT of the HTTP API (port 0: any)."),
        state_dir: Path | None = typer.Option(None, "--state-dir", envvar="BIGK_STATE_DIR",
                                              help="Where the SQLite store, token and kubeconfig live "
                                                   "(default .bigk)."),
        database_url: str | None = typer.Option(None, "--database-url", envvar="BIGK_DATABASE_URL",
                                                help="SQLAlchemy URL, e.g. postgresql+psycopg://u:p@h/db."),
        token_file: Path | None = typer.Option(None, "--token-file", help="Bearer token for actions."),
        spec_policy: Path | None = typer.Option(None, "--spec-policy", envvar="BIGK_SPEC_POLICY",
                                                help="What specs may ask: allowed namespaces and Pod Security "
                                                     "levels (default: namespace 'default', restricted)."),
        allowed_host: list[str] = typer.Option([], "--allowed-host",
                                               help="A Host name the API answers besides IP addresses and "
                                                    "localhost (repeatable; DNS-rebinding guard)."),
        submit_mode: str = typer.Option("auto", "--submit-mode",
                                        help="spark (spark-submit), direct (create the driver pod; dev/test) or "
                                             "auto (direct on the embedded emulator, spark otherwise)."),
        kickoff: bool | None = typer.Option(None, "--kickoff/--no-kickoff",
                                            help="On a fresh state dir, run each scheduled job once at start "
                                                 "(default: on with the embedded emulator)."),
        time_scale: float = typer.Option(1.0, "--time-scale", min=0.001,
                                         help="Embedded emulator only: multiplies simulated run times "
                                              "(0.1 = ten times faster)."),
        lease_seconds: float = typer.Option(15.0, "--lease-seconds", min=1.0,
                                            help="Leader lease duration; a replacement takes over within it."),
        log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING or ERROR."),
        log_format: str = typer.Option("logfmt", "--log-format", envvar="BIGK_LOG_FORMAT",
                                       help="logfmt (key=value) or json (one object per line, the same fields)."),
        gpu_idle_minutes: float = typer.Option(10.0, "--gpu-idle-minutes", min=0.01,
                                               help="A GPU held by a run is idle after this many minutes of readings "
                                                    "below --gpu-idle-threshold (bigk get gpus --idle)."),
        gpu_idle_threshold: float = typer.Option(5.0, "--gpu-idle-threshold", min=0.0, max=100.0,
                                                 help="Utilisation percent below which a GPU counts as idle."),
        gpu_reading_ttl: float = typer.Option(60.0, "--gpu-reading-ttl", min=1.0,
                                              help="Seconds a GPU reading (health, free memory) counts; older "
                                                   "readings are unknown and accounting alone decides."),
    ) -> None:
        """Run bigk: cron, run lifecycle, scheduler and HTTP API (embedded emulated cluster by default)."""
        from bigk.service.api import create_app
        from bigk.service.app import Service, ServiceConfig, default_state_dir
        from bigk.service.auth import resolve_token
        from bigk.service.http import HttpServer, parse_listen

        if kubeconfig and kube_server:
            raise typer.BadParameter("give --kubeconfig or --kube-server, not both")
        if clusters is not None and emulate:
            raise typer.BadParameter("give --clusters FILE or --emulate N, not both")
        if (clusters is not None or emulate) and (kubeconfig or kube_server):
            raise typer.BadParameter("with --clusters / --emulate the clusters file names each cluster's connection; "
                                     "drop --kubeconfig / --kube-server")
        if in_cluster is None:
            in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not (kubeconfig or kube_server) \
                and clusters is None and not emulate
        setup_logging(log_level, log_format)
        state = state_dir or default_state_dir()
        host, port = parse_listen(listen)
        token, where = resolve_token(state, token_file, create=True)
        config = ServiceConfig(specs=list(specs), cluster_file=cluster, kubeconfig=kubeconfig,
                               kube_server=kube_server, in_cluster=in_cluster, policy=policy, state_dir=state,
                               database_url=database_url, queues_file=queues,
                               submit_mode=submit_mode, emulator_time_scale=time_scale,
                               leader_lease_s=lease_seconds, spec_policy=spec_policy,
                               allowed_hosts=[*allowed_host, host], gpu_idle_minutes=gpu_idle_minutes,
                               gpu_idle_threshold_pct=gpu_idle_threshold, gpu_reading_ttl_s=gpu_reading_ttl,
                               clusters_file=clusters, emulate=emulate,
                               dispatch_hold_s=dispatch_hold, cluster_lost_grace_s=cluster_grace)
        http = HttpServer(host, port)  # bind first: a busy port fails before anything starts
        service = Service(config)
        stop = threading.Event()

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("event=signal signal=%s", signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            service.start()
            if kickoff if kickoff is not None else config.embedded:
                service.kickoff()
            url = http.start(create_app(service, token))
            tune_for_long_lived_state()  # a full GC pass over the scheduler's state cost ~200 ms per cycle
            favour_waiting_threads()  # the API's reads wait less behind the scheduler's threads
            (state / "server").write_text(url + "\n", encoding="utf-8")
            log.info("event=serve_listening url=%s token_from=%s", url, where)
            typer.echo(f"bigk serving on {url}  (token: {where}; try `bigk get runs`)", err=True)
            while not stop.wait(1.0):
                pass
        except BigkError:
            raise
        finally:
            http.stop()
            service.stop()
            server_file = state / "server"
            if server_file.exists() and server_file.read_text(encoding="utf-8").strip() == http.url:
                server_file.unlink()  # the CLI should not keep calling a server that is gone
