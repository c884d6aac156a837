"""The readings annotation: decoding errors a user can act on, and feeding the scheduler."""

from __future__ import annotations

import math

import pytest

from bigk.cluster.model import Gpu, Node, PodRequest
from bigk.cluster.readings import ReadingRecord, ReadingsFormatError, apply_to_state, decode, encode
from bigk.cluster.state import ClusterState


def _rec(index: int, healthy: bool = True, free: int | None = 1000, util: float | None = 5.0) -> ReadingRecord:
    return ReadingRecord(index, f"u{index}", "T4", 16000, free, util, 40.0, healthy, 100.0)


@pytest.mark.parametrize(("text", "message"), [
    ("{", "not JSON"),
    ('{"index": 0}', "expected a JSON list"),
    ('[{"uuid": "x", "healthy": true, "observed_at": 1}]', "missing field 'index'"),
    ('[{"index": 0, "healthy": "yes", "observed_at": 1}]', "'healthy' must be true or false"),
    ('[{"index": 0.5, "healthy": true, "observed_at": 1}]', "'index' must be an integer"),
])
def test_bad_annotations_name_the_node_entry_and_field(text: str, message: str) -> None:
    with pytest.raises(ReadingsFormatError, match=message) as info:
        decode(text, where="node gpu-1")
    assert str(info.value).startswith("node gpu-1")


def test_unhealthy_reading_keeps_scheduler_off_that_gpu_only() -> None:
    node = Node("gpu-1", 8000, 64000, gpus=[Gpu(i, "T4", 16000) for i in range(2)])
    state = ClusterState([node])
    updated = apply_to_state(state, "gpu-1", decode(encode([_rec(0, healthy=False), _rec(1), _rec(7)])))
    assert updated == 2  # index 7 does not exist on this node and is ignored
    whole = PodRequest(1000, 1000, gpu_count=1, gpu_milli=1000)
    assert state.default_gpus(0, whole, now=110.0) == (1,)
    assert apply_to_state(state, "no-such-node", [_rec(0)]) == 0


def test_unknown_numbers_stay_unknown_in_the_scheduler() -> None:
    state = ClusterState([Node("n", 8000, 64000, gpus=[Gpu(0, "T4", 16000)])])
    apply_to_state(state, "n", [_rec(0, free=None, util=None)])
    assert math.isnan(state.live_free_mem[0, 0]) and math.isnan(state.live_util[0, 0])
    assert state.gpu_healthy[0, 0]
