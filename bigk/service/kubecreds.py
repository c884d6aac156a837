"""The caller's Kubernetes credentials for the CLI, as kubectl plugins use them.

`bigk` sends the bearer token of the kubeconfig's current context (`$KUBECONFIG`, else
`~/.kube/config`; static tokens, token files and exec/auth plugins that yield a token);
`bigk serve` checks it with a TokenReview and the caller's RBAC decides what they may do.
Client certificates cannot be forwarded: a kubeconfig that authenticates only with a
certificate gives no token here (use a token, `$BIGK_TOKEN`, or an exec plugin).

The token goes only to a server reached over HTTPS or on loopback: a cluster credential
must never cross the network in clear text, nor go to a `--server` typed by mistake.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import urlsplit

KUBECONFIG_ENV = "KUBECONFIG"


def safe_destination(server: str) -> bool:
    """True for https:// servers and for http:// on a loopback address."""
    parts = urlsplit(server)
    if parts.scheme == "https":
        return True
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return parts.scheme == "http" and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def kubeconfig_paths() -> str | None:
    """`$KUBECONFIG` (colon-separated paths) or ~/.kube/config, if any of them exists."""
    env = os.environ.get(KUBECONFIG_ENV, "").strip()
    if env:
        return env if any(Path(p).expanduser().is_file() for p in env.split(os.pathsep) if p) else None
    default = Path("~/.kube/config").expanduser()
    return str(default) if default.is_file() else None


def kubeconfig_token(server: str) -> str | None:
    """The current context's bearer token, for `server` only if it is a safe destination; else None."""
    if not safe_destination(server):
        return None
    paths = kubeconfig_paths()
    if paths is None:
        return None
    from kubernetes import client, config

    cfg = client.Configuration()
    try:
        config.load_kube_config(config_file=paths, client_configuration=cfg, persist_config=False)
    except Exception:  # an unusable kubeconfig is the same as none: the server will say 401
        return None
    keys = cfg.api_key or {}
    header = str(keys.get("authorization") or keys.get("BearerToken") or "")  # the key's name varies by version
    token = header[len("Bearer "):].strip() if header.startswith("Bearer ") else header.strip()
    return token or None


__all__ = ["kubeconfig_token", "safe_destination"]
