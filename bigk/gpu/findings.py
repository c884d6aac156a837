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

from collections.abc import Iterable, Sequence
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


@dataclass
class _Streak:
    """An unbroken run of readings that all satisfy one condition: since when, and their utilisation sum."""

    since: float
    total_util: float = 0.0
    count: int = 0


@dataclass
class _Track:
    last: Sample
    uuid: str
    quiet: _Streak | None = None
    busy: _Streak | None = None


class ReadingWindow:
    """Per GPU, the latest reading and the current streaks of quiet and of busy readings.

    O(1) per reading and per question, whatever the window's length: a streak starts at the first
    reading that satisfies its condition and ends at one that does not, or at a gap longer than
    `max_gap_s` between readings (a silent agent says nothing about the time in between).
    """

    def __init__(self, settings: WatchSettings) -> None:
        self.settings = settings
        self._tracks: dict[tuple[str, int], _Track] = {}

    def observe(self, gpu: GpuNow) -> None:
        if gpu.observed_at is None or gpu.utilization_pct is None:
            return
        key, at = gpu.key, float(gpu.observed_at)
        used = max(0.0, gpu.memory_mib - gpu.memory_free_mib) if gpu.memory_free_mib is not None else 0.0
        sample = Sample(at, float(gpu.utilization_pct), used)
        track = self._tracks.get(key)
        if track is not None and track.uuid != gpu.uuid:  # another device in that slot: its history is not ours
            track = None
        if track is not None and at <= track.last.at:
            return
        unbroken = track is not None and at - track.last.at <= self.settings.max_gap_s
        quiet = sample.utilization_pct < self.settings.threshold_pct
        busy = not quiet or used >= self.settings.foreign_memory_mib
        new = _Track(sample, gpu.uuid)
        new.quiet = self._extend(track.quiet if unbroken and track else None, quiet, sample)
        new.busy = self._extend(track.busy if unbroken and track else None, busy, sample)
        self._tracks[key] = new

    @staticmethod
    def _extend(streak: _Streak | None, holds: bool, sample: Sample) -> _Streak | None:
        if not holds:
            return None
        streak = streak or _Streak(sample.at)
        return _Streak(streak.since, streak.total_util + sample.utilization_pct, streak.count + 1)

    def forget_except(self, keys: Iterable[tuple[str, int]]) -> None:
        """Drop GPUs that no longer exist (nodes removed)."""
        alive = set(keys)
        for key in [k for k in self._tracks if k not in alive]:
            del self._tracks[key]

    def last(self, key: tuple[str, int]) -> Sample | None:
        track = self._tracks.get(key)
        return track.last if track is not None else None

    def _current(self, key: tuple[str, int], now: float, which: str) -> _Streak | None:
        track = self._tracks.get(key)
        if track is None or now - track.last.at > self.settings.max_gap_s:
            return None  # the last reading is stale: nothing is known about now
        streak: _Streak | None = getattr(track, which)
        return streak

    def quiet_since(self, key: tuple[str, int], now: float) -> tuple[float, float] | None:
        """(since, mean utilisation) of the current run of readings below the threshold, up to a fresh one."""
        streak = self._current(key, now, "quiet")
        return (streak.since, streak.total_util / streak.count) if streak is not None else None

    def busy_since(self, key: tuple[str, int], now: float) -> float | None:
        """Start of the current run of busy readings (at or above the threshold, or memory held), up to now."""
        streak = self._current(key, now, "busy")
        return streak.since if streak is not None else None


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


def find(gpus: Sequence[GpuNow], window: ReadingWindow, now: float, conflicts: Sequence[Conflict] = ()
         ) -> Findings:
    """Everything wrong with `gpus` now, given the readings `window` has seen (feed it first)."""
    out = Findings(conflicts=list(conflicts))
    settings = window.settings
    for gpu in gpus:
        mine = [h for h in gpu.holders if h.bigk]
        if mine:
            quiet = window.quiet_since(gpu.key, now)
            if quiet is not None and now - quiet[0] >= settings.window_s:
                out.idle.append(IdleGpu(gpu.node, gpu.index, gpu.uuid, gpu.pool, _names(mine, "pod"),
                                        _names(mine, "run"), _names(mine, "job"), _names(mine, "queue"), quiet[0],
                                        now - quiet[0], quiet[1], tuple(mine)))
        else:
            since = window.busy_since(gpu.key, now)
            last = window.last(gpu.key)
            if since is not None and last is not None and now - since >= settings.window_s:
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
