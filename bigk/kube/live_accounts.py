"""`bigk validate --kubeconfig`: warn when a job's driver would run as a ServiceAccount its namespace lacks.

A driver creates its executors, its Service and config maps as its ServiceAccount
(`spark`, made by the chart in every namespace of `spark.namespaces`, unless the spec
names another). Without it the API server refuses the driver pod, and the run fails
only at submission; this says so at validate time, at the field to change. An API
server that serves no ServiceAccounts (bigk's embedded emulator) is not checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError

from bigk.kube.client import api_client
from bigk.spark.submit import DEFAULT_DRIVER_SERVICE_ACCOUNT
from bigk.spec.loader import LoadedJob
from bigk.spec.problems import SpecProblem


def _missing(core: client.CoreV1Api, namespace: str, name: str) -> bool | None:
    """True: the account is not there; False: it is; None: this server cannot say (no such resource, no rights)."""
    try:
        core.read_namespaced_service_account(name, namespace, _request_timeout=15)
        return False
    except ApiException as exc:
        if exc.status != 404:
            return None
        try:
            details: Any = json.loads(exc.body or "{}").get("details") or {}
        except ValueError:
            return None
        return details.get("kind") == "serviceaccounts"  # else the server has no ServiceAccounts at all
    except (HTTPError, OSError):
        return None


def account_warnings(jobs: Iterable[LoadedJob], kubeconfig: str | None = None,
                     server: str | None = None) -> list[SpecProblem]:
    """One positioned warning per (job, role) whose ServiceAccount the live cluster lacks."""
    api = api_client(kubeconfig=kubeconfig, server=server, pool_size=1)
    core = client.CoreV1Api(api)
    seen: dict[tuple[str, str], bool | None] = {}
    out: list[SpecProblem] = []
    try:
        for job in jobs:
            namespace = job.spec.metadata.namespace
            for role in ("driver", "executor"):
                pod = job.spec.spec.driver if role == "driver" else job.spec.spec.executor
                name = pod.serviceAccount or (DEFAULT_DRIVER_SERVICE_ACCOUNT if role == "driver" else None)
                if name is None:
                    continue  # executors run as the namespace's default account unless the spec names one
                key = (namespace, name)
                if key not in seen:
                    seen[key] = _missing(core, namespace, name)
                if not seen[key]:
                    continue
                where = ("spec", role, "serviceAccount") if pod.serviceAccount else ("metadata", "namespace")
                line, col = job.locate(where, prefer_key=True)
                hint = ("install the chart with this namespace in spark.namespaces" if not pod.serviceAccount
                        else "create it, with a Role for pods, services, config maps and PVCs")
                out.append(SpecProblem(job.file, line, col, ".".join(where),
                                       f"ServiceAccount {name!r} does not exist in namespace {namespace!r} of the "
                                       f"live cluster: the {role} pod would be refused; {hint}", "warning"))
    finally:
        api.close()
    return out
