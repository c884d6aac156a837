"""DCGM readings through a Prometheus HTTP API (faked with httpx.MockTransport here;
tests/observability runs the same reader against a real Prometheus)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from bigk.gpu.dcgm import DcgmError, DcgmReader

SERIES = {
    # metric: [(Hostname, gpu, value)]
    "DCGM_FI_DEV_FB_FREE": [("gpu-1", "0", 70000), ("gpu-1", "1", 100), ("gpu-2", "0", 15000)],
    "DCGM_FI_DEV_FB_USED": [("gpu-1", "0", 11920), ("gpu-1", "1", 81820), ("gpu-2", "0", 360)],
    "DCGM_FI_DEV_GPU_UTIL": [("gpu-1", "0", 3), ("gpu-1", "1", 97), ("gpu-2", "0", 0)],
    "DCGM_FI_DEV_GPU_TEMP": [("gpu-1", "0", 40), ("gpu-1", "1", 71), ("gpu-2", "0", 35)],
    "DCGM_FI_DEV_XID_ERRORS": [("gpu-1", "0", 0), ("gpu-1", "1", 79), ("gpu-2", "0", 13)],
}


def _prometheus(request: httpx.Request) -> httpx.Response:
    query = request.url.params["query"]
    name, _, selector = query.partition("{")
    host = selector.split('"')[1] if selector else None
    result = [
        {"metric": {"__name__": name, "Hostname": h, "gpu": g, "UUID": f"GPU-{h}-{g}", "modelName": "A100"},
         "value": [1700000000.5, str(v)]}
        for h, g, v in SERIES.get(name, []) if host in (None, h)
    ]
    return httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": result}})


def _reader(handler: Callable[[httpx.Request], httpx.Response] = _prometheus) -> DcgmReader:
    return DcgmReader("http://prom:9090/", client=httpx.Client(transport=httpx.MockTransport(handler)))


def test_dcgm_series_become_readings_per_node() -> None:
    readings = _reader().read_all()
    assert sorted(readings) == ["gpu-1", "gpu-2"]
    first, second = readings["gpu-1"]
    assert (first.index, first.uuid, first.memory_total_mib, first.memory_free_mib) == (0, "GPU-gpu-1-0", 81920, 70000)
    assert first.utilization_pct == 3.0 and first.healthy and first.observed_at == 1700000000.5
    assert not second.healthy and second.health_reasons == ("xid_79",)
    assert readings["gpu-2"][0].healthy  # XID 13 is an application error, not a GPU fault


def test_read_node_filters_by_host_label() -> None:
    records = _reader().read_node("gpu-2")
    assert [r.uuid for r in records] == ["GPU-gpu-2-0"]
    assert _reader().read_node("nope") == []


def test_prometheus_errors_are_user_errors() -> None:
    def bad_query(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, content=json.dumps({"status": "error", "error": "parse error"}))

    with pytest.raises(DcgmError, match="rejected .*parse error"):
        _reader(bad_query).read_all()

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(DcgmError, match="could not be reached"):
        _reader(down).read_all()
