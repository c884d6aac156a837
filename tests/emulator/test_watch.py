# mypy: disable-error-code="union-attr,index,arg-type,attr-defined,misc,type-var,operator"
# (the official client types every field Optional and its methods take models; these tests pass dicts)
"""Watches: initial state, replay from a resourceVersion, 410 Gone, bookmarks, timeoutSeconds, selections, drops."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
import urllib3
from kubernetes import client, watch

from bigk.emulator import EmulatedCluster
from tests.emulator.conftest import binding, pod_body


def test_watch_without_version_starts_with_current_state_then_streams(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", pod_body("existing"))

    def later() -> None:
        time.sleep(0.2)
        core.create_namespaced_pod("default", pod_body("new"))
        core.patch_namespaced_pod("new", "default", {"metadata": {"labels": {"x": "y"}}})
        core.delete_namespaced_pod("new", "default")

    threading.Thread(target=later).start()
    seen = []
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_pod, "default", timeout_seconds=5):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 4:
            w.stop()
    assert seen == [("ADDED", "existing"), ("ADDED", "new"), ("MODIFIED", "new"), ("DELETED", "new")]


def test_watch_replays_changes_after_a_resource_version(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", pod_body("a"))
    rv = core.list_namespaced_pod("default").metadata.resource_version
    core.create_namespaced_pod("default", pod_body("b"))
    core.patch_namespaced_pod("a", "default", {"metadata": {"labels": {"v": "2"}}})
    events = [(e["type"], e["object"].metadata.name) for e in
              watch.Watch().stream(core.list_namespaced_pod, "default", resource_version=rv, timeout_seconds=1)]
    assert events == [("ADDED", "b"), ("MODIFIED", "a")]


def test_resource_versions_increase_across_resources(core: client.CoreV1Api) -> None:
    a = core.create_namespaced_pod("default", pod_body("a"))
    cm = core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
    b = core.patch_namespaced_pod("a", "default", {"metadata": {"labels": {"v": "2"}}})
    assert int(a.metadata.resource_version) < int(cm.metadata.resource_version) < int(b.metadata.resource_version)


def test_watch_from_a_compacted_version_is_410_gone(bare: EmulatedCluster, core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", pod_body("a"))
    old = core.list_namespaced_pod("default").metadata.resource_version
    core.patch_namespaced_pod("a", "default", {"metadata": {"labels": {"v": "2"}}})
    bare.store.compact()
    with pytest.raises(client.ApiException) as err:
        list(watch.Watch().stream(core.list_namespaced_pod, "default", resource_version=old, timeout_seconds=1))
    assert err.value.status == 410
    # on the wire: one ERROR event carrying a Status with code 410
    lines = httpx.get(f"{bare.url}/api/v1/namespaces/default/pods",
                      params={"watch": "1", "resourceVersion": old, "timeoutSeconds": "1"}).text.splitlines()
    event = json.loads(lines[0])
    assert event["type"] == "ERROR"
    assert event["object"]["kind"] == "Status" and event["object"]["code"] == 410
    assert event["object"]["reason"] == "Expired"
    # a fresh list gives a version that can be watched again
    fresh = core.list_namespaced_pod("default").metadata.resource_version
    assert list(watch.Watch().stream(core.list_namespaced_pod, "default", resource_version=fresh,
                                     timeout_seconds=1)) == []


def test_small_event_window_expires_old_versions() -> None:
    with EmulatedCluster([], kubelet=False, spark_driver=False, gpu_readings=False, watch_window=4) as cluster:
        url = f"{cluster.url}/api/v1/namespaces/default/configmaps"
        first = httpx.post(url, json={"metadata": {"name": "c0"}}).json()["metadata"]["resourceVersion"]
        for i in range(1, 30):
            httpx.post(url, json={"metadata": {"name": f"c{i}"}})
        line = httpx.get(url, params={"watch": "true", "resourceVersion": first, "timeoutSeconds": "1"}).text
        assert json.loads(line.splitlines()[0])["object"]["code"] == 410


def test_bookmarks_carry_the_current_version(bare: EmulatedCluster, core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", pod_body("a"))
    rv = core.list_namespaced_pod("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "unrelated"}})  # moves the global version
    w = watch.Watch()
    bookmarks = []
    for event in w.stream(core.list_namespaced_pod, "default", resource_version=rv, allow_watch_bookmarks=True,
                          timeout_seconds=3):
        if event["type"] == "BOOKMARK":
            bookmarks.append(event["raw_object"]["metadata"]["resourceVersion"])
            w.stop()
    assert bookmarks and int(bookmarks[0]) > int(rv)
    assert w.resource_version == bookmarks[0]


def test_timeout_seconds_ends_the_stream(core: client.CoreV1Api) -> None:
    started = time.monotonic()
    assert list(watch.Watch().stream(core.list_namespaced_pod, "default", timeout_seconds=1)) == []
    assert 0.9 <= time.monotonic() - started < 3


def test_selective_watch_sees_pods_leave_the_selection(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", pod_body("p"))
    rv = core.list_namespaced_pod("default").metadata.resource_version
    core.create_namespaced_pod_binding("p", "default", binding("p", "cpu-0"), _preload_content=False)
    events = [(e["type"], e["object"].metadata.name, e["object"].spec.node_name) for e in watch.Watch().stream(
        core.list_pod_for_all_namespaces, field_selector="spec.nodeName=", resource_version=rv, timeout_seconds=1)]
    assert events == [("DELETED", "p", "cpu-0")]


def test_watch_one_object_by_name(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", pod_body("a"))
    core.create_namespaced_pod("default", pod_body("b"))
    names = {e["object"].metadata.name for e in watch.Watch().stream(
        core.list_namespaced_pod, "default", field_selector="metadata.name=b", timeout_seconds=1)}
    assert names == {"b"}


def test_dropped_watch_breaks_the_client_stream(bare: EmulatedCluster, core: client.CoreV1Api) -> None:
    resp = core.list_namespaced_pod("default", watch=True, _preload_content=False, timeout_seconds=10)
    bare.wait_for(lambda: bare.server.open_watches, timeout=5)
    assert bare.drop_watches() == 1
    with pytest.raises((urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError)):
        for _ in resp.stream(amt=None, decode_content=False):
            pass
    resp.release_conn()


def test_watch_over_websocket_as_fabric8_does(bare: EmulatedCluster, core: client.CoreV1Api) -> None:
    import asyncio

    import aiohttp

    core.create_namespaced_pod("default", pod_body("a"))

    async def watch_ws() -> list[tuple[str, str]]:
        seen: list[tuple[str, str]] = []
        url = f"{bare.url}/api/v1/namespaces/default/pods?watch=true&fieldSelector=metadata.name%3Da"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            first = json.loads(await ws.receive_str(timeout=5))
            seen.append((first["type"], first["object"]["metadata"]["name"]))
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: core.patch_namespaced_pod("a", "default", {"metadata": {"labels": {"v": "2"}}}))
            second = json.loads(await ws.receive_str(timeout=5))
            seen.append((second["type"], second["object"]["metadata"]["labels"]["v"]))
        return seen

    assert asyncio.run(watch_ws()) == [("ADDED", "a"), ("MODIFIED", "2")]
    bare.wait_for(lambda: bare.server.open_watches == 0, timeout=5)  # the closed socket ends the watch


def test_no_op_update_keeps_the_version_and_sends_no_event(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", pod_body("a", labels={"x": "1"}))
    before = core.read_namespaced_pod("a", "default").metadata.resource_version
    after = core.patch_namespaced_pod("a", "default", {"metadata": {"labels": {"x": "1"}}})
    assert after.metadata.resource_version == before
    changed = core.patch_namespaced_pod("a", "default", {"metadata": {"annotations": {"new": "key"}}})
    assert int(changed.metadata.resource_version) > int(before)
    events = list(watch.Watch().stream(core.list_namespaced_pod, "default", resource_version=before,
                                       timeout_seconds=1))
    assert [e["type"] for e in events] == ["MODIFIED"]
