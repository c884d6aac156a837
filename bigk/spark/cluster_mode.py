"""Running pyspark's `spark-submit` in cluster mode: the argv bigk accepts, and the process itself.

spark-submit is run as an argument vector (never through a shell), with SPARK_HOME
and the running Python's `bin/` on PATH (`bigk.spark.home.submit_environment`).
With `spark.kubernetes.submission.waitAppCompletion=false` it exits once the driver
pod and its resources are created; following the driver is the Kubernetes side's
job (`bigk.kube.submit`).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from bigk.spark.errors import SubmitError

WAIT_APP = "spark.kubernetes.submission.waitAppCompletion"


def master_server(master_url: str) -> str:
    """'k8s://http://host:port' -> 'http://host:port'."""
    if not master_url.startswith("k8s://"):
        raise SubmitError(f"master {master_url!r} must look like k8s://https://host:6443")
    server = master_url[len("k8s://"):]
    return server if server.startswith(("http://", "https://")) else f"https://{server}"


def check_argv(argv: Sequence[str], master_url: str) -> None:
    """Refuse a submission that would block (waiting for the app) or go somewhere else."""
    if not argv:
        raise SubmitError("empty spark-submit argv")
    if "--master" in argv:
        given = argv[argv.index("--master") + 1] if argv.index("--master") + 1 < len(argv) else ""
        if given != master_url:
            raise SubmitError(f"submission targets {given!r}, this submitter {master_url!r}")
    waits = [a for a in argv if a.startswith(f"{WAIT_APP}=")]
    if not waits or waits[-1] != f"{WAIT_APP}=false":
        raise SubmitError(f"submission must set {WAIT_APP}=false (bigk follows the driver itself)")


def run_spark_submit(argv: Sequence[str], env: dict[str, str], timeout_s: float, what: str) -> str:
    """Run spark-submit to its exit; its output. SubmitError, naming `what`, when it fails or overruns."""
    try:
        proc = subprocess.run(list(argv), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise SubmitError(f"spark-submit for {what} did not finish within {timeout_s:.0f} s") from None
    except OSError as exc:
        raise SubmitError(f"cannot run {argv[0]}: {exc}") from None
    output = proc.stdout.decode("utf-8", "replace") if proc.stdout else ""
    if proc.returncode != 0:
        raise SubmitError(f"spark-submit exited with {proc.returncode} for {what}: {tail(output)}")
    return output


def tail(text: str, lines: int = 8) -> str:
    """The last non-blank lines of spark-submit's output, on one line."""
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept) if kept else "(no output)"
