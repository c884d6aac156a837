"""Load cluster traces (nodes and pods) from CSV with pandas, validating every row.

The reference format is the Alibaba GPU trace (cluster-trace-gpu-v2023, the
FGD paper's "openb" files): nodes `sn,cpu_milli,memory_mib,gpu,model` and pods
`name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,...,creation_time,
deletion_time`. Any CSV with those columns works; `gpu_spec` and the time
columns are optional, and nodes may carry an optional `gpu_memory_mib`. Bad
rows raise `TraceError` naming file, line and column.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bigk.cluster.model import MILLI_GPU, Gpu, Node, PodRequest
from bigk.errors import BigkError

# Default trace: the shared folder next to the repository (see its SOURCE.md), or $BIGK_TRACE_DIR.
DEFAULT_TRACE_DIR = Path(os.environ.get(
    "BIGK_TRACE_DIR", Path(__file__).resolve().parents[3] / "shared" / "traces" / "alibaba-gpu-v2023"))
DEFAULT_NODES = DEFAULT_TRACE_DIR / "openb_node_list_all_node.csv"
DEFAULT_PODS = DEFAULT_TRACE_DIR / "openb_pod_list_default.csv"

# GPU memory by model where public (MiB); undisclosed models (G1-G3) are unknown (0).
GPU_MEMORY_MIB = {"P100": 16_384, "T4": 15_360, "V100M16": 16_384, "V100M32": 32_768, "A10": 24_576,
                  "A100": 40_960, "H100": 81_920}


class TraceError(BigkError):
    """A trace file that cannot be read, or a row that is not valid."""


@dataclass(frozen=True)
class TracePod:
    """One pod of a trace: its request and, when known, when it was created and deleted."""

    name: str
    request: PodRequest
    created: float | None = None
    deleted: float | None = None


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise TraceError(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise TraceError(f"{path}: not a readable CSV: {str(exc).splitlines()[0]}") from None


def _require(df: pd.DataFrame, path: Path, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise TraceError(f"{path}:1: missing column(s) {', '.join(missing)}; found {', '.join(df.columns)}")


def _ints(df: pd.DataFrame, path: Path, column: str, low: int = 0, high: float = math.inf,
          optional: bool = False) -> np.ndarray:
    """A column as int64, every value checked; blank allowed (as -1) only when optional."""
    raw = df[column].str.strip()
    values = pd.to_numeric(raw, errors="coerce")
    blank = raw == ""
    bad = values.isna() & ~(blank & optional)
    bad |= values.notna() & ((values != np.floor(values)) | (values < low) | (values > high))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        more = int(bad.sum()) - 1
        rng = f"an integer >= {low}" + (f" and <= {int(high)}" if high != math.inf else "")
        extra = f" ({more} more bad rows)" if more else ""
        raise TraceError(f"{path}:{i + 2}: column {column}: {df[column].iloc[i]!r} is not {rng}{extra}")
    return values.fillna(-1).to_numpy(dtype=np.int64)


def _floats(df: pd.DataFrame, path: Path, column: str) -> np.ndarray:
    """An optional time column as float (NaN where blank)."""
    raw = df[column].str.strip()
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & (raw != "") | (values < 0)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise TraceError(f"{path}:{i + 2}: column {column}: {df[column].iloc[i]!r} is not a time in seconds >= 0")
    return values.to_numpy(dtype=np.float64)


def _row_error(path: Path, mask: np.ndarray, message: str) -> None:
    if mask.any():
        i = int(np.flatnonzero(mask)[0])
        more = int(mask.sum()) - 1
        raise TraceError(f"{path}:{i + 2}: {message}" + (f" ({more} more bad rows)" if more else ""))


def load_nodes(path: str | Path, gpu_only: bool = False) -> list[Node]:
    """Nodes from a CSV (`sn` or `name`, cpu_milli, memory_mib, gpu, model[, gpu_memory_mib])."""
    path = Path(path)
    df = _read(path)
    name_col = "sn" if "sn" in df.columns else "name"
    _require(df, path, [name_col, "cpu_milli", "memory_mib", "gpu"])
    cpu = _ints(df, path, "cpu_milli", low=1)
    mem = _ints(df, path, "memory_mib", low=1)
    gpus = _ints(df, path, "gpu", high=64)
    models = df["model"].str.strip().to_numpy() if "model" in df.columns else np.full(len(df), "")
    _row_error(path, (gpus > 0) & (models == ""), "column model: a node with GPUs needs a GPU model")
    gpu_mem = (_ints(df, path, "gpu_memory_mib", optional=True) if "gpu_memory_mib" in df.columns
               else np.full(len(df), -1))
    names = df[name_col].str.strip().to_numpy()
    _row_error(path, names == "", f"column {name_col}: empty node name")
    dup = pd.Series(names).duplicated().to_numpy()
    _row_error(path, dup, f"column {name_col}: duplicate node name")
    nodes: list[Node] = []
    for i in range(len(df)):
        if gpu_only and gpus[i] == 0:
            continue
        model = str(models[i]) if gpus[i] else ""
        memory = int(gpu_mem[i]) if gpu_mem[i] >= 0 else GPU_MEMORY_MIB.get(model, 0)
        nodes.append(Node(str(names[i]), int(cpu[i]), int(mem[i]), pods=1_000,
                          gpus=[Gpu(g, model, memory) for g in range(int(gpus[i]))]))
    return nodes


def load_pods(path: str | Path) -> list[TracePod]:
    """Pods from a CSV (name, cpu_milli, memory_mib, num_gpu, gpu_milli[, gpu_spec, creation_time, deletion_time])."""
    path = Path(path)
    df = _read(path)
    _require(df, path, ["name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli"])
    cpu = _ints(df, path, "cpu_milli")
    mem = _ints(df, path, "memory_mib")
    count = _ints(df, path, "num_gpu", high=64)
    milli = _ints(df, path, "gpu_milli", high=MILLI_GPU)
    _row_error(path, (count == 0) & (milli > 0), "column gpu_milli: a pod without GPUs (num_gpu 0) asks for gpu_milli")
    _row_error(path, (count > 0) & (milli == 0), "column gpu_milli: a GPU pod needs gpu_milli > 0")
    _row_error(path, (count > 1) & (milli < MILLI_GPU),
               "column gpu_milli: only single-GPU pods may share a GPU (gpu_milli < 1000 needs num_gpu 1)")
    specs = df["gpu_spec"].str.strip().to_numpy() if "gpu_spec" in df.columns else np.full(len(df), "")
    created = _floats(df, path, "creation_time") if "creation_time" in df.columns else np.full(len(df), np.nan)
    deleted = _floats(df, path, "deletion_time") if "deletion_time" in df.columns else np.full(len(df), np.nan)
    _row_error(path, deleted < created, "column deletion_time: deleted before it was created")
    names = df["name"].str.strip().to_numpy()
    _row_error(path, names == "", "column name: empty pod name")
    pods: list[TracePod] = []
    cache: dict[tuple[int, int, int, int, str], PodRequest] = {}
    for i in range(len(df)):
        key = (int(cpu[i]), int(mem[i]), int(count[i]), int(milli[i]), str(specs[i]))
        req = cache.get(key)
        if req is None:
            models = frozenset(m.strip() for m in key[4].split("|") if m.strip())
            req = cache[key] = PodRequest(key[0], key[1], gpu_count=key[2], gpu_milli=key[3], gpu_models=models)
        pods.append(TracePod(str(names[i]), req, None if np.isnan(created[i]) else float(created[i]),
                             None if np.isnan(deleted[i]) else float(deleted[i])))
    return pods
