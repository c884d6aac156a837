"""Run a job's application with pyspark's own spark-submit in local mode (`bigk run-local`).

The same program as in the cluster, on this machine's CPUs. What cannot run
here is left out, deliberately and visibly: Kubernetes settings, GPU resource
requests and the RAPIDS plugin (its jar and a GPU are not here), dynamic
allocation. Paths the image knows are mapped to this checkout:

- `local:///opt/bigk/apps/<path>` -> `<apps dir>/<path>` (default `jobspecs/apps/`)
- `file://<path>` or an absolute path -> that path; a relative path -> relative to the spec file
- remote URLs (s3a://, https://, ...) are passed through unchanged
"""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bigk.spark.home import spark_env, spark_submit
from bigk.spark.submit import deps_args
from bigk.spec.errors import SpecError
from bigk.spec.model import JobSpec

log = logging.getLogger(__name__)

IMAGE_APPS_DIR = "/opt/bigk/apps/"
DEFAULT_APPS_DIR = Path("jobspecs/apps")
_CLUSTER_ONLY_PREFIXES = (
    "spark.kubernetes.",
    "spark.executor.resource.",
    "spark.driver.resource.",
    "spark.task.resource.",
    "spark.rapids.",
    "spark.dynamicAllocation.",
    "spark.executor.instances",
)


def map_path(uri: str, apps_dir: Path, base_dir: Path) -> str:
    """Where an application file of the spec is on this machine (see module doc)."""
    if uri.startswith("local://"):
        path = uri[len("local://") :]
        if path.startswith(IMAGE_APPS_DIR):
            return str((apps_dir / path[len(IMAGE_APPS_DIR) :]).resolve())
        return path
    if uri.startswith("file://"):
        return uri[len("file://") :]
    if "://" in uri:
        return uri
    local = Path(uri)
    return str(local if local.is_absolute() else (base_dir / local).resolve())


def _is_local_missing(mapped: str) -> bool:
    return "://" not in mapped and not Path(mapped).exists()


def local_conf(job: JobSpec) -> dict[str, str]:
    """The spec's settings that mean something in local mode."""
    conf = {k: v for k, v in job.spec.sparkConf.items() if not k.startswith(_CLUSTER_ONLY_PREFIXES)}
    plugins = [p for p in conf.get("spark.plugins", "").split(",") if p.strip() and "nvidia" not in p]
    if plugins:
        conf["spark.plugins"] = ",".join(plugins)
    else:
        conf.pop("spark.plugins", None)
    for key, value in job.spec.hadoopConf.items():
        conf[f"spark.hadoop.{key}"] = value
    conf.setdefault("spark.log.level", "WARN")  # Spark's INFO chatter buries the application's own output
    conf.update(
        {
            "spark.ui.enabled": "false",
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
        }
    )
    for key, value in job.spec.executor.literal_env.items():
        conf[f"spark.executorEnv.{key}"] = value
    return conf


def local_argv(job: JobSpec, cores: int = 2, apps_dir: Path | None = None, base_dir: Path | None = None) -> list[str]:
    """spark-submit argv that runs `job`'s application with `--master local[cores]`."""
    if cores < 1:
        raise SpecError(f"cores must be at least 1, got {cores}")
    apps = Path(apps_dir) if apps_dir is not None else DEFAULT_APPS_DIR
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    main = map_path(job.spec.mainApplicationFile, apps, base)
    if _is_local_missing(main):
        raise SpecError(
            f"{job.metadata.name}: application file {job.spec.mainApplicationFile!r} maps to {main}, "
            "which does not exist"
        )
    deps = job.spec.deps.model_copy(
        update={
            "pyFiles": [map_path(p, apps, base) for p in job.spec.deps.pyFiles],
            "files": [map_path(p, apps, base) for p in job.spec.deps.files],
            "jars": [map_path(p, apps, base) for p in job.spec.deps.jars],
            "archives": [map_path(p, apps, base) for p in job.spec.deps.archives],
        }
    )
    local_job = job.model_copy(update={"spec": job.spec.model_copy(update={"deps": deps, "rapids": None})})
    argv = [str(spark_submit()), "--master", f"local[{cores}]", "--name", job.metadata.name]
    if job.spec.mainClass:
        argv += ["--class", job.spec.mainClass]
    argv += ["--driver-memory", "1g"]
    argv += deps_args(local_job)
    for key in sorted(conf := local_conf(job)):
        argv += ["--conf", f"{key}={conf[key]}"]
    argv.append(main)
    argv += list(job.spec.arguments)
    return argv


@dataclass
class LocalRun:
    """Outcome of a local run."""

    argv: list[str]
    returncode: int
    seconds: float
    output: str

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0


def run_local(
    job: JobSpec,
    cores: int = 2,
    apps_dir: Path | None = None,
    base_dir: Path | None = None,
    timeout_s: float | None = None,
    echo: bool = False,
) -> LocalRun:
    """Run the job's application locally and wait for it; a timeout counts as failure (return code 124)."""
    argv = local_argv(job, cores, apps_dir, base_dir)
    limit = timeout_s if timeout_s is not None else float(job.spec.activeDeadlineSeconds or 1800)
    started = time.monotonic()
    log.info("event=run_local_start job=%s cores=%d", job.metadata.name, cores)
    try:
        proc = subprocess.run(
            argv,
            env={**spark_env(), **job.spec.driver.literal_env},
            stdout=None if echo else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=limit,
            check=False,
        )
        code, output = proc.returncode, proc.stdout or ""
    except subprocess.TimeoutExpired as exc:
        code = 124
        raw = exc.stdout or b""
        output = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    except OSError as exc:
        raise SpecError(f"cannot start spark-submit: {exc}") from None
    seconds = time.monotonic() - started
    log.info("event=run_local_done job=%s rc=%d seconds=%.1f", job.metadata.name, code, seconds)
    return LocalRun(argv, code, seconds, output)
