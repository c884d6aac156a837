"""Third-party CRDs the chart's optional objects need, from their authors' Go modules (never hand-written).

The Prometheus Operator publishes its CustomResourceDefinitions in its repository
(`example/prometheus-operator-crd/`); `go mod download` fetches that module through the Go
module proxy into Go's module cache, so the tests validate ServiceMonitor, PodMonitor and
PrometheusRule objects against the operator's real schemas.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

PROMETHEUS_OPERATOR = "github.com/prometheus-operator/prometheus-operator@v0.88.0"
CRDS = ("servicemonitors", "podmonitors", "prometheusrules")


def module_dir(module: str) -> Path:
    """Where `go mod download` put one module version (downloaded once, then from Go's cache)."""
    out = subprocess.run(["go", "mod", "download", "-json", module], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent)
    info = json.loads(out.stdout or "{}")
    if out.returncode != 0 or "Dir" not in info:
        raise RuntimeError(f"go mod download {module} failed: {info.get('Error') or out.stderr[-2000:]}")
    return Path(info["Dir"])


def install_prometheus_operator_crds(api: client.ApiClient, timeout: float = 60.0) -> None:
    """Create the operator's CRDs (when missing) and wait until they are served."""
    ext = client.ApiextensionsV1Api(api)
    folder = module_dir(PROMETHEUS_OPERATOR) / "example" / "prometheus-operator-crd"
    for name in CRDS:
        body = yaml.safe_load((folder / f"monitoring.coreos.com_{name}.yaml").read_text())
        try:
            ext.create_custom_resource_definition(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
    deadline = time.monotonic() + timeout
    for name in CRDS:
        while True:
            crd = ext.read_custom_resource_definition(f"{name}.monitoring.coreos.com")
            conditions = (crd.status.conditions if crd.status is not None else None) or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name}.monitoring.coreos.com not established within {timeout:.0f} s")
            time.sleep(0.2)
