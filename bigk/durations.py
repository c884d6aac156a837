"""How long, said briefly (45s, 3m, 2h, 4d): one rule for the CLI and the status page."""

from __future__ import annotations


def span(seconds: float | None, tenths_below: float = 0.0) -> str:
    """`seconds` in the largest unit it holds twice, with tenths of a second below `tenths_below`; '-' for None."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:.1f}s" if seconds < tenths_below else f"{seconds:.0f}s"
