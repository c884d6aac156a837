"""`bigk emulator`: run the embedded emulated cluster on its own, for kubectl and spark-submit."""

from __future__ import annotations

import signal
import tempfile
import threading
from pathlib import Path

import typer

from bigk.cli.logs import setup_logging

DEFAULT_CLUSTER = "jobspecs/cluster.yaml"


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""

    @app.command("emulator")
    def emulator(
        cluster: Path = typer.Option(Path(DEFAULT_CLUSTER), "--cluster", help="Cluster file with the node pools."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
        port: int = typer.Option(6443, "--port", min=0, max=65535, help="Port to listen on (0 = any free port)."),
        kubeconfig: Path | None = typer.Option(
            None, "--kubeconfig", help="Where to write a kubeconfig for it (default: a file in the temp folder)."
        ),
        time_scale: float = typer.Option(
            1.0, "--time-scale", min=0.0001, help="Multiply every simulated delay (0.1 = ten times faster)."
        ),
        kubelet: bool = typer.Option(True, "--kubelet/--no-kubelet", help="Simulate kubelets (pods run and end)."),
        spark_driver: bool = typer.Option(
            True, "--spark-driver/--no-spark-driver", help="Simulate Spark drivers creating executors."
        ),
        gpu_readings: bool = typer.Option(
            True, "--gpu-readings/--no-gpu-readings", help="Publish simulated GPU readings on GPU nodes."
        ),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every bind and pod transition."),
        log_format: str = typer.Option("logfmt", "--log-format", envvar="BIGK_LOG_FORMAT",
                                       help="logfmt (key=value) or json (one object per line), as bigk serve."),
    ) -> None:
        """Run an emulated Kubernetes API with simulated kubelets, Spark drivers and GPUs (a test fixture)."""
        from bigk.cluster.config import ClusterFileError, load_cluster
        from bigk.emulator import EmulatedCluster, EmulatorError

        setup_logging("DEBUG" if verbose else "INFO", log_format)
        try:
            nodes = load_cluster(cluster)
        except ClusterFileError as exc:
            raise EmulatorError(str(exc)) from None
        emulated = EmulatedCluster(nodes, host=host, port=port, kubelet=kubelet, spark_driver=spark_driver,
                                   gpu_readings=gpu_readings, time_scale=time_scale)
        url = emulated.start()
        try:
            path = kubeconfig or Path(tempfile.gettempdir()) / f"bigk-emulator-{emulated.port}.kubeconfig"
            emulated.write_kubeconfig(path)
            typer.echo(f"emulated cluster: {url} ({len(nodes)} nodes from {cluster})")
            typer.echo(f"kubeconfig: {path}")
            typer.echo(f"try: kubectl --kubeconfig {path} get nodes")
            typer.echo(f"control: {url}/emulator/v1 (sick GPUs, node readiness, API faults; see bigk.emulator.control)")
            typer.echo("this is a development/test fixture, not Kubernetes; Ctrl-C stops it")
            stop = threading.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
            stop.wait()
        finally:
            emulated.stop()

    @app.command("sim-nodes")
    def sim_nodes(
        kubeconfig: Path = typer.Option(..., "--kubeconfig", help="Kubeconfig of the API server to join."),
        cluster: Path = typer.Option(Path(DEFAULT_CLUSTER), "--cluster", help="Cluster file with the node pools."),
        time_scale: float = typer.Option(
            1.0, "--time-scale", min=0.0001, help="Multiply every simulated delay (0.1 = ten times faster)."
        ),
        spark_driver: bool = typer.Option(
            True, "--spark-driver/--no-spark-driver", help="Simulate Spark drivers creating executors."
        ),
        gpu_readings: bool = typer.Option(
            True, "--gpu-readings/--no-gpu-readings", help="Publish simulated GPU readings on GPU nodes."
        ),
        log_format: str = typer.Option("logfmt", "--log-format", envvar="BIGK_LOG_FORMAT",
                                       help="logfmt (key=value) or json (one object per line), as bigk serve."),
    ) -> None:
        """Register the cluster file's nodes on a real API server and run their simulated kubelets, Spark
        drivers and GPUs there as ordinary clients (like KWOK), e.g. on the control plane of testenv/up."""
        from bigk.cluster.config import ClusterFileError, load_cluster
        from bigk.emulator import EmulatorError
        from bigk.emulator.remote import SimulatedNodes
        from bigk.kube.client import api_client

        setup_logging("INFO", log_format)
        try:
            nodes = load_cluster(cluster)
        except ClusterFileError as exc:
            raise EmulatorError(str(exc)) from None
        sim = SimulatedNodes(api_client(kubeconfig=str(kubeconfig)), nodes, time_scale=time_scale,
                             spark_driver=spark_driver, gpu_readings=gpu_readings).start()
        typer.echo(f"simulating {len(nodes)} nodes from {cluster} on {kubeconfig}; Ctrl-C stops")
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        try:
            stop.wait()
        finally:
            sim.stop()
