"""NVML reading without a GPU: per-field error isolation, health rules, annotation format."""

from __future__ import annotations

import json

import pynvml
import pytest

from bigk import metrics
from bigk.cluster import readings
from bigk.gpu.health import HealthInputs, judge
from bigk.gpu.nvml import NvmlReader, NvmlUnavailable, read_records
from tests.gpu.fake_nvml import FakeNvml, err, healthy_gpu


def _records(fake: FakeNvml, monkeypatch: pytest.MonkeyPatch) -> list[readings.ReadingRecord]:
    fake.install(monkeypatch)
    with NvmlReader() as reader:
        return read_records(reader, now=lambda: 1234.5)


def test_healthy_gpus_become_annotation_json_with_every_documented_key(monkeypatch: pytest.MonkeyPatch) -> None:
    recs = _records(FakeNvml([healthy_gpu(0, util=37, free_gib=60), healthy_gpu(1)]), monkeypatch)
    data = json.loads(readings.encode(recs))
    assert [d["index"] for d in data] == [0, 1]
    first = data[0]
    assert first == {
        "index": 0, "uuid": "GPU-0000-0", "model": "NVIDIA A100-SXM4-80GB", "memory_total_mib": 81920,
        "memory_free_mib": 61440, "utilization_pct": 37.0, "temperature_c": 45.0, "healthy": True,
        "observed_at": 1234.5, "health_reasons": [],
    }
    assert readings.decode(readings.encode(recs)) == sorted(recs, key=lambda r: r.index)


def test_one_failing_field_leaves_other_fields_and_gpus_intact(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = healthy_gpu(0)
    broken["utilization"] = err(pynvml.NVML_ERROR_UNKNOWN)
    before = metrics.AGENT_REGISTRY.get_sample_value("bigk_agent_nvml_errors_total", {"field": "utilization"}) or 0
    recs = _records(FakeNvml([broken, healthy_gpu(1, util=80)]), monkeypatch)
    assert recs[0].utilization_pct is None
    assert recs[0].memory_free_mib == 70 * 1024 and recs[0].temperature_c == 45.0
    assert recs[0].healthy  # one unreadable field is not a sick GPU
    assert recs[1].utilization_pct == 80.0
    after = metrics.AGENT_REGISTRY.get_sample_value("bigk_agent_nvml_errors_total", {"field": "utilization"})
    assert after == before + 1
    assert json.loads(readings.encode(recs))[0]["utilization_pct"] is None


def test_not_supported_fields_are_neither_errors_nor_health_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer = healthy_gpu(0)
    for name in ("ecc", "retired_pages", "remapped_rows", "temperature_threshold", "clocks", "power_state"):
        consumer[name] = err(pynvml.NVML_ERROR_NOT_SUPPORTED)
    fake = FakeNvml([consumer])
    fake.install(monkeypatch)
    with NvmlReader() as reader:
        sample = reader.read()[0]
    assert sample.errors == {}
    assert sample.verdict().healthy


def test_lost_gpu_is_unhealthy_and_the_next_gpu_still_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    lost = healthy_gpu(0)
    for name in ("uuid", "name", "memory", "utilization", "temperature", "ecc"):
        lost[name] = err(pynvml.NVML_ERROR_GPU_IS_LOST)
    no_handle = healthy_gpu(1)
    no_handle["handle"] = err(pynvml.NVML_ERROR_UNKNOWN)
    recs = _records(FakeNvml([lost, no_handle, healthy_gpu(2)]), monkeypatch)
    assert not recs[0].healthy and "gpu_lost" in recs[0].health_reasons and "unreadable" in recs[0].health_reasons
    assert not recs[1].healthy and recs[1].health_reasons == ("unreadable",)
    assert recs[2].healthy and recs[2].uuid == "GPU-0000-2"


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("ecc", 2, "ecc_uncorrected"),
    ("retired_pages", pynvml.NVML_FEATURE_ENABLED, "retired_pages_pending"),
    ("remapped_rows", (0, 1, 1, 0), "row_remap_pending"),
    ("remapped_rows", (0, 0, 0, 1), "row_remap_failed"),
    ("temperature", 88, "overheating"),
    ("clocks", 0x40, "hw_slowdown"),
])
def test_health_rules_mark_the_gpu_unhealthy(monkeypatch: pytest.MonkeyPatch, field: str, value: object,
                                             reason: str) -> None:
    sick = healthy_gpu(0)
    sick[field] = value
    recs = _records(FakeNvml([sick, healthy_gpu(1)]), monkeypatch)
    assert not recs[0].healthy and reason in recs[0].health_reasons
    assert recs[1].healthy


def test_critical_xid_sticks_but_application_xid_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNvml([healthy_gpu(0), healthy_gpu(1)])
    fake.install(monkeypatch)
    with NvmlReader() as reader:
        fake.xid_events = [(0, 79), (1, 13)]
        first = read_records(reader)
        second = read_records(reader)  # no new events: the XID 79 verdict must persist
    assert first[0].health_reasons == ("xid_79",) and not second[0].healthy
    assert first[1].healthy and second[1].healthy


def test_missing_nvml_is_a_one_line_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeNvml([], init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND).install(monkeypatch)
    with pytest.raises(NvmlUnavailable, match="NVML is not available"):
        NvmlReader().open()


def test_overheating_uses_default_limit_when_gpu_reports_none() -> None:
    assert judge(HealthInputs(temperature_c=89.0)).healthy
    assert not judge(HealthInputs(temperature_c=91.0)).healthy
    assert judge(HealthInputs(temperature_c=91.0, slowdown_temp_c=95.0)).healthy
