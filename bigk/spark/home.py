"""Where Spark lives: pyspark's own distribution (spark-submit, jars) and the environment it needs.

pyspark from PyPI ships `bin/spark-submit`; the script finds Spark and Python
through SPARK_HOME and PATH, so we set both explicitly instead of trusting the
caller's shell (the virtualenv's bin/ may not be on PATH under a service).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bigk.spec.errors import SpecError


def spark_home() -> Path:
    """The installed pyspark package folder, which is a complete SPARK_HOME."""
    try:
        import pyspark
    except ImportError:
        raise SpecError("pyspark is not installed: pip install 'bigk[spark]' (or pip install pyspark)") from None
    return Path(pyspark.__file__).resolve().parent


def spark_submit() -> Path:
    return spark_home() / "bin" / "spark-submit"


def spark_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """Variables spark-submit needs, layered over `base` (default: this process's environment)."""
    env = dict(os.environ if base is None else base)
    python_bin = str(Path(sys.executable).parent)
    env["SPARK_HOME"] = str(spark_home())
    env["PATH"] = os.pathsep.join(p for p in (python_bin, env.get("PATH", "")) if p)
    env["PYSPARK_PYTHON"] = sys.executable
    env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    return env


def submit_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment with `extra` (a submission's env) laid over it, and what spark-submit still
    lacks: SPARK_HOME, and the Python that runs bigk first on PATH."""
    env = dict(os.environ)
    env.update(extra or {})
    env.setdefault("SPARK_HOME", str(spark_home()))
    python_bin = str(Path(sys.executable).parent)
    if python_bin not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = os.pathsep.join(p for p in (python_bin, env.get("PATH", "")) if p)
    return env


def submit_env() -> dict[str, str]:
    """The variables a cluster-mode spark-submit needs, to lay over the caller's environment.

    No PYSPARK_PYTHON here: in cluster mode the driver runs the image's Python.
    """
    full = spark_env()
    return {"SPARK_HOME": full["SPARK_HOME"], "PATH": full["PATH"]}
