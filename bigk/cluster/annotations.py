"""Value formats of bigk's pod annotations (names in `bigk.cluster.labels`), for every writer and reader.

The binder writes the GPU indices it chose, the renderer writes name lists, and the
Kubernetes backend and the emulator read them back through these functions, so a
format is defined once. The JSON annotations have modules of their own:
`bigk.cluster.executor_request`, `bigk.cluster.readings`, `bigk.cluster.devices`.
"""

from __future__ import annotations

from collections.abc import Iterable


def format_assigned_gpus(gpus: Iterable[int]) -> str:
    """(0, 1) -> '0,1': the `bigk.io/assigned-gpus` value the binder writes."""
    return ",".join(str(int(g)) for g in gpus)


def parse_assigned_gpus(text: str) -> tuple[int, ...] | None:
    """'0,1' -> (0, 1); '' -> (); None for junk (not integers, or a negative index)."""
    if not text.strip():
        return ()
    try:
        indices = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        return None
    return None if any(i < 0 for i in indices) else indices


def format_names(names: Iterable[str]) -> str:
    """('gpu-a100', 'gpu-t4') -> 'gpu-a100,gpu-t4' (preferred pools)."""
    return ",".join(names)


def parse_names(text: str) -> tuple[str, ...]:
    """A list of names separated by ',' or '|' ('A100|H100', 'gpu-a100,gpu-t4'), blanks dropped."""
    return tuple(part.strip() for part in text.replace("|", ",").split(",") if part.strip())
