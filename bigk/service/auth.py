"""The bearer token that guards actions (run, suspend, cancel, drain).

Order: `--token-file`, then `$BIGK_TOKEN`, then `<state dir>/token`, which
`bigk serve` creates (mode 0600) when nothing else is configured. The CLI reads
the same places, so on one machine it just works.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from bigk.errors import BigkError

TOKEN_ENV = "BIGK_TOKEN"
TOKEN_FILE = "token"


class TokenError(BigkError):
    """A token file that cannot be read or is empty."""


def read_token_file(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise TokenError(f"{path}: cannot read token file: {exc.strerror}") from None
    if not token:
        raise TokenError(f"{path}: token file is empty")
    return token


def resolve_token(state_dir: Path, token_file: Path | None = None, create: bool = False) -> tuple[str | None, str]:
    """(token, where it came from); with `create`, generate one into the state dir if none exists."""
    if token_file is not None:
        return read_token_file(token_file), str(token_file)
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env, f"${TOKEN_ENV}"
    path = state_dir / TOKEN_FILE
    if path.exists():
        return read_token_file(path), str(path)
    if not create:
        return None, ""
    state_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    return token, str(path)


def token_matches(expected: str, header: str | None) -> bool:
    """Constant-time check of an `Authorization: Bearer <token>` header."""
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(expected.encode(), header[len("Bearer "):].strip().encode())
