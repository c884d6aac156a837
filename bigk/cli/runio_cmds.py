"""`bigk logs RUN` and `bigk ui RUN`: a run's logs and Spark UI through bigk serve (no cluster credentials needed).

`bigk logs` streams the driver's log (or `--executor N`'s) as `kubectl logs` would.
`bigk ui` forwards a local port to the driver's Spark UI while the driver runs (the
way `kubectl port-forward` would, through bigk serve and the API server's pod
proxy); once the driver has finished it says so and prints the history server
link when bigk serve has one (`BIGK_SPARK_HISTORY_URL`).
"""

from __future__ import annotations

import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import typer

SERVER_OPT = typer.Option(None, "--server", "-s", envvar="BIGK_SERVER",
                          help="bigk serve URL (default: the state dir's, else http://127.0.0.1:8080).")
_RELAYED = ("content-type", "location", "cache-control")


def _client(server: str | None) -> Any:
    from bigk.service.client import Client

    return Client(server)


def stream_logs(server: str | None, run: str, executor: int | None, follow: bool, previous: bool,
                tail: int | None, timestamps: bool, out: Any = None) -> None:
    """Copy the run's log to `out` (stdout) as it arrives."""
    import httpx

    from bigk.service.client import Unreachable

    out = out or sys.stdout
    client = _client(server)
    params = {"executor": executor, "follow": follow or None, "previous": previous or None, "tail": tail,
              "timestamps": timestamps or None}
    try:
        with client.http.stream("GET", f"/api/v1/runs/{run}/logs", params={k: v for k, v in params.items()
                                                                             if v is not None},
                                timeout=httpx.Timeout(15.0, read=None if follow else 60.0)) as resp:
            if resp.status_code >= 400:  # the same one-line errors and exit codes as every other call
                resp.read()
                client.check(resp, f"/api/v1/runs/{run}/logs")
            for text in resp.iter_text():
                out.write(text)
                out.flush()
    except httpx.TransportError as exc:
        raise Unreachable(f"cannot reach bigk at {client.server} ({type(exc).__name__}); start it with "
                          "`bigk serve` or set --server / $BIGK_SERVER") from None
    finally:
        client.close()


class UiForwarder:
    """A local HTTP listener that hands every request to the run's Spark UI through bigk serve."""

    def __init__(self, client: Any, run: str, host: str = "127.0.0.1", port: int = 4040) -> None:
        self.client = client
        self.run = run
        forwarder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                forwarder.relay(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
                return

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="bigk-ui", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}" if isinstance(host, str) else f"http://{host.decode()}:{port}"

    def relay(self, handler: BaseHTTPRequestHandler) -> None:
        import httpx

        try:
            resp = self.client.http.get(f"/api/v1/runs/{self.run}/ui/proxy{handler.path}")
            status, body = resp.status_code, resp.content
            headers = {k: v for k, v in resp.headers.items() if k.lower() in _RELAYED}
        except httpx.TransportError as exc:
            status, body, headers = 502, f"bigk serve is unreachable: {exc}\n".encode(), {"content-type": "text/plain"}
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def start(self) -> UiForwarder:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _finished_message(info: dict[str, Any]) -> list[str]:
    lines = [f"run {info['run']} ({info['state']}): driver pod {info['pod'] or '-'} is "
             f"{info['phase'] or 'not created'}; the Spark UI only answers while the driver runs."]
    if info.get("historyServer"):
        lines.append(f"History server: {info['historyServer']}")
    else:
        lines.append("No history server is configured: run one over the job's spark.eventLog.dir and start bigk "
                     "serve with BIGK_SPARK_HISTORY_URL to get a link here.")
    if info.get("portForward") and info.get("phase") not in ("Succeeded", "Failed", "Gone"):
        lines.append(f"Once it runs: bigk ui {info['run']}   (or, with cluster access: {info['portForward']})")
    return lines


def register(app: typer.Typer) -> None:
    """Add `logs` and `ui` to the root app."""

    @app.command("logs")
    def logs(
        run: str = typer.Argument(..., help="Run id (bigk get runs)."),
        executor: int | None = typer.Option(None, "--executor", "-e", help="Executor id instead of the driver."),
        follow: bool = typer.Option(False, "--follow", "-f", help="Keep streaming while the pod runs."),
        previous: bool = typer.Option(False, "--previous", "-p", help="The previous container's log (a restart)."),
        tail: int | None = typer.Option(None, "--tail", min=0, help="Only the last N lines."),
        timestamps: bool = typer.Option(False, "--timestamps", help="Prefix each line with its time."),
        server: str | None = SERVER_OPT,
    ) -> None:
        """Print a run's driver log (or an executor's), through bigk serve; -f follows it."""
        stream_logs(server, run, executor, follow, previous, tail, timestamps)

    @app.command("ui")
    def ui(
        run: str = typer.Argument(..., help="Run id (bigk get runs)."),
        port: int = typer.Option(4040, "--port", min=0, max=65535, help="Local port (0: any free one)."),
        address: str = typer.Option("127.0.0.1", "--address", help="Local address to listen on."),
        print_only: bool = typer.Option(False, "--print", help="Only say where the UI is; forward nothing."),
        server: str | None = SERVER_OPT,
    ) -> None:
        """Forward a local port to a run's Spark UI while its driver runs (else: the history server link)."""
        client = _client(server)
        info = client.get(f"/runs/{run}/ui")
        if not info.get("running"):
            for line in _finished_message(info):
                typer.echo(line)
            return
        if print_only:
            typer.echo(f"Spark UI of run {run}: {client.server}{info['proxy']}")
            typer.echo(f"With cluster access: {info['portForward']}")
            return
        forwarder = UiForwarder(client, run, address, port).start()
        typer.echo(f"Forwarding {forwarder.url} -> Spark UI of run {run} (driver {info['pod']}); Ctrl-C to stop")
        try:
            while client.get(f"/runs/{run}/ui").get("running"):
                time.sleep(5)
            typer.echo(f"driver {info['pod']} stopped; its Spark UI is gone")
        except KeyboardInterrupt:
            pass
        finally:
            forwarder.stop()
