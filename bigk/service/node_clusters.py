"""Nodes and GPUs over every cluster `bigk serve` runs (issue 18), and which cluster a node or pool action means.

`GET /api/v1/nodes` and `/gpus` list every cluster in the declared order, each row with its
`cluster` (one cluster: `default`); `?cluster=NAME` lists one. While several are listed, a
cluster judged unreachable, or whose listing fails, is skipped (logged, and named in the
`X-Bigk-Unanswered-Clusters` response header) so one silent API server does not hide the
others; one cluster asked for on its own answers with its own error, as a single cluster does.

A node or pool action (`cordon`, `uncordon`, `drain`, `drain-plan`) takes `?cluster=NAME`;
without it, with several clusters, the name is looked up in every reachable cluster: found in
exactly one, it acts there; in several, `Conflict` (name one with `--cluster`); in none,
`NotFound`. With one cluster nothing is looked up: the action answers as it always did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from bigk.errors import Conflict, NotFound
from bigk.service.cluster_view import ClusterView, UnknownNode
from bigk.service.clusters_api import UnknownCluster
from bigk.service.gpu_watch import GpuWatch, annotate_gpus
from bigk.service.parts import Parts
from bigk.service.runtime import DEFAULT_CLUSTER, short_error

log = logging.getLogger(__name__)

UNANSWERED_HEADER = "X-Bigk-Unanswered-Clusters"


@dataclass(frozen=True)
class Member:
    """One cluster as the node views see it."""

    name: str
    view: ClusterView
    gpu_watch: GpuWatch | None
    reachable: bool = True
    several: bool = False  # one of several clusters: events and logs name it

    def where(self) -> str:
        """` (cluster NAME)` with several clusters, else nothing (a single cluster's messages stay as they were)."""
        return f" (cluster {self.name})" if self.several else ""


def members(parts: Parts) -> list[Member]:
    """Every connected cluster, in the declared order (home first)."""
    if not parts.clusters:
        return [Member(DEFAULT_CLUSTER, parts.cluster, parts.gpu_watch)]
    several = len(parts.clusters) > 1
    return [Member(name, rt.cluster, rt.gpu_watch, rt.reachable, several)
            for name, rt in parts.clusters.items() if rt.cluster is not None]


def chosen(parts: Parts, cluster: str | None) -> list[Member]:
    """Every cluster, or only `cluster` (an unknown name is `NotFound`)."""
    every = members(parts)
    if cluster is None:
        return every
    for member in every:
        if member.name == cluster:
            return [member]
    raise UnknownCluster(f"no cluster {cluster!r}; this bigk serve runs {', '.join(m.name for m in every)} "
                         "(see `bigk get clusters`)")


def listing(parts: Parts, kind: Literal["nodes", "gpus"],
            cluster: str | None) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows of `kind` of every chosen cluster, each with its `cluster`; and the clusters skipped (several listed:
    unreachable, or the listing failed)."""
    picked = chosen(parts, cluster)
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    for member in picked:
        alone = len(picked) == 1
        if not alone and not member.reachable:
            log.warning("event=cluster_listing_skipped cluster=%s kind=%s why=unreachable", member.name, kind)
            skipped.append(member.name)
            continue
        try:
            got = member.view.nodes() if kind == "nodes" else member.view.gpus()
        except Exception as exc:
            if alone:
                raise
            log.warning("event=cluster_listing_failed cluster=%s kind=%s error=%r", member.name, kind,
                        short_error(exc))
            skipped.append(member.name)
            continue
        if kind == "gpus" and member.gpu_watch is not None:
            got = annotate_gpus(got, member.gpu_watch)  # each cluster's own GPU watch: its notes
        rows += [{"cluster": member.name, **row} for row in got]
    return rows, skipped


def locate(parts: Parts, cluster: str | None, what: str, has: Callable[[ClusterView], bool],
           missing: Callable[[str], NotFound]) -> Member:
    """The one cluster a node or pool action means: `cluster` if named, the only cluster, else the one cluster
    where `has` holds. `what` names the target in messages ("node 'cpu-0'"); `missing(hint)` is the error when no
    cluster has it."""
    picked = chosen(parts, cluster)
    if cluster is not None or len(picked) == 1:
        return picked[0]
    found: list[Member] = []
    unanswered: list[str] = []
    for member in picked:
        if not member.reachable:
            unanswered.append(member.name)
            continue
        try:
            if has(member.view):
                found.append(member)
        except Exception as exc:
            log.warning("event=cluster_lookup_failed cluster=%s target=%r error=%r", member.name, what,
                        short_error(exc))
            unanswered.append(member.name)
    if len(found) == 1:
        return found[0]
    names = ", ".join(m.name for m in found)
    if found:
        raise Conflict(f"{what} is on {len(found)} clusters ({names}); name one with --cluster NAME "
                       "(API: ?cluster=NAME)")
    hint = f"; {', '.join(unanswered)} did not answer" if unanswered else ""
    raise missing(f" on any cluster ({', '.join(m.name for m in picked)}){hint}")


def locate_node(parts: Parts, cluster: str | None, node: str) -> Member:
    return locate(parts, cluster, f"node {node!r}", lambda view: node in view.node_names(),
                  lambda where: UnknownNode(f"no node {node!r}{where} (list them with `bigk get nodes`)"))


def locate_pool(parts: Parts, cluster: str | None, pool: str) -> Member:
    return locate(parts, cluster, f"pool {pool!r}", lambda view: bool(view.node_names(pool)),
                  lambda where: UnknownNode(f"no nodes in pool {pool!r}{where} (see `bigk get nodes`)"))
