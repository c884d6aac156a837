# mypy: disable-error-code="union-attr,index,arg-type,attr-defined,misc,type-var,operator"
# (the official client types every field Optional and its methods take models; these tests pass dicts)
"""Fault injection: 500, 429 and dropped connections on chosen requests, then normal service."""

from __future__ import annotations

import json

import httpx
import pytest
import urllib3
from kubernetes import client

from bigk.emulator import EmulatedCluster
from tests.emulator.conftest import binding, pod_body


def test_500_then_recovery(bare: EmulatedCluster, core: client.CoreV1Api) -> None:
    bare.faults.add("GET", r"/api/v1/namespaces/default/pods$", 500, count=1)
    with pytest.raises(client.ApiException) as err:
        core.list_namespaced_pod("default")
    assert err.value.status == 500
    assert json.loads(err.value.body)["reason"] == "InternalError"
    assert core.list_namespaced_pod("default").items == []
    assert bare.faults.pending == 0


def test_429_carries_retry_after(bare: EmulatedCluster) -> None:
    bare.faults.add("POST", r"/binding$", 429, count=2)
    httpx.post(f"{bare.url}/api/v1/namespaces/default/pods", json=pod_body("p"))
    for _ in range(2):
        resp = httpx.post(f"{bare.url}/api/v1/namespaces/default/pods/p/binding", json=binding("p", "cpu-0"))
        assert resp.status_code == 429
        assert resp.headers["Retry-After"] == "1"
        assert resp.json()["reason"] == "TooManyRequests"
    resp = httpx.post(f"{bare.url}/api/v1/namespaces/default/pods/p/binding", json=binding("p", "cpu-0"))
    assert resp.status_code == 201


def test_faults_match_method_and_path_only(bare: EmulatedCluster, core: client.CoreV1Api) -> None:
    bare.faults.add("POST", r"/pods$", 503, count=1)
    assert core.list_namespaced_pod("default").items == []  # GET is not affected
    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_pod("default", pod_body("p"))
    assert err.value.status == 503
    core.create_namespaced_pod("default", pod_body("p"))


def test_dropped_connection_on_binding(bare: EmulatedCluster, core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", pod_body("p"))
    bare.faults.add("POST", r"/pods/p/binding$", 0, count=1)
    with pytest.raises(urllib3.exceptions.HTTPError):
        core.create_namespaced_pod_binding("p", "default", binding("p", "cpu-0"), _preload_content=False)
    assert core.read_namespaced_pod("p", "default").spec.node_name is None  # the request never ran
    core.create_namespaced_pod_binding("p", "default", binding("p", "cpu-0"), _preload_content=False)
    assert core.read_namespaced_pod("p", "default").spec.node_name == "cpu-0"


def test_answer_lost_after_the_binding_happened(bare: EmulatedCluster, core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", pod_body("p"))
    bare.faults.add("POST", r"/pods/p/binding$", 0, count=1, after=True)
    with pytest.raises(urllib3.exceptions.HTTPError):
        core.create_namespaced_pod_binding("p", "default", binding("p", "cpu-0"), _preload_content=False)
    assert core.read_namespaced_pod("p", "default").spec.node_name == "cpu-0"  # it did happen
    with pytest.raises(client.ApiException) as err:  # a blind retry is refused
        core.create_namespaced_pod_binding("p", "default", binding("p", "cpu-1"), _preload_content=False)
    assert err.value.status == 409


def test_dropped_watch_request(bare: EmulatedCluster) -> None:
    bare.faults.add("GET", r"/pods$", 0, count=1, query_regex=r"watch=")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{bare.url}/api/v1/pods", params={"watch": "1", "timeoutSeconds": "1"})
    assert httpx.get(f"{bare.url}/api/v1/pods").status_code == 200


def test_fault_status_is_checked(bare: EmulatedCluster) -> None:
    with pytest.raises(ValueError):
        bare.faults.add("GET", ".*", 200, count=1)
