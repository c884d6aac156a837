"""`bigk history --audit`: who did what, when, from where, and what came of it.

Reads `GET /api/v1/audit` (allowed to callers whose RBAC grants `list audit` in bigk.io)
and prints one line per action, newest first. With a name (`bigk history --audit RUN`)
only the actions on that job, run or node.
"""

from __future__ import annotations

import time
from typing import Any

from bigk.cli import output as out


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def show(client: Any, name: str | None, user: str | None, limit: int, fmt: out.OutputFormat) -> None:
    """Print the audit trail (optionally of one object or one user)."""
    records = client.get("/audit", limit=min(limit, 10_000), user=user, name=name)
    if fmt.structured:
        out.dump({"kind": "List", "apiVersion": "bigk.io/v1", "items": out.with_rfc3339(records)}, fmt.style)
        return
    rows = [[_when(r["at"]), r["user"], f"{r['verb']} {r['resource']}", r["name"], r["source"],
             f"{r['outcome']} ({r['status']})"] for r in records]
    out.table(["TIME", "USER", "ACTION", "NAME", "FROM", "OUTCOME"], rows, "No audited actions.")


__all__ = ["show"]
