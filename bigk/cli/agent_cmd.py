"""`bigk agent`: the per-node GPU readings publisher (runs as a DaemonSet on GPU nodes)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

import typer

from bigk.cluster.readings import ReadingRecord
from bigk.errors import BigkError

log = logging.getLogger(__name__)
DEFAULT_METRICS_PORT = 9402  # kept equal to bigk.gpu.agent.DEFAULT_METRICS_PORT (imported lazily: kubernetes is slow)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""

    @app.command("agent")
    def agent(
        node: str = typer.Option(..., "--node", envvar="NODE_NAME",
                                 help="Name of this node in Kubernetes (in a DaemonSet: the downward API's "
                                      "spec.nodeName)."),
        kubeconfig: str | None = typer.Option(None, "--kubeconfig", help="Kubeconfig file to use."),
        kube_server: str | None = typer.Option(None, "--kube-server",
                                               help="API server URL without credentials (e.g. the emulated "
                                                    "cluster's http://127.0.0.1:PORT)."),
        interval: float = typer.Option(10.0, "--interval", min=0.5, help="Seconds between readings."),
        once: bool = typer.Option(False, "--once", help="Read and publish once, then exit."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the JSON instead of patching the node."),
        metrics_port: int = typer.Option(DEFAULT_METRICS_PORT, "--metrics-port",
                                         help="Port for the agent's /metrics and /healthz (0 = off)."),
        metrics_addr: str = typer.Option("0.0.0.0", "--metrics-addr", help="Address for /metrics."),
        dcgm_url: str | None = typer.Option(None, "--dcgm-prometheus-url",
                                            help="Read GPUs from dcgm-exporter via this Prometheus instead of "
                                                 "NVML."),
        dcgm_host_label: str = typer.Option("Hostname", "--dcgm-host-label",
                                            help="Label carrying the node name on DCGM series."),
        log_format: str = typer.Option("logfmt", "--log-format", envvar="BIGK_LOG_FORMAT",
                                       help="logfmt (key=value) or json (one object per line), as bigk serve."),
    ) -> None:
        """Publish this node's live GPU readings (NVML or DCGM) to its bigk.io/gpu-readings annotation."""
        from bigk.cli.logs import setup_logging
        from bigk.gpu.agent import Agent, NodeAnnotationPublisher, make_core_api, serve_metrics

        setup_logging("INFO", log_format)
        read, close = _source(node, dcgm_url, dcgm_host_label)
        try:
            publisher = None if dry_run else NodeAnnotationPublisher(make_core_api(kubeconfig, kube_server))
            runner = Agent(node=node, read=read, publisher=publisher, interval_s=interval, echo=typer.echo)
            if once:
                runner.run_once()
                return
            if metrics_port:
                serve_metrics(metrics_port, metrics_addr)
            stop = threading.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
            log.info("event=agent_started node=%s interval_s=%s source=%s dry_run=%s", node, interval,
                     "dcgm" if dcgm_url else "nvml", dry_run)
            runner.run_forever(stop)
        finally:
            close()


def _source(node: str, dcgm_url: str | None, host_label: str) -> tuple[Callable[[], list[ReadingRecord]],
                                                                        Callable[[], None]]:
    """The reading function and its cleanup, for NVML or DCGM."""
    if dcgm_url:
        from bigk.gpu.dcgm import DcgmReader

        dcgm = DcgmReader(dcgm_url, host_label=host_label)

        def read_dcgm() -> list[ReadingRecord]:
            records = dcgm.read_node(node)
            if not records:
                raise BigkError(f"Prometheus at {dcgm_url} has no DCGM series with {host_label}={node!r}")
            return records

        return read_dcgm, dcgm.close
    from bigk.gpu.nvml import NvmlReader, read_records

    reader = NvmlReader()
    reader.open()
    return (lambda: read_records(reader)), reader.close
