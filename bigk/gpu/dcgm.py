"""GPU readings from NVIDIA DCGM, through the Prometheus that scrapes dcgm-exporter.

Clusters that already run dcgm-exporter need no `bigk agent`: bigk asks
Prometheus's HTTP API for the exporter's gauges and turns them into the same
`ReadingRecord`s the agent writes. Series are matched by the host label
(dcgm-exporter's `Hostname`, configurable) and the GPU index label `gpu`.

Metrics used (dcgm-exporter default counters): DCGM_FI_DEV_FB_FREE and
DCGM_FI_DEV_FB_USED (MiB), DCGM_FI_DEV_GPU_UTIL (%), DCGM_FI_DEV_GPU_TEMP (C),
DCGM_FI_DEV_XID_ERRORS (the last XID seen; 0 = none) and, when exported,
DCGM_FI_DEV_ECC_DBE_VOL_TOTAL (volatile double-bit ECC errors).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

import httpx

from bigk.cluster.readings import ReadingRecord
from bigk.errors import BigkError
from bigk.gpu.health import HealthInputs, judge

log = logging.getLogger(__name__)

FB_FREE = "DCGM_FI_DEV_FB_FREE"
FB_USED = "DCGM_FI_DEV_FB_USED"
GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"
GPU_TEMP = "DCGM_FI_DEV_GPU_TEMP"
XID_ERRORS = "DCGM_FI_DEV_XID_ERRORS"
ECC_DBE = "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"
METRICS = (FB_FREE, FB_USED, GPU_UTIL, GPU_TEMP, XID_ERRORS, ECC_DBE)


class DcgmError(BigkError):
    """Prometheus could not be asked, or did not answer as its HTTP API should."""


@dataclass
class _Gpu:
    uuid: str = ""
    model: str = ""
    values: dict[str, float] = field(default_factory=dict)
    observed_at: float = 0.0


class DcgmReader:
    """Reads dcgm-exporter gauges from a Prometheus server's /api/v1/query."""

    def __init__(self, prometheus_url: str, host_label: str = "Hostname", timeout_s: float = 5.0,
                 client: httpx.Client | None = None) -> None:
        self.url = prometheus_url.rstrip("/")
        self.host_label = host_label
        self._client = client or httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self._client.close()

    def read_all(self) -> dict[str, list[ReadingRecord]]:
        """Readings for every host Prometheus knows, keyed by the host label's value."""
        return self._read(selector="")

    def read_node(self, node: str) -> list[ReadingRecord]:
        """Readings for one node (empty if Prometheus has no DCGM series for it)."""
        escaped = node.replace("\\", "\\\\").replace('"', '\\"')
        return self._read(selector=f'{{{self.host_label}="{escaped}"}}').get(node, [])

    def _read(self, selector: str) -> dict[str, list[ReadingRecord]]:
        gpus: dict[tuple[str, int], _Gpu] = defaultdict(_Gpu)
        for metric in METRICS:
            for sample in self._query(metric + selector):
                labels = sample.get("metric", {})
                host = labels.get(self.host_label)
                index = labels.get("gpu")
                if host is None or index is None or not str(index).isdigit():
                    continue
                at, raw = sample["value"]
                try:
                    value = float(raw)
                except ValueError:
                    continue
                gpu = gpus[(host, int(index))]
                gpu.uuid = gpu.uuid or labels.get("UUID", "")
                gpu.model = gpu.model or labels.get("modelName", "")
                gpu.values[metric] = value
                gpu.observed_at = max(gpu.observed_at, float(at))
        out: dict[str, list[ReadingRecord]] = defaultdict(list)
        for (host, index), gpu in sorted(gpus.items()):
            out[host].append(_record(index, gpu))
        return dict(out)

    def _query(self, promql: str) -> list[dict]:
        try:
            resp = self._client.get(f"{self.url}/api/v1/query", params={"query": promql})
        except httpx.HTTPError as exc:
            raise DcgmError(f"Prometheus at {self.url} could not be reached: {exc}") from exc
        try:
            body = resp.json()
        except ValueError as exc:
            raise DcgmError(f"Prometheus at {self.url} answered HTTP {resp.status_code} without JSON") from exc
        if body.get("status") != "success":
            raise DcgmError(f"Prometheus at {self.url} rejected {promql!r}: {body.get('error', resp.status_code)}")
        data = body.get("data", {})
        if data.get("resultType") != "vector":
            raise DcgmError(f"Prometheus at {self.url} returned {data.get('resultType')!r} for {promql!r}")
        return list(data.get("result", []))


def _record(index: int, gpu: _Gpu) -> ReadingRecord:
    v = gpu.values
    free = v.get(FB_FREE)
    used = v.get(FB_USED)
    total = int(free + used) if free is not None and used is not None else None
    xid = int(v.get(XID_ERRORS, 0) or 0)
    verdict = judge(HealthInputs(
        temperature_c=v.get(GPU_TEMP),
        ecc_uncorrected_volatile=int(v[ECC_DBE]) if ECC_DBE in v else None,
        xids=frozenset({xid}) if xid else frozenset(),
    ))
    return ReadingRecord(
        index=index, uuid=gpu.uuid, model=gpu.model, memory_total_mib=total,
        memory_free_mib=int(free) if free is not None else None,
        utilization_pct=v.get(GPU_UTIL), temperature_c=v.get(GPU_TEMP),
        healthy=verdict.healthy, observed_at=gpu.observed_at, health_reasons=verdict.reasons,
    )
