"""The timeline protocol: waits in bigk's queue, retries as capacity frees, pods that never ran."""

from __future__ import annotations

from bigk.cluster.model import Gpu, Node, PodRequest
from bigk.sim.report import timeline_report
from bigk.sim.timeline import run_timeline
from bigk.sim.trace import TracePod

ONE_GPU = PodRequest(1_000, 1_000, gpu_count=1, gpu_milli=1000)


def test_pods_wait_for_capacity_and_some_never_run() -> None:
    nodes = [Node("n", 8_000, 64_000, gpus=[Gpu(0, "T4", 15_360)])]
    pods = [TracePod("a", ONE_GPU, 0.0, 100.0),  # runs at once
            TracePod("b", ONE_GPU, 10.0, 500.0),  # waits until a leaves at t=100
            TracePod("c", ONE_GPU, 20.0, 50.0)]  # leaves at t=50 while still waiting: never ran
    run = run_timeline(nodes, pods, "bigk", 1)
    assert run.ran == 2 and run.never_ran == 1
    assert sorted(run.waits_s) == [0.0, 90.0]
    assert max(run.gpu_alloc_pct) == 100.0
    report = timeline_report({"bigk": [run]}, {})
    assert report["summary"]["bigk"]["never_ran"] == 1 and report["summary"]["bigk"]["wait_max_s"] == 90.0


def test_speedup_compresses_arrivals_but_keeps_durations() -> None:
    nodes = [Node("n", 8_000, 64_000, gpus=[Gpu(0, "T4", 15_360)])]
    pods = [TracePod("a", ONE_GPU, 0.0, 100.0), TracePod("b", ONE_GPU, 200.0, 300.0)]
    assert run_timeline(nodes, pods, "fgd", 1).never_ran == 0
    squeezed = run_timeline(nodes, pods, "fgd", 1, speedup=4.0)  # b now arrives at 50, a leaves at 100
    assert squeezed.never_ran == 0 and sorted(squeezed.waits_s) == [0.0, 50.0]


def test_a_pod_that_leaves_as_it_arrives_does_not_stay_forever() -> None:
    nodes = [Node("n", 8_000, 64_000, gpus=[Gpu(0, "T4", 15_360)])]
    pods = [TracePod("flash", ONE_GPU, 5.0, 5.0), TracePod("next", ONE_GPU, 6.0, 9.0)]
    run = run_timeline(nodes, pods, "bigk", 1)
    assert run.ran == 2 and run.never_ran == 0 and run.waits_s == [0.0, 0.0]
