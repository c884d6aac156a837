"""The job catalog: the specs folder as loaded jobs, reloaded when files change.

Loading is per file (see `bigk.spec.loader`): a broken file is reported and the
rest load. On reload, jobs that came from a file that is now broken are kept as
they were, so a typo pushed to git never stops a job that was already running on
schedule. The folder is polled (mtime and size of every YAML file): no inotify
dependency, and it works the same on network file systems and in containers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bigk import metrics
from bigk.errors import NotFound

if TYPE_CHECKING:
    from bigk.service.lastgood import LastGood
    from bigk.spec.policy import SpecPolicy
    from bigk.spec.queues import QueueTree

log = logging.getLogger(__name__)

_SUFFIXES = {".yaml", ".yml"}


class UnknownJob(NotFound):
    """No job of that name in the served catalog."""


@dataclass
class CatalogView:
    """One consistent state of the catalog."""

    jobs: dict[str, Any] = field(default_factory=dict)  # name -> LoadedJob (.spec, .file, .line)
    problems: list[Any] = field(default_factory=list)  # SpecProblem; str() = "FILE:LINE:COL: field: msg"
    kept: list[str] = field(default_factory=list)  # jobs kept from a previous load because their file broke
    loaded_at: float = 0.0
    queues: QueueTree | None = None  # the served queue tree (empty: no queues declared)
    queues_kept: bool = False  # the tree is the last good one: a file declaring queues is broken now


def _problem_file(problem: Any) -> str:
    file = getattr(problem, "file", None)
    if file:
        return str(file)
    return str(problem).split(":", 1)[0]


def _fingerprint(paths: Sequence[Path]) -> tuple[tuple[str, int, int], ...]:
    entries: list[tuple[str, int, int]] = []
    for root in paths:
        candidates = [root] if root.is_file() else (sorted(root.rglob("*")) if root.is_dir() else [])
        for path in candidates:
            if path.suffix.lower() in _SUFFIXES and path.is_file():
                try:
                    st = path.stat()
                except OSError:
                    continue
                entries.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(entries)


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return a == b


class Catalog:
    """Loaded job specs plus the problems found; `reload()` is cheap when nothing changed."""

    def __init__(self, paths: Sequence[str | Path], clock: Callable[[], float],
                 on_change: Callable[[CatalogView], None] | None = None, poll_s: float = 2.0,
                 policy: SpecPolicy | None = None) -> None:
        self.paths = [Path(p) for p in paths]
        self.policy = policy  # the install's SpecPolicy (None: the built-in default)
        self.queues_from: list[Path] = []  # `serve --queues` (Helm): the only source of queues when set
        self._clock = clock
        self._on_change = on_change
        self._poll_s = poll_s
        self._fp: tuple[tuple[str, int, int], ...] | None = None
        self.last_good: LastGood | None = None  # good files stored, used after a restart
        self._view = CatalogView()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def view(self) -> CatalogView:
        return self._view

    def job(self, name: str) -> Any | None:
        return self._view.jobs.get(name)

    def loaded(self, name: str) -> Any:
        """The catalog entry of job `name` (LoadedJob); UnknownJob (not found) if there is none."""
        loaded = self._view.jobs.get(name)
        if loaded is None:
            raise UnknownJob(f"no job {name!r} (list them with `bigk get jobs`)")
        return loaded

    def reload(self, force: bool = False) -> bool:
        """Load the folder again if any YAML file changed; return True when the catalog changed."""
        from bigk.spec.loader import load_specs  # the spec area's loader

        with self._lock:
            fp = _fingerprint([*self.paths, *self.queues_from])
            if not force and fp == self._fp:
                return False
            self._fp = fp
            old = self._view
            # A served job's name belongs to the file it came from: no other file can take it over.
            owners = {name: Path(str(loaded.file)) for name, loaded in old.jobs.items()}
            result = load_specs([str(p) for p in self.paths], policy=self.policy, owners=owners,
                                queues_from=self.queues_from or None)
            jobs = dict(result.jobs)
            broken = {str(f) for f in getattr(result, "failed_files", ())} | {_problem_file(p) for p in result.problems}
            kept = []
            for name, loaded in old.jobs.items():
                if name not in jobs and any(_same_file(str(loaded.file), b) for b in broken):
                    jobs[name] = loaded
                    kept.append(name)
            if self.last_good is not None:  # broken files with no jobs in memory: their stored last good version
                kept += self.last_good.recover(broken, jobs, lambda p: load_specs([str(p)], policy=self.policy))
            queues, queues_kept = result.queues, False
            if result.queues_failed and old.queues:  # a broken queue file never empties the tree
                queues, queues_kept = old.queues, True
            self._view = CatalogView(jobs=jobs, problems=list(result.problems), kept=sorted(kept),
                                     loaded_at=self._clock(), queues=queues, queues_kept=queues_kept)
        per_file: dict[str, int] = {}
        for problem in result.problems:
            per_file[_problem_file(problem)] = per_file.get(_problem_file(problem), 0) + 1
            log.warning("event=spec_problem problem=%r", str(problem))
        for f in {_problem_file(p) for p in old.problems} - set(per_file):
            per_file[f] = 0
        metrics.set_spec_load_errors(per_file)
        added = sorted(set(jobs) - set(old.jobs))
        removed = sorted(set(old.jobs) - set(jobs))
        log.info("event=catalog_loaded jobs=%d problems=%d added=%s removed=%s kept=%s",
                 len(jobs), len(result.problems), ",".join(added) or "-", ",".join(removed) or "-",
                 ",".join(kept) or "-")
        if self.last_good is not None:
            from bigk.service.lastgood import good_files

            self.last_good.remember(good_files(result, broken))
        if self._on_change is not None:
            self._on_change(self._view)
        return True

    def start(self) -> None:
        """Poll the folder in a daemon thread until `stop()`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="bigk-catalog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._poll_s):
            try:
                self.reload()
            except Exception:  # a reload bug must never kill the service
                log.exception("event=catalog_reload_failed")
