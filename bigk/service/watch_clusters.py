"""The watch stream's nodes and GPUs over several clusters (issue 18): every cluster's, none waiting on a silent one.

`EveryCluster(parts, "nodes")` is a change-feed source (`bigk.service.watch`): it lists each
cluster's rows (`bigk.service.node_clusters.listing`: each row with its `cluster`, GPU rows with
that cluster's GPU watch notes) on a thread of its own and keys them `CLUSTER/NAME` (names repeat
across clusters). A cluster judged unreachable is not asked; one whose listing has not answered
within `answer_s` keeps its last rows while the listing goes on (bounded by the cluster view's
own timeout), and the feed is not kept waiting for it again until it has answered. So the stream
goes on for the others, and a silent cluster's nodes are not reported deleted: they are unchanged
until it answers again.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Literal

from bigk.service.node_clusters import listing, members
from bigk.service.parts import Parts
from bigk.service.runtime import short_error

log = logging.getLogger(__name__)

ANSWER_S = 1.0  # how long one listing of the feed waits for a cluster that was answering


def key_of(kind: Literal["nodes", "gpus"], row: dict[str, Any]) -> str:
    """The feed's name of a row on one cluster: `NODE` or `NODE/INDEX` (the CLI's names)."""
    return str(row["name"]) if kind == "nodes" else f"{row['node']}/{row['index']}"


class EveryCluster:
    """A change-feed source of every cluster's nodes or GPUs, keyed `CLUSTER/NAME`."""

    def __init__(self, parts: Parts, kind: Literal["nodes", "gpus"], answer_s: float = ANSWER_S) -> None:
        self.parts, self.kind, self.answer_s = parts, kind, answer_s
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(parts.clusters)),
                                        thread_name_prefix=f"bigk-watch-{kind}")
        self._pending: dict[str, Future[dict[str, dict[str, Any]]]] = {}
        self._last: dict[str, dict[str, dict[str, Any]]] = {}
        self._failing: set[str] = set()
        self._lock = threading.Lock()  # the feed lists on one thread; a snapshot may list from another

    def _list(self, cluster: str) -> dict[str, dict[str, Any]]:
        rows, _ = listing(self.parts, self.kind, cluster)
        return {f"{cluster}/{key_of(self.kind, row)}": row for row in rows}

    def __call__(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            every = members(self.parts)
            fresh = []
            for member in every:
                if member.reachable and member.name not in self._pending:
                    fresh.append(self._pending.setdefault(member.name, self._pool.submit(self._list, member.name)))
            if fresh:  # only listings started now are waited for: a cluster already late is not waited for again
                wait(fresh, timeout=self.answer_s)
            for name, future in list(self._pending.items()):
                if not future.done():
                    continue
                del self._pending[name]
                try:
                    self._last[name] = future.result()
                except Exception as exc:  # keep its last rows; say so once until it answers
                    if name not in self._failing:
                        log.warning("event=watch_listing_failed cluster=%s kind=%s error=%r", name, self.kind,
                                    short_error(exc))
                    self._failing.add(name)
                    continue
                self._failing.discard(name)
            out: dict[str, dict[str, Any]] = {}
            for member in every:
                out.update(self._last.get(member.name, {}))
            return out
