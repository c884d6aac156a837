"""Annotation value formats, written and read through one module (bigk.cluster.annotations)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bigk.cluster.annotations import format_assigned_gpus, format_names, parse_assigned_gpus, parse_names


@given(st.lists(st.integers(min_value=0, max_value=63), max_size=8))
def test_assigned_gpus_round_trip(gpus: list[int]) -> None:
    assert parse_assigned_gpus(format_assigned_gpus(gpus)) == tuple(gpus)


def test_assigned_gpus_junk_is_none_and_blank_is_empty() -> None:
    assert parse_assigned_gpus("0, 3") == (0, 3)
    assert parse_assigned_gpus(" ") == ()
    assert parse_assigned_gpus("zero,one") is None
    assert parse_assigned_gpus("1,-2") is None


def test_name_lists_take_commas_and_bars() -> None:
    assert parse_names("A100|H100") == ("A100", "H100")
    assert parse_names(" gpu-a100, ,gpu-t4 ") == ("gpu-a100", "gpu-t4")
    assert parse_names(format_names(("gpu-a100", "gpu-t4"))) == ("gpu-a100", "gpu-t4")
    assert parse_names("") == ()
