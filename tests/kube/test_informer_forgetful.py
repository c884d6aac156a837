"""Informers notice an API server that forgot (versions going back, "too large", a watch that never ends).

Decision logic only, with a scripted server; the same faults against a real HTTP server
are in test_fault_suite.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bigk.kube import informer as informer_mod
from bigk.kube.informer import Informer


def node(name: str, rv: str, uid: str = "") -> client.V1Node:
    return client.V1Node(metadata=client.V1ObjectMeta(name=name, resource_version=rv, uid=uid or f"uid-{name}"))


@dataclass
class Script:
    """A server: its current objects and version, and what each watch does."""

    rv: int = 100
    items: list[client.V1Node] = field(default_factory=list)
    watches: list[Any] = field(default_factory=list)  # per watch: list of events, or an exception
    list_calls: list[dict[str, Any]] = field(default_factory=list)
    watch_calls: list[dict[str, Any]] = field(default_factory=list)

    def list_node(self, **kwargs: Any) -> client.V1NodeList:
        self.list_calls.append(kwargs)
        items = self.items[: kwargs["limit"]] if kwargs.get("limit") == 1 else list(self.items)
        return client.V1NodeList(items=items, metadata=client.V1ListMeta(resource_version=str(self.rv)))


@dataclass
class Handler:
    replaced: list[list[str]] = field(default_factory=list)
    upserts: list[str] = field(default_factory=list)

    def replace(self, items: list[Any]) -> None:
        self.replaced.append([i.metadata.name for i in items])

    def upsert(self, obj: Any) -> None:
        self.upserts.append(obj.metadata.name)

    def delete(self, obj: Any) -> None:
        pass


class FakeWatch:
    """Stands in for kubernetes.watch.Watch: replays the script's next watch."""

    script: Script

    def __init__(self) -> None:
        self.resource_version: str | None = None
        self._stopped = False

    def stream(self, fn: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.script.watch_calls.append(kwargs)
        self.resource_version = kwargs.get("resource_version")
        plan = self.script.watches.pop(0) if self.script.watches else []
        if isinstance(plan, Exception):
            raise plan
        for event in plan:
            if self._stopped:
                return
            if event == "sleep":
                time.sleep(0.05)
                continue
            self.resource_version = event["object"].metadata.resource_version
            self.script.rv = max(self.script.rv, int(self.resource_version))
            yield event
        # a finished plan is a server that ended the watch: the informer resumes

    def stop(self) -> None:
        self._stopped = True


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Script:
    s = Script(items=[node("a", "90"), node("b", "95")])
    FakeWatch.script = s
    monkeypatch.setattr(informer_mod.watch, "Watch", FakeWatch)
    return s


def run_until(inf: Informer, done: Any, timeout: float = 5.0) -> None:
    thread = threading.Thread(target=inf.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while not done():
            assert time.monotonic() < deadline, f"timed out; stats={inf.stats}"
            time.sleep(0.01)
    finally:
        inf.stop()
        thread.join(2)


def informer(script: Script, handler: Handler, **kwargs: Any) -> Informer:
    kwargs.setdefault("watch_timeout_s", 60)
    return Informer("nodes", script.list_node, handler, **kwargs)


def test_a_server_whose_version_went_back_is_listed_afresh(script: Script) -> None:
    handler = Handler()
    inf = informer(script, handler)
    # first watch ends normally; meanwhile the server "lost its state": version 7, one node left
    script.watches = [[{"type": "MODIFIED", "object": node("a", "101")}]]

    lost = []

    def lose_state() -> bool:
        if len(script.watch_calls) >= 1 and not lost:
            lost.append(True)
            script.rv, script.items = 7, [node("c", "5")]
        return len(handler.replaced) >= 2

    run_until(inf, lose_state)
    assert handler.replaced[0] == ["a", "b"] and handler.replaced[1] == ["c"]
    assert inf.stats.relists_forgot == 1 and inf.stats.probes >= 1
    assert "went back from 101 to 7" in inf.last_relist_reason
    assert inf.resource_version == "7"


def test_the_server_keeping_its_history_is_resumed_without_a_list(script: Script) -> None:
    handler = Handler()
    inf = informer(script, handler)
    script.watches = [[{"type": "MODIFIED", "object": node("a", "101")}], ApiException(status=500)]

    def grow() -> bool:
        script.rv = 150
        return len(script.watch_calls) >= 3

    run_until(inf, grow)
    full_lists = [c for c in script.list_calls if c.get("limit") != 1]
    assert len(full_lists) == 1 and inf.stats.relists_forgot == 0
    assert script.watch_calls[1]["resource_version"] == "101"  # resumed where it was, after a probe


def test_an_event_older_than_our_version_means_relist(script: Script) -> None:
    handler = Handler()
    inf = informer(script, handler)
    script.watches = [[{"type": "MODIFIED", "object": node("a", "101")},
                       {"type": "MODIFIED", "object": node("b", "3")}]]
    run_until(inf, lambda: len(handler.replaced) >= 2)
    assert handler.upserts == ["a"]  # the backwards event was not applied
    assert inf.stats.relists_forgot == 1


def test_too_large_resource_version_means_relist(script: Script) -> None:
    handler = Handler()
    inf = informer(script, handler)
    script.watches = [ApiException(status=504, reason="Timeout: Too large resource version: 100, current: 7")]
    run_until(inf, lambda: len(handler.replaced) >= 2)
    assert inf.stats.relists_forgot == 1
    assert "not reached" in inf.last_relist_reason


def test_a_watch_open_past_its_timeout_is_abandoned_and_checked(script: Script,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(informer_mod, "WATCH_GRACE_S", 0.0)
    handler = Handler()
    inf = informer(script, handler, watch_timeout_s=0)
    # a server that never ends the watch: bookmarks forever
    forever = [{"type": "BOOKMARK", "object": node("", "100")}, "sleep"] * 1000
    script.watches = [forever]
    run_until(inf, lambda: inf.stats.silent_watches >= 1 and inf.stats.probes >= 1)
    assert len(script.watch_calls) >= 1


def test_a_failed_list_is_retried_as_a_full_list(script: Script) -> None:
    handler = Handler()
    calls = {"n": 0}
    real = script.list_node

    def flaky(**kwargs: Any) -> client.V1NodeList:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ApiException(status=503)
        return real(**kwargs)

    inf = Informer("nodes", flaky, handler, watch_timeout_s=60, backoff=informer_mod.Backoff(base_s=0.01))
    run_until(inf, lambda: bool(handler.replaced))
    assert handler.replaced[0] == ["a", "b"] and inf.stats.errors == 1


def test_a_server_that_forgot_and_caught_up_is_told_by_a_recreated_object(script: Script) -> None:
    handler = Handler()
    inf = informer(script, handler)
    script.watches = [[{"type": "MODIFIED", "object": node("a", "101")}]]
    lost: list[bool] = []

    def lose_state() -> bool:
        if len(script.watch_calls) >= 1 and not lost:
            lost.append(True)  # rebuilt, and busy since: its version is past ours, but "a" is a new object
            script.rv, script.items = 300, [node("a", "60", uid="another-a")]
        return len(handler.replaced) >= 2

    run_until(inf, lose_state)
    assert handler.replaced[1] == ["a"] and inf.stats.relists_forgot == 1
    assert "is another object" in inf.last_relist_reason


def test_an_object_changed_after_our_version_is_no_alarm(script: Script) -> None:
    handler = Handler()
    inf = informer(script, handler)
    script.watches = [[{"type": "MODIFIED", "object": node("a", "101")}]]

    def recreate() -> bool:  # deleted and created again after our version: a normal history
        script.rv, script.items = 150, [node("a", "140", uid="a-again")]
        return len(script.watch_calls) >= 3

    run_until(inf, recreate)
    assert inf.stats.relists_forgot == 0 and len(handler.replaced) == 1
