"""Simulated GPUs: every GPU node's `bigk.io/gpu-readings` annotation, refreshed periodically.

This is the channel the real `bigk agent` writes (format in `bigk.cluster.readings`, written through it).
Memory in use on a GPU comes from the running pods assigned to it: the
`bigk.io/assigned-gpus` annotation names the indices, except for pods the simulated
device plugin gave devices (`bigk.io/device-plugin-allocations` on the node: those
are the devices they really use); pods with neither take the lowest free indices;
a pod uses `bigk.io/gpu-memory-mib` per GPU when given, else `bigk.io/gpu-milli`
thousandths of the memory, else 90 %. Utilisation follows the pods' share with a
little noise, temperature follows utilisation. `bigk.io/sim-gpu-utilization` and
`bigk.io/sim-gpu-memory-mib` on a pod override both (an idle run, a share overrun). Tests can mark a GPU unhealthy
(`set_health`) or busy outside Kubernetes (`set_external_use`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any

from bigk.cluster.annotations import parse_assigned_gpus
from bigk.cluster.devices import DEVICE_ALLOCATIONS_ANNOTATION, decode_allocations
from bigk.cluster.labels import (
    ASSIGNED_GPUS_ANNOTATION,
    GPU_MEMORY_ANNOTATION,
    GPU_MILLI_ANNOTATION,
    GPU_READINGS_ANNOTATION,
)
from bigk.cluster.model import GPU_RESOURCE, MILLI_GPU, Node
from bigk.cluster.readings import ReadingRecord
from bigk.cluster.readings import encode as encode_readings
from bigk.emulator.api import NODES, PODS
from bigk.emulator.errors import ApiError
from bigk.emulator.host import SimHost, Simulator
from bigk.emulator.store import Obj

log = logging.getLogger("bigk.emulator")
WHOLE_GPU_MEMORY_SHARE = 0.9
# Emulator-only pod annotations (like bigk.io/sim-fail): the GPU use a simulated pod really has.
SIM_GPU_UTILIZATION_ANNOTATION = "bigk.io/sim-gpu-utilization"  # percent of each of its GPUs
SIM_GPU_MEMORY_ANNOTATION = "bigk.io/sim-gpu-memory-mib"  # MiB on each of its GPUs, whatever its share says


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return default


def _pod_gpu_count(pod: Obj) -> int:
    total = 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        limits = ((c.get("resources") or {}).get("limits")) or {}
        total += _int(limits.get(GPU_RESOURCE))
    return total


def _assigned(pod: Obj) -> list[int] | None:
    text = (pod["metadata"].get("annotations") or {}).get(ASSIGNED_GPUS_ANNOTATION)
    if not text:
        return None
    indices = parse_assigned_gpus(text)
    return list(indices) if indices is not None else []  # junk: assigned, but to no GPU this node has


class GpuSim(Simulator):
    """Readings for every GPU of every node with GPUs, written every `gpu_interval` seconds (no store watch)."""

    def __init__(self, host: SimHost, seed: int = 0) -> None:
        super().__init__(host)
        self.interval = host.gpu_interval
        self._health: dict[tuple[str, int], bool] = {}
        self._external: dict[tuple[str, int], tuple[int, float]] = {}
        self._rng = random.Random(seed)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = self.loop.create_task(self._run())

    def _halt(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def set_health(self, node: str, index: int, healthy: bool) -> None:
        """Mark one GPU (un)healthy; the annotation is refreshed at once."""
        self._health[(node, index)] = healthy
        self.refresh_soon()

    def set_external_use(self, node: str, index: int, memory_mib: int, utilization_pct: float = 50.0) -> None:
        """Pretend a process outside Kubernetes uses this GPU (the "already busy" case)."""
        self._external[(node, index)] = (memory_mib, utilization_pct)
        self.refresh_soon()

    def refresh_soon(self) -> None:
        self.loop.call_soon_threadsafe(self.refresh)

    async def _run(self) -> None:
        while True:
            try:
                self.refresh()
            except Exception:  # keep reporting
                log.exception("event=gpu_sim_error")
            await asyncio.sleep(self.interval)

    def refresh(self) -> None:
        """Write fresh readings on every GPU node."""
        nodes = [n for n in list(self.host.model_nodes.values()) if n.gpus]
        if not nodes:
            return
        names = {n.name for n in nodes}
        by_node: dict[str, list[Obj]] = {}
        pods, _ = self.api.store.objects(PODS.key)
        for pod in pods:
            node = (pod.get("spec") or {}).get("nodeName")
            if node in names and (pod.get("status") or {}).get("phase") == "Running":
                by_node.setdefault(node, []).append(pod)
        now = time.time()
        for node in nodes:
            readings = self.readings(node, by_node.get(node.name, []), now)
            text = encode_readings(readings)

            def change(obj: Obj, text: str = text) -> None:
                obj["metadata"].setdefault("annotations", {})[GPU_READINGS_ANNOTATION] = text

            with contextlib.suppress(ApiError):
                self.api.update_object(NODES.key, "", node.name, change)

    def readings(self, node: Node, pods: list[Obj], now: float) -> list[ReadingRecord]:
        """The readings of one node's GPUs given the pods running there."""
        count = len(node.gpus)
        used = [0.0] * count
        util = [0.0] * count
        unassigned: list[Obj] = []
        plugin = self._plugin_devices(node.name)
        for pod in pods:
            indices = plugin.get(pod["metadata"].get("uid", "")) or _assigned(pod)
            if indices is None:
                if _pod_gpu_count(pod):
                    unassigned.append(pod)
                continue
            for i in indices:
                if 0 <= i < count:
                    self._charge(pod, node, i, used, util)
        for pod in unassigned:  # a device plugin hands out the lowest free GPUs
            free = [i for i in range(count) if used[i] == 0]
            for i in free[: _pod_gpu_count(pod)]:
                self._charge(pod, node, i, used, util)
        result = []
        for gpu in node.gpus:
            i = gpu.index
            ext_mem, ext_util = self._external.get((node.name, i), (0, 0.0))
            busy = min(float(gpu.memory_mib), used[i] + ext_mem) if i < count else float(ext_mem)
            load = min(100.0, (util[i] if i < count else 0.0) + ext_util)
            if load > 0:
                load = max(0.0, min(100.0, load + self._rng.uniform(-3, 3)))
            result.append(ReadingRecord(
                index=i, uuid=gpu.uuid or f"GPU-{node.name}-{i}", model=gpu.model,
                memory_total_mib=gpu.memory_mib, memory_free_mib=int(gpu.memory_mib - busy),
                utilization_pct=round(load, 1),
                temperature_c=round(32 + 0.45 * load + self._rng.uniform(-1, 1), 1),
                healthy=self._health.get((node.name, i), True), observed_at=round(now, 3),
            ))
        return result

    def _plugin_devices(self, node: str) -> dict[str, list[int]]:
        """The device plugin's choices on `node` by pod UID (`bigk.emulator.device_plugin`): a pod asking for
        nvidia.com/gpu uses those devices, whatever bigk's annotation says."""
        obj = self.api.store.get(NODES.key, "", node)
        text = ((obj or {}).get("metadata", {}).get("annotations") or {}).get(DEVICE_ALLOCATIONS_ANNOTATION)
        return {uid: list(a.devices) for uid, a in decode_allocations(text).items()}

    @staticmethod
    def _charge(pod: Obj, node: Node, i: int, used: list[float], util: list[float]) -> None:
        annotations = pod["metadata"].get("annotations") or {}
        total = node.gpus[i].memory_mib if i < len(node.gpus) else 0
        milli = _int(annotations.get(GPU_MILLI_ANNOTATION), MILLI_GPU) or MILLI_GPU
        if annotations.get(SIM_GPU_MEMORY_ANNOTATION):  # what the pod really uses, share or not
            memory = float(_int(annotations[SIM_GPU_MEMORY_ANNOTATION]))
        elif annotations.get(GPU_MEMORY_ANNOTATION):
            memory = float(_int(annotations[GPU_MEMORY_ANNOTATION]))
        elif milli < MILLI_GPU:
            memory = total * milli / MILLI_GPU
        else:
            memory = total * WHOLE_GPU_MEMORY_SHARE
        used[i] = min(float(total), used[i] + memory)
        busy = 85.0 * min(milli, MILLI_GPU) / MILLI_GPU
        if annotations.get(SIM_GPU_UTILIZATION_ANNOTATION) is not None:  # e.g. "0": a run holding an idle GPU
            busy = max(0.0, min(100.0, float(_int(annotations[SIM_GPU_UTILIZATION_ANNOTATION], int(busy)))))
        util[i] = min(100.0, util[i] + busy)
