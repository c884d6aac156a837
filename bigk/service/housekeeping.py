"""Bounded state: what `bigk serve` deletes so that months of runs never fill a disk or a table.

Runs are pruned by their job's history limits as they finish (see lifecycle). The rest
is swept here, every minute on the leader:

- `submit/` in the state folder: the pod template files written for a run's submission
  are needed only while it is submitted; a run that is no longer active leaves none
  behind (after a grace period, so a spark-submit still reading them is not disturbed);
- events: older than the retention window, or beyond the newest `EVENTS_MAX_ROWS`;
- history rows (the statistics `bigk history` shows, kept when runs are pruned):
  older than the retention window, or beyond the newest `HISTORY_PER_JOB` of a job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from bigk.service.store import Store
from bigk.spec.naming import gang_name

log = logging.getLogger(__name__)

EVERY_S = 60.0
RETENTION_S = 30 * 86400.0
EVENTS_MAX_ROWS = 50_000
HISTORY_PER_JOB = 1_000
SUBMIT_GRACE_S = 600.0  # a backstop: each submission removes its own files
TEMPLATE_SUFFIX = "-template.yaml"


def sweep_submit_dir(workdir: Path, active_gangs: set[str], now: float, grace_s: float = SUBMIT_GRACE_S) -> int:
    """Delete template files of runs that are not active any more (older than `grace_s`); return how many."""
    removed = 0
    if not workdir.is_dir():
        return 0
    for path in workdir.iterdir():
        name = path.name
        if not name.endswith(TEMPLATE_SUFFIX) or not path.is_file():
            continue
        gang = name[: -len(TEMPLATE_SUFFIX)].rsplit("-", 1)[0]  # {gang}-{role}-template.yaml
        try:
            old = now - path.stat().st_mtime >= grace_s
        except OSError:
            continue
        if old and gang not in active_gangs:
            try:
                path.unlink()
                removed += 1
            except OSError as exc:
                log.warning("event=submit_file_prune_failed file=%s error=%r", path, str(exc))
    return removed


def remove_submission_files(workdir: Path, gang: str) -> None:
    """Delete one run's pod template files once its submission is done."""
    for role in ("driver", "executor"):
        path = workdir / f"{gang}-{role}{TEMPLATE_SUFFIX}"
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("event=submit_file_remove_failed file=%s error=%r", path, str(exc))


def prune_rows(engine: Engine, now: float, *, retention_s: float = RETENTION_S,
               events_max: int = EVENTS_MAX_ROWS, history_per_job: int = HISTORY_PER_JOB) -> tuple[int, int]:
    """Delete old and surplus events and history rows; return (events, history rows) deleted."""
    cutoff = now - retention_s
    with engine.begin() as conn:
        events = _count(conn.execute(text("DELETE FROM bigk_events WHERE at < :cutoff"), {"cutoff": cutoff}))
        events += _count(conn.execute(text(
            "DELETE FROM bigk_events WHERE id <= "
            "(SELECT id FROM bigk_events ORDER BY id DESC LIMIT 1 OFFSET :keep)"), {"keep": events_max}))
        history = _count(conn.execute(text("DELETE FROM bigk_history WHERE finished_at < :cutoff"),
                                      {"cutoff": cutoff}))
        crowded = conn.execute(text("SELECT job FROM bigk_history GROUP BY job HAVING COUNT(*) > :cap"),
                               {"cap": history_per_job}).scalars().all()
        for job in crowded:
            history += _count(conn.execute(text(
                "DELETE FROM bigk_history WHERE job = :job AND finished_at <= "
                "(SELECT finished_at FROM bigk_history WHERE job = :job ORDER BY finished_at DESC "
                "LIMIT 1 OFFSET :cap)"), {"job": job, "cap": history_per_job}))
    return events, history


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def run(store: Store, state_dir: Path, clock: Callable[[], float]) -> None:
    """One sweep for a running service (called from its tick loop on the leader)."""
    now = clock()
    started = time.perf_counter()
    active = {gang_name(r.job, r.id) for r in store.active_runs()}
    files = sweep_submit_dir(Path(state_dir) / "submit", active, time.time(), SUBMIT_GRACE_S)
    events, history = prune_rows(store.engine, now, retention_s=RETENTION_S, events_max=EVENTS_MAX_ROWS,
                                 history_per_job=HISTORY_PER_JOB)
    if files or events or history:
        log.info("event=housekeeping submit_files=%d events=%d history=%d seconds=%.3f", files, events, history,
                 time.perf_counter() - started)
