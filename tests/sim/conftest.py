"""Small synthetic traces in the Alibaba CSV format (tests must not need the shared trace)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def write_nodes(path: Path, n8: int = 12, n2: int = 12, n0: int = 2) -> Path:
    rows = ["sn,cpu_milli,memory_mib,gpu,model"]
    for i in range(n8):
        rows.append(f"node-8-{i},96000,786432,8,G2")
    for i in range(n2):
        rows.append(f"node-2-{i},104000,393216,2,T4")
    for i in range(n0):
        rows.append(f"node-0-{i},32000,262144,0,")
    path.write_text("\n".join(rows) + "\n")
    return path


def write_pods(path: Path, n: int = 300, seed: int = 0, times: bool = True) -> Path:
    rng = np.random.default_rng(seed)
    header = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase"
    header += ",creation_time,deletion_time,scheduled_time" if times else ""
    rows = [header]
    shapes = [(4000, 0, 0)] * 2 + [(8000, 1, 1000)] * 5 + [(6000, 1, 470), (4000, 1, 810), (2000, 1, 320)] * 2
    shapes += [(32000, 4, 1000), (64000, 8, 1000)]
    for i in range(n):
        cpu, count, milli = shapes[int(rng.integers(len(shapes)))]
        row = f"pod-{i:04d},{cpu},16384,{count},{milli},,LS,Running"
        if times:
            start = 100 * i
            row += f",{start},{start + int(rng.integers(500, 5000))},{start}"
        rows.append(row)
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def small_trace(tmp_path: Path) -> tuple[Path, Path]:
    return write_nodes(tmp_path / "nodes.csv"), write_pods(tmp_path / "pods.csv")
