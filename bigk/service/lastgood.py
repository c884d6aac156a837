"""The last good version of every spec file, stored in the state database, so it outlives a restart.

While `bigk serve` runs, a broken spec file keeps its jobs as last loaded (see the
catalog). That memory used to die with the process: restarted while the file was
still broken, the jobs were gone. Now each file that loads without problems is
stored (bytes and SHA-256) when its content changes; when a file is broken and the
catalog has no jobs of it in memory, the stored version is loaded instead (through
the same loader, so the same rules apply) and served, marked as kept, with the
version's hash and time shown by `bigk get problems`.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Float, LargeBinary, MetaData, String, Table, select
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

_meta = MetaData()
VERSIONS = Table(
    "bigk_spec_versions", _meta,
    Column("file", String(1024), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("stored_at", Float, nullable=False),
)
MAX_FILE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Version:
    file: str
    sha256: str
    stored_at: float

    def describe(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "stored_at": self.stored_at}


class LastGood:
    """Remembers good spec files and brings back the jobs of broken ones."""

    def __init__(self, engine: Engine, clock: Callable[[], float]) -> None:
        self.engine = engine
        self._clock = clock
        _meta.create_all(engine)
        self.serving: dict[str, Version] = {}  # file -> the stored version served in its place

    def remember(self, good_files: Iterable[Path]) -> int:
        """Store each good file whose content differs from its stored version; return how many were stored."""
        stored = 0
        with self.engine.begin() as conn:
            known = {row.file: row.sha256 for row in conn.execute(select(VERSIONS.c.file, VERSIONS.c.sha256))}
            for path in good_files:
                key = str(Path(path).resolve())
                try:
                    data = Path(path).read_bytes()
                except OSError:
                    continue
                if len(data) > MAX_FILE_BYTES:
                    continue
                digest = hashlib.sha256(data).hexdigest()
                if known.get(key) == digest:
                    continue
                conn.execute(VERSIONS.delete().where(VERSIONS.c.file == key))
                conn.execute(VERSIONS.insert().values(file=key, sha256=digest, content=data, stored_at=self._clock()))
                stored += 1
                log.info("event=spec_version_stored file=%s sha256=%s", key, digest[:12])
        return stored

    def recover(self, broken_files: Iterable[str], have: dict[str, Any], load: Callable[[Path], Any]) -> list[str]:
        """Add to `have` the jobs of the stored versions of broken files that serve no job yet; names added."""
        added: list[str] = []
        served_files = {str(Path(str(j.file)).resolve()) for j in have.values()}
        self.serving = {f: v for f, v in self.serving.items() if f in {str(Path(b).resolve()) for b in broken_files}}
        for broken in broken_files:
            key = str(Path(broken).resolve())
            if key in served_files and key not in self.serving:
                continue  # the catalog kept this file's jobs from memory
            with self.engine.connect() as conn:
                row = conn.execute(select(VERSIONS).where(VERSIONS.c.file == key)).first()
            if row is None:
                continue
            jobs = self._load(Path(key), bytes(row.content), load)
            for name, loaded in jobs.items():
                if name in have and str(Path(str(have[name].file)).resolve()) != key:
                    continue  # another file defines it now
                have[name] = loaded
                added.append(name)
            if jobs:
                self.serving[key] = Version(key, row.sha256, float(row.stored_at))
                log.warning("event=spec_last_good_served file=%s sha256=%s jobs=%s", key, row.sha256[:12],
                            ",".join(sorted(jobs)))
        return added

    @staticmethod
    def _load(original: Path, content: bytes, load: Callable[[Path], Any]) -> dict[str, Any]:
        """Load stored bytes with the real loader, then point the jobs back at the original file."""
        with tempfile.TemporaryDirectory(prefix="bigk-lastgood-") as tmp:
            copy = Path(tmp) / original.name
            copy.write_bytes(content)
            result = load(copy)
        if getattr(result, "problems", None):
            return {}
        jobs = dict(getattr(result, "jobs", {}))
        for loaded in jobs.values():
            loaded.file = original
        return jobs


def good_files(result: Any, broken: set[str]) -> list[Path]:
    """Files of a load result that loaded without problems (cluster files are not job specs)."""
    bad = {str(Path(b).resolve()) for b in broken}
    bad |= {str(Path(c).resolve()) for c in getattr(result, "cluster_files", [])}
    return [Path(f) for f in getattr(result, "files", []) if str(Path(f).resolve()) not in bad]


def versions_of(last_good: LastGood | None, files: Iterable[str]) -> list[dict[str, Any]]:
    """For `bigk get problems`: the stored version (hash, when stored) of each file whose jobs are kept."""
    if last_good is None:
        return []
    keys = sorted({str(Path(f).resolve()) for f in files})
    with last_good.engine.connect() as conn:
        rows = {r.file: r for r in conn.execute(select(VERSIONS.c.file, VERSIONS.c.sha256, VERSIONS.c.stored_at)
                                                .where(VERSIONS.c.file.in_(keys)))}
    out = []
    for key in keys:
        row = rows.get(key)
        out.append({"file": key, "sha256": row.sha256 if row else "",
                    "stored_at": float(row.stored_at) if row else None, "restored": key in last_good.serving})
    return out
