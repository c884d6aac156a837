"""Cost of the GPU watch's window and findings at the FGD trace's size (6,212 GPUs), 10 minutes of readings.

    python3 bench/gpu_watch.py
"""

from __future__ import annotations

import time

from bigk.gpu.findings import GpuNow, Holder, ReadingWindow, WatchSettings, find

GPUS = 6212


def main() -> None:
    settings = WatchSettings(idle_minutes=10)
    window = ReadingWindow(settings)
    held = (Holder("ns/pod", True, "run", "job", "queue"),)
    observe_s = 0.0
    gpus: list[GpuNow] = []
    for step in range(61):  # a reading every 10 s for 10 minutes
        at = step * 10.0
        gpus = [GpuNow(f"n{i // 5}", i % 5, "pool", f"GPU-{i}", "NVIDIA-A100-SXM4-80GB", 81920,
                       held if i % 50 else (), 1.0 if i % 100 == 1 else 50.0, 70000, at) for i in range(GPUS)]
        start = time.perf_counter()
        for gpu in gpus:
            window.observe(gpu)
        observe_s += time.perf_counter() - start
    start = time.perf_counter()
    found = find(gpus, window, 600.0)
    find_s = time.perf_counter() - start
    print(f"{GPUS} GPUs: observe {observe_s / 61 * 1000:.1f} ms per sampling, find {find_s * 1000:.1f} ms "
          f"(idle {len(found.idle)}, busy without bigk {len(found.foreign)})")


if __name__ == "__main__":
    main()
