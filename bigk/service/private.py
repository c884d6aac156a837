"""The state folder holds the API token, the audit trail and the run database: only its owner may read it.

`bigk serve` creates the folder 0700 and the SQLite database (with its WAL and
journal files) 0600 before SQLAlchemy opens it, so the umask of whoever starts
bigk does not decide who can read tokens and audit records. A folder that
already exists with looser modes is tightened and the change logged once.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def _tighten(path: Path, wanted: int, event: str) -> None:
    """Set `wanted` on `path` if group or others can get in, and log the change once."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        os.chmod(path, wanted)
        log.warning("event=%s path=%s was=%o now=%o", event, path, mode, wanted)


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) with mode 0700, or tighten it to 0700 if group or others can get in."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    _tighten(path, DIR_MODE, "state_dir_tightened")
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty with mode 0600 if missing; tighten it to 0600 if it exists with looser modes."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        os.close(fd)
    except FileExistsError:
        _tighten(path, FILE_MODE, "state_file_tightened")
    return path


def private_sqlite(url: str) -> None:
    """For a `sqlite:///PATH` URL, make PATH and its side files private before the database opens them."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url[len(prefix):] in ("", ":memory:"):
        return
    db = Path(url[len(prefix):])
    private_file(db)
    for suffix in _SQLITE_SIDE_FILES:
        side = db.with_name(db.name + suffix)
        if side.exists():
            private_file(side)


__all__ = ["private_dir", "private_file", "private_sqlite"]
