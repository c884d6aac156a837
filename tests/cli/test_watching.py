"""The CLI's watch reader: SSE framing, and reconnecting with Last-Event-ID when the connection drops."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from bigk.cli import watching
from bigk.service.client import Client, Unauthorized


def _frame(event: str, seq: int, name: str = "", state: str = "") -> bytes:
    data = {"kind": "runs", "name": name, "object": {"id": name, "state": state}} if name else {"kinds": ["runs"]}
    return f"id: {seq}\nevent: {event}\ndata: {json.dumps(data)}\n\n".encode()


class Dropping(httpx.SyncByteStream):
    """Sends its chunks, then fails the way a dropped connection does."""

    def __init__(self, chunks: list[bytes], drop: bool) -> None:
        self.chunks, self.drop = chunks, drop

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        if self.drop:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def test_parse_frames_and_pings() -> None:
    lines = ["id: 3", "event: MODIFIED", 'data: {"kind": "runs", "name": "a", "object": {"state": "Running"}}', "",
             ": ping", "", "id: 4", "event: SYNCED", "data: {}", ""]
    events = list(watching._parse(iter(lines)))
    assert [(e.type, e.name, e.id) for e in events] == [("MODIFIED", "a", "3"), ("SYNCED", "", "4")]
    assert events[0].object == {"state": "Running"}


def test_a_dropped_stream_is_resumed_from_the_last_event_id() -> None:
    asked: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("last-event-id"))
        if len(asked) == 1:  # listing, one change, then the connection breaks
            chunks = [_frame("ADDED", 5, "a", "Pending"), _frame("SYNCED", 5), _frame("MODIFIED", 6, "a", "Running")]
            return httpx.Response(200, stream=Dropping(chunks, drop=True))
        return httpx.Response(200, stream=Dropping([_frame("MODIFIED", 7, "a", "Succeeded")], drop=False))

    client = Client("http://bigk.test", token="t")
    client.http = httpx.Client(base_url="http://bigk.test", transport=httpx.MockTransport(handler))
    seen = []
    for event in watching.events(client, ["runs"], deadline=watching.deadline_after(5)):
        seen.append((event.type, event.object["state"] if event.object else None))
        if event.object and event.object["state"] == "Succeeded":
            break
    assert asked == [None, "6"]  # the second connection asked for what followed event 6
    assert seen == [("ADDED", "Pending"), ("SYNCED", None), ("MODIFIED", "Running"), ("MODIFIED", "Succeeded")]


def test_a_refused_stream_is_the_cli_error() -> None:
    client = Client("http://bigk.test", token="wrong")
    client.http = httpx.Client(base_url="http://bigk.test", transport=httpx.MockTransport(
        lambda request: httpx.Response(401, json={"detail": "missing or wrong bearer token"})))
    with pytest.raises(Unauthorized):
        list(watching.events(client, ["runs"], deadline=watching.deadline_after(2)))
