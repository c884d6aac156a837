"""Connecting to an API server: an explicit URL, a kubeconfig, or the pod's own service account.

An explicit `server` (the emulator, `--kube-server URL`) wins and uses no
authentication; then an explicit kubeconfig path; then in-cluster configuration
when bigk runs in a pod; then the default kubeconfig ($KUBECONFIG or
~/.kube/config).
"""

from __future__ import annotations

import logging
import os

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from bigk.errors import BigkError

log = logging.getLogger(__name__)

# Enough connections for the scheduling loop, informers and a bind pool at once.
POOL_SIZE = 32


def drain(resp: object) -> object:
    """Read and release a raw (`_preload_content=False`) response, so its connection goes back to the pool clean;
    returns it. Unread, the connection stays checked out (the pool opens a new TLS connection for the next
    request); released unread, the next request on it reads this body as its status line (BadStatusLine)."""
    try:
        resp.read()  # type: ignore[attr-defined]
        resp.release_conn()  # type: ignore[attr-defined]
    except Exception:  # pragma: no cover - best effort: a failed read leaves the connection to be discarded
        pass
    return resp


class KubeConfigError(BigkError):
    """No usable way to reach an API server."""


def api_client(kubeconfig: str | None = None, server: str | None = None,
               pool_size: int = POOL_SIZE) -> client.ApiClient:
    """An ApiClient for `server`, `kubeconfig`, in-cluster config or the default kubeconfig, in that order."""
    cfg = client.Configuration()
    if server:
        if not server.startswith(("http://", "https://")):
            raise KubeConfigError(f"--kube-server {server!r}: expected a URL like http://127.0.0.1:6443")
        cfg.host = server.rstrip("/")
        source = f"server={cfg.host}"
    elif kubeconfig:
        if not os.path.exists(kubeconfig):
            raise KubeConfigError(f"{kubeconfig}: kubeconfig file not found")
        try:
            config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
        except (ConfigException, OSError, ValueError) as exc:
            raise KubeConfigError(f"{kubeconfig}: cannot use kubeconfig: {exc}") from None
        source = f"kubeconfig={kubeconfig}"
    else:
        source = _auto_config(cfg)
    cfg.connection_pool_maxsize = pool_size
    log.info("event=kube_client %s host=%s", source, cfg.host)
    return client.ApiClient(cfg)


def _auto_config(cfg: client.Configuration) -> str:
    try:
        config.load_incluster_config(client_configuration=cfg)
        return "in_cluster=true"
    except ConfigException:
        pass
    try:
        config.load_kube_config(client_configuration=cfg)
        return "kubeconfig=default"
    except (ConfigException, OSError, ValueError, TypeError) as exc:
        raise KubeConfigError(
            "no Kubernetes API to talk to: not running in a pod, no usable kubeconfig "
            f"($KUBECONFIG or ~/.kube/config: {exc}); pass --kubeconfig or --kube-server URL") from None
