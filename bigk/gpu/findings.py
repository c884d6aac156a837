"""What is wrong with GPUs over a window of readings: idle while held, busy with no bigk pod, over a share.

Pure (no I/O, no clock): `bigk.service.gpu_watch` feeds it the cluster's GPUs as
`GpuNow` every sampling tick and asks for `Findings`.
- **Idle**: a GPU held by a bigk pod whose readings stayed below the threshold for the
  whole window (every reading, no gap longer than `max_gap_s`, the last one fresh).
  One reading below 5 % is noise; ten minutes of them is a run wasting a GPU.
- **Busy without bigk**: a GPU no bigk pod holds whose readings stayed at or above the
  threshold (or used more than `foreign_memory_mib`) for the window: someone else's
  process, or a pod the device plugin gave it (named when the node says so).
- **Over share**: a GPU holding only bigk shares whose fresh reading uses more memory than
  the shares add up to (plus a tolerance for the driver's own use): a pod exceeds its share.
- **Conflict**: a GPU the device plugin gave a pod and bigk shared out (`bigk.cluster.devices`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from bigk.cluster.devices import Conflict

DEFAULT_IDLE_MINUTES = 10.0
DEFAULT_IDLE_THRESHOLD_PCT = 5.0
DEFAULT_MAX_GAP_S = 60.0  # readings further apart than this say nothing about the time between
FOREIGN_MEMORY_MIB = 1024  # more than a driver context: someone's process has memory on the GPU
OVER_SHARE_TOLERANCE_MIB = 512  # driver and CUDA context overhead per GPU


@dataclass(frozen=True)
class Holder:
    """A pod holding (part of) a GPU."""

    pod: str  # namespace/name
    bigk: bool  # placed by bigk (else another scheduler's pod the device plugin gave this GPU)
    run: str = ""
    job: str = ""
    queue: str = ""
    share_milli: int = 1000
    memory_mib: int = 0  # the GPU memory a share may use (0 for whole GPUs)


@dataclass(frozen=True)
class GpuNow:
    """One GPU at one sampling instant: who holds it and its latest reading (None: no reading)."""

    node: str
    index: int
    pool: str = "default"
    uuid: str = ""
    model: str = ""
    memory_mib: int = 0
    holders: tuple[Holder, ...] = ()
    utilization_pct: float | None = None
    memory_free_mib: float | None = None
    observed_at: float | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.node, self.index)


@dataclass(frozen=True)
class Sample:
    at: float
    utilization_pct: float
    memory_used_mib: float


class ReadingWindow:
    """The readings of every GPU over the last `keep_s` seconds (one per distinct observation time)."""

    def __init__(self, keep_s: float) -> None:
        self.keep_s = keep_s
        self._samples: dict[tuple[str, int], deque[Sample]] = {}
        self._uuid: dict[tuple[str, int], str] = {}

    def observe(self, gpu: GpuNow) -> None:
        if gpu.observed_at is None or gpu.utilization_pct is None:
            return
        key = gpu.key
        if self._uuid.get(key, gpu.uuid) != gpu.uuid:  # another device in that slot: its history is not ours
            self._samples.pop(key, None)
        self._uuid[key] = gpu.uuid
        window = self._samples.setdefault(key, deque())
        if window and gpu.observed_at <= window[-1].at:
            return
        used = max(0.0, gpu.memory_mib - gpu.memory_free_mib) if gpu.memory_free_mib is not None else 0.0
        window.append(Sample(gpu.observed_at, float(gpu.utilization_pct), used))
        while window and window[0].at < gpu.observed_at - self.keep_s:
            window.popleft()

    def forget_except(self, keys: Iterable[tuple[str, int]]) -> None:
        """Drop GPUs that no longer exist (nodes removed)."""
        alive = set(keys)
        for key in list(self._samples):
            if key not in alive:
                del self._samples[key]
                self._uuid.pop(key, None)

    def samples(self, key: tuple[str, int]) -> Sequence[Sample]:
        return tuple(self._samples.get(key, ()))

    def held_since(self, key: tuple[str, int], now: float, max_gap_s: float,
                   ok: Callable[[Sample], bool]) -> float | None:
        """Start of the unbroken run of readings, up to a fresh last one, for which `ok(sample)` holds."""
        window = self._samples.get(key)
        if not window or now - window[-1].at > max_gap_s:
            return None
        since = None
        later = now
        for sample in reversed(window):
            if not ok(sample) or later - sample.at > max_gap_s:
                break
            since, later = sample.at, sample.at
        return since


@dataclass(frozen=True)
class IdleGpu:
    node: str
    gpu: int
    uuid: str
    pool: str
    pods: tuple[str, ...]
    runs: tuple[str, ...]
    jobs: tuple[str, ...]
    queues: tuple[str, ...]
    idle_since: float
    idle_s: float
    mean_utilization_pct: float
    holders: tuple[Holder, ...] = ()  # each pod with its run, job and queue


@dataclass(frozen=True)
class ForeignBusyGpu:
    node: str
    gpu: int
    uuid: str
    pool: str
    busy_since: float
    busy_s: float
    utilization_pct: float
    memory_used_mib: float
    other_pods: tuple[str, ...]  # pods of other schedulers the device plugin gave this GPU (if known)


@dataclass(frozen=True)
class OverShareGpu:
    node: str
    gpu: int
    uuid: str
    pool: str
    memory_used_mib: float
    memory_allowed_mib: int
    pods: tuple[str, ...]
    runs: tuple[str, ...]
    jobs: tuple[str, ...]
    queues: tuple[str, ...]


@dataclass
class Findings:
    idle: list[IdleGpu] = field(default_factory=list)
    foreign: list[ForeignBusyGpu] = field(default_factory=list)
    over_share: list[OverShareGpu] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)


@dataclass(frozen=True)
class WatchSettings:
    idle_minutes: float = DEFAULT_IDLE_MINUTES
    threshold_pct: float = DEFAULT_IDLE_THRESHOLD_PCT
    max_gap_s: float = DEFAULT_MAX_GAP_S
    foreign_memory_mib: int = FOREIGN_MEMORY_MIB
    tolerance_mib: int = OVER_SHARE_TOLERANCE_MIB

    @property
    def window_s(self) -> float:
        return self.idle_minutes * 60.0


def _names(holders: Iterable[Holder], attr: str) -> tuple[str, ...]:
    return tuple(sorted({getattr(h, attr) for h in holders if getattr(h, attr)}))


def find(gpus: Sequence[GpuNow], window: ReadingWindow, now: float, settings: WatchSettings,
         conflicts: Sequence[Conflict] = ()) -> Findings:
    """Everything wrong with `gpus` now, given the readings `window` has seen (feed it first)."""
    out = Findings(conflicts=list(conflicts))
    threshold = settings.threshold_pct

    def quiet(s: Sample) -> bool:
        return s.utilization_pct < threshold

    def busy(s: Sample) -> bool:
        return s.utilization_pct >= threshold or s.memory_used_mib >= settings.foreign_memory_mib

    for gpu in gpus:
        mine = [h for h in gpu.holders if h.bigk]
        if mine:
            since = window.held_since(gpu.key, now, settings.max_gap_s, quiet)
            if since is not None and now - since >= settings.window_s:
                recent = [s.utilization_pct for s in window.samples(gpu.key) if s.at >= since]
                out.idle.append(IdleGpu(gpu.node, gpu.index, gpu.uuid, gpu.pool, _names(mine, "pod"),
                                        _names(mine, "run"), _names(mine, "job"), _names(mine, "queue"), since,
                                        now - since, sum(recent) / len(recent), tuple(mine)))
        else:
            since = window.held_since(gpu.key, now, settings.max_gap_s, busy)
            if since is not None and now - since >= settings.window_s:
                last = window.samples(gpu.key)[-1]
                out.foreign.append(ForeignBusyGpu(gpu.node, gpu.index, gpu.uuid, gpu.pool, since, now - since,
                                                  last.utilization_pct, last.memory_used_mib,
                                                  _names(gpu.holders, "pod")))
        shares = [h for h in mine if h.share_milli < 1000]
        fresh = gpu.observed_at is not None and now - gpu.observed_at <= settings.max_gap_s
        if shares and len(shares) == len(gpu.holders) and fresh and gpu.memory_free_mib is not None:
            used = max(0.0, gpu.memory_mib - gpu.memory_free_mib)
            allowed = sum(h.memory_mib for h in shares)
            if used > allowed + settings.tolerance_mib:
                out.over_share.append(OverShareGpu(gpu.node, gpu.index, gpu.uuid, gpu.pool, used, allowed,
                                                   _names(shares, "pod"), _names(shares, "run"),
                                                   _names(shares, "job"), _names(shares, "queue")))
    return out
