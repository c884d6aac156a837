"""A kubeconfig for the emulated cluster: plain HTTP on loopback, no credentials."""

from __future__ import annotations

from pathlib import Path

import yaml


def kubeconfig_text(url: str, name: str = "bigk-emulator", namespace: str = "default") -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": url}}],
        "users": [{"name": name, "user": {}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
        "current-context": name,
        "preferences": {},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def write_kubeconfig(path: str | Path, url: str) -> Path:
    """Write a kubeconfig pointing at `url`; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(kubeconfig_text(url), encoding="utf-8")
    return path
