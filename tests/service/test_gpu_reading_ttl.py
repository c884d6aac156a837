"""`bigk serve --gpu-reading-ttl` (Helm `serve.gpuReadingTtlSeconds`) reaches every reader of GPU readings.

How the scheduler judges a stale reading is pinned in tests/scheduler/test_filters.py; here, that the
one setting is what the scheduler, the ETA board's forward run and `bigk get gpus` use.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from bigk.cli.main import app
from tests.service.conftest import ROOT, Running


def test_the_reading_ttl_reaches_the_scheduler_the_eta_board_and_get_gpus(serve: Callable[..., Running]) -> None:
    svc = serve(ROOT / "jobspecs", gpu_reading_ttl_s=7.0)
    home = svc.service.home
    assert home is not None and home.scheduler is not None
    assert home.scheduler.stale_after_s == 7.0
    assert home.cluster is not None and home.cluster.stale_after_s == 7.0
    assert svc.service.eta is not None and svc.service.eta.stale_after_s == 7.0


def test_serve_takes_the_option(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--help"], terminal_width=200)
    assert "--gpu-reading-ttl" in result.output
    bad = CliRunner().invoke(app, ["serve", "--gpu-reading-ttl", "0", "--state-dir", str(tmp_path)])
    assert bad.exit_code == 2 and "gpu-reading-ttl" in bad.output
