"""GPU findings over a window of readings: idle while held, busy without bigk, over a share."""

from __future__ import annotations

from bigk.gpu.findings import GpuNow, Holder, ReadingWindow, WatchSettings, find

RUN = Holder("ml/scoring-r1-exec-1", True, run="scoring-r1", job="scoring", queue="ml")
SETTINGS = WatchSettings(idle_minutes=5, threshold_pct=5.0, max_gap_s=30.0)


def gpu(at: float, util: float, free: float = 80_000, holders: tuple[Holder, ...] = (RUN,), index: int = 0,
        uuid: str = "GPU-a") -> GpuNow:
    return GpuNow("gpu-a100-0", index, "gpu-a100", uuid, "NVIDIA-A100-SXM4-80GB", 81_920, holders, util, free, at)


def play(readings: list[GpuNow], window: ReadingWindow | None = None) -> ReadingWindow:
    window = window or ReadingWindow(SETTINGS)
    for r in readings:
        window.observe(r)
    return window


def test_a_run_idle_for_the_whole_window_is_named_and_not_before() -> None:
    readings = [gpu(t, 1.0 + (t % 3)) for t in range(0, 301, 10)]
    w = play(readings[:-1])
    assert find([readings[-2]], w, 290.0).idle == []  # 290 s < 5 minutes
    w = play(readings[-1:], w)
    (idle,) = find([readings[-1]], w, 300.0).idle
    assert (idle.node, idle.gpu, idle.pods, idle.runs, idle.jobs, idle.queues) == (
        "gpu-a100-0", 0, ("ml/scoring-r1-exec-1",), ("scoring-r1",), ("scoring",), ("ml",))
    assert idle.idle_s == 300.0 and 1.0 <= idle.mean_utilization_pct <= 3.0


def test_one_busy_reading_a_gap_or_a_stale_last_reading_resets_idleness() -> None:
    busy_once = [gpu(t, 50.0 if t == 150 else 1.0) for t in range(0, 301, 10)]
    assert find([busy_once[-1]], play(busy_once), 300.0).idle == []
    gap = [gpu(t, 1.0) for t in [*range(0, 101, 10), *range(200, 301, 10)]]  # 100 s without readings
    assert find([gap[-1]], play(gap), 300.0).idle == []
    steady = [gpu(t, 1.0) for t in range(0, 301, 10)]
    assert find([steady[-1]], play(steady), 400.0).idle == []  # agent silent for 100 s: unknown


def test_an_unheld_gpu_is_never_idle_but_busy_without_bigk_when_used_for_the_window() -> None:
    quiet = [gpu(t, 0.0, free=81_600, holders=()) for t in range(0, 301, 10)]  # 320 MiB: the driver
    found = find([quiet[-1]], play(quiet), 300.0)
    assert found.idle == [] and found.foreign == []
    other = Holder("team-x/notebook", False)
    busy = [gpu(t, 60.0, free=50_000, holders=(other,)) for t in range(0, 301, 10)]
    (foreign,) = find([busy[-1]], play(busy), 300.0).foreign
    assert foreign.other_pods == ("team-x/notebook",) and foreign.memory_used_mib == 31_920
    memory_only = [gpu(t, 0.0, free=70_000, holders=()) for t in range(0, 301, 10)]  # 11.9 GiB held, 0 %
    assert len(find([memory_only[-1]], play(memory_only), 300.0).foreign) == 1


def test_a_share_using_more_memory_than_its_share_is_over_share() -> None:
    a = Holder("ml/a", True, run="r1", job="j1", queue="ml", share_milli=250, memory_mib=4096)
    b = Holder("ml/b", True, run="r2", job="j2", queue="ml", share_milli=250, memory_mib=4096)
    within = gpu(100.0, 40.0, free=81_920 - 8_000, holders=(a, b))
    assert find([within], play([within]), 100.0).over_share == []
    over = gpu(110.0, 40.0, free=81_920 - 20_000, holders=(a, b))
    (found,) = find([over], play([over]), 110.0).over_share
    assert (found.memory_used_mib, found.memory_allowed_mib, found.pods, found.runs) == (
        20_000, 8192, ("ml/a", "ml/b"), ("r1", "r2"))
    assert find([over], play([over]), 500.0).over_share == []  # a stale reading proves nothing


def test_a_new_device_in_the_same_slot_starts_a_new_history() -> None:
    old = [gpu(t, 1.0) for t in range(0, 201, 10)]
    new = [gpu(t, 1.0, uuid="GPU-b") for t in range(210, 301, 10)]
    assert find([new[-1]], play(old + new), 300.0).idle == []
