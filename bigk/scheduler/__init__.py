"""The pure scheduling core: snapshot in, decisions out (see `Scheduler.cycle`)."""

from bigk.scheduler.core import Scheduler
from bigk.scheduler.types import Bind, CycleResult, Eviction, Explanation, ReservedSlot, Snapshot

__all__ = ["Bind", "CycleResult", "Eviction", "Explanation", "ReservedSlot", "Scheduler", "Snapshot"]
