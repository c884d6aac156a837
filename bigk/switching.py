"""How often CPython hands the interpreter from one thread to another, for `bigk serve`.

`bigk serve` runs its API beside CPU-bound threads (the scheduling loop, the ETA board, the run ticker). A thread
that gives the interpreter up to wait (a socket, each row Python's sqlite3 steps) gets it back only when the
thread holding it is told to let go, after the switch interval: 5 ms by default. Measured with two busy threads
(`sqlite3` fetchall, median / p90): 50 rows 0.1 / 73 ms at 5 ms, 0.1 / 2.5 ms at 1 ms; 5,000 rows 691 / 1,570 ms
at 5 ms, 99 / 199 ms at 1 ms. The busy threads lose a little to the extra hand-overs; the API's reads stop
queueing behind them.
"""

from __future__ import annotations

import sys

SWITCH_INTERVAL_S = 0.001


def favour_waiting_threads() -> None:
    """Hand the interpreter over every millisecond instead of every five."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
