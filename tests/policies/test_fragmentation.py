"""The fragmentation model against a direct, loop-by-loop reading of the FGD paper's definition."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bigk.cluster.model import PodRequest
from bigk.scheduler.policies.frag import FillModel, FragModel, TypicalPod, typical_pods

PODS = [
    TypicalPod(4000, 0, 0, frozenset(), 0.1),  # CPU-only
    TypicalPod(8000, 1000, 1, frozenset(), 0.4),
    TypicalPod(4000, 500, 1, frozenset(), 0.2),
    TypicalPod(2000, 250, 1, frozenset({"T4"}), 0.1),
    TypicalPod(32000, 1000, 4, frozenset(), 0.2),
]


def reference_frag(cpu_left: int, left: list[int], model: str) -> float:
    """FGD's node fragmentation, written as the paper states it."""
    total = sum(left)
    frag = 0.0
    for p in PODS:
        if p.gpu_milli == 0 or (p.gpu_models and model not in p.gpu_models):
            frag += p.freq * total
            continue
        fits = sum(1 for v in left if v >= p.gpu_milli)
        if fits >= p.gpu_count and cpu_left >= p.cpu_milli:
            frag += p.freq * sum(v for v in left if v < p.gpu_milli)
        else:
            frag += p.freq * total
    return frag


def reference_fill(cpu_left: int, left: list[int], model: str) -> float:
    total = sum(left)
    frag = 0.0
    for p in PODS:
        if p.gpu_milli == 0 or (p.gpu_models and model not in p.gpu_models):
            frag += p.freq * total
            continue
        copies = sum(v // p.gpu_milli for v in left) // p.gpu_count
        if p.cpu_milli:
            copies = min(copies, cpu_left // p.cpu_milli)
        frag += p.freq * (total - copies * p.gpu_count * p.gpu_milli)
    return frag


left_lists = st.lists(st.sampled_from([0, 90, 250, 500, 750, 1000]), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(cpu=st.integers(2_000, 96_000), left=left_lists, model=st.sampled_from(["T4", "G2"]),
       share=st.sampled_from([100, 250, 500, 750]))
def test_one_step_and_fill_match_the_definitions_before_and_after_a_share(cpu: int, left: list[int], model: str,
                                                                          share: int) -> None:
    models = ["G2", "T4"]
    idx = np.array([models.index(model)])
    req = PodRequest(2000, 1000, gpu_count=1, gpu_milli=share)
    for fm, ref in ((FragModel(PODS), reference_frag), (FillModel(PODS), reference_fill)):
        before, after = fm.frag_after(req, np.array([cpu]), np.array([left]), idx, models)
        assert before[0] == np.float64(ref(cpu, left, model)) or abs(before[0] - ref(cpu, left, model)) < 1e-6
        for j, v in enumerate(left):
            if v >= share:
                moved = list(left)
                moved[j] -= share
                assert abs(after[0, j] - ref(cpu - 2000, moved, model)) < 1e-6


def test_typical_pods_cover_the_popular_shapes_and_sum_to_one() -> None:
    reqs = [PodRequest(1000, 1, 1, 1000)] * 60 + [PodRequest(2000, 1, 1, 500)] * 30 + [PodRequest(9, 1)] * 10
    pods = typical_pods(reqs, popularity=0.85)
    assert [(p.gpu_milli, round(p.freq, 3)) for p in pods] == [(1000, 0.667), (500, 0.333)]
    assert abs(sum(p.freq for p in typical_pods(reqs)) - 1.0) < 1e-9
