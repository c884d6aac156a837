"""The nodes of a live cluster as bigk's model sees them, for `bigk validate --kubeconfig`.

The same translation as the scheduler's (`node_from_v1`): GPU feature discovery's
product label names the GPUs, bigk's sharing label says who assigns them.
"""

from __future__ import annotations

import logging

from kubernetes import client
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError

from bigk.cluster.model import Node
from bigk.errors import BigkError
from bigk.kube.client import api_client
from bigk.kube.translate import TranslateError, node_from_v1

log = logging.getLogger(__name__)


class LiveClusterError(BigkError):
    """The cluster could not be read; the message says which and why."""


def live_nodes(kubeconfig: str | None = None, server: str | None = None) -> list[Node]:
    """Every readable node of the cluster named by `kubeconfig` (or `server`); unreadable nodes are skipped."""
    api = api_client(kubeconfig=kubeconfig, server=server, pool_size=1)
    try:
        items = client.CoreV1Api(api).list_node(_request_timeout=30).items
    except (ApiException, HTTPError, OSError) as exc:
        where = kubeconfig or server or "the default kubeconfig"
        raise LiveClusterError(f"{where}: cannot list nodes: {str(exc).splitlines()[0][:200]}") from None
    finally:
        api.close()
    nodes = []
    for v1 in items:
        try:
            nodes.append(node_from_v1(v1))
        except TranslateError as exc:
            log.warning("event=node_unreadable error=%r", str(exc))
    return nodes
