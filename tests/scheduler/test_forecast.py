"""The forecast: waiting units get a start time, a range, a position and what they wait for."""

from __future__ import annotations

from bigk.cluster.model import PodRequest
from bigk.scheduler import Scheduler, Snapshot
from bigk.scheduler.forecast import Arrival, ForecastInput, Spread, forecast
from tests.scheduler.helpers import executor_pods, gang, gpu_node, pod


def _sched() -> Scheduler:
    return Scheduler("binpack")


def _running_gang(app: str, node: str, gpus: tuple[int, ...], created_at: float = 0.0):
    """A gang whose driver and executors (one GPU each) are bound on `node`."""
    info, driver = gang(app, len(gpus), created_at=created_at)
    driver.node = node
    execs = executor_pods(info, len(gpus), created_at=created_at)
    for e, g in zip(execs, gpus, strict=True):
        e.node, e.gpus = node, (g,)
    return info, [driver, *execs]


def test_waiting_gang_starts_when_the_running_gang_ends_and_names_it() -> None:
    nodes = [gpu_node("gpu-1", gpus=2)]
    running, pods = _running_gang("app-a", "gpu-1", (0, 1))
    waiting, driver = gang("app-b", 2, created_at=10.0)
    snap = Snapshot(nodes, [*pods, driver], gangs={"app-a": running, "app-b": waiting})
    inp = ForecastInput(snap, now=100.0, ends={"app-a": Spread(30.0, 60.0, 120.0)})
    fc = forecast(inp, _sched)
    est = fc.estimates["app-b"]
    assert est.start is not None and abs(est.start - 160.0) <= 2.0
    assert est.low is not None and est.high is not None
    assert est.low <= est.start <= est.high
    assert abs(est.low - 130.0) <= 2.0 and abs(est.high - 220.0) <= 5.0
    assert est.after == ("app-a",)
    assert "2 GPUs (A100) free up on gpu-1" in est.waits_for(100.0)
    assert "after app-a finishes" in est.waits_for(100.0)
    assert est.position == 1 and est.queue_position == 1


def test_a_unit_that_fits_now_starts_now_with_its_placement() -> None:
    nodes = [gpu_node("gpu-1", gpus=4)]
    info, driver = gang("app-c", 2)
    fc = forecast(ForecastInput(Snapshot(nodes, [driver], gangs={"app-c": info}), now=5.0), _sched)
    est = fc.estimates["app-c"]
    assert est.state == "now" and est.start == 5.0 and est.low == 5.0 and est.high == 5.0
    assert est.placement and est.placement[0][0] == "gpu-1"
    assert est.waits_for(5.0).startswith("would start now on gpu-1")


def test_queue_of_three_lone_pods_start_one_after_another() -> None:
    nodes = [gpu_node("gpu-1", gpus=1)]
    busy = pod("busy", gpus=1, on="gpu-1", slots=(0,))
    waiting = [pod(f"w{i}", gpus=1, created_at=float(i)) for i in range(3)]
    inp = ForecastInput(Snapshot(nodes, [busy, *waiting]), now=10.0, ends={"default/busy": Spread.fixed(100.0)},
                        default_duration=Spread(50.0, 100.0, 200.0))
    fc = forecast(inp, _sched)
    starts = [fc.estimates[f"default/w{i}"].start for i in range(3)]
    assert starts[0] is not None and abs(starts[0] - 110.0) <= 3.0
    assert starts[1] is not None and abs(starts[1] - 210.0) <= 6.0
    assert starts[2] is not None and abs(starts[2] - 310.0) <= 9.0
    assert [fc.estimates[f"default/w{i}"].position for i in range(3)] == [1, 2, 3]
    assert fc.estimates["default/w2"].after == ("default/w1",)
    # the range widens with every unit ahead of it
    w = [fc.estimates[f"default/w{i}"] for i in range(3)]
    widths = [e.high - e.low for e in w if e.high is not None and e.low is not None]
    assert widths == sorted(widths) and widths[0] < widths[-1]


def test_a_higher_priority_arrival_jumps_ahead() -> None:
    nodes = [gpu_node("gpu-1", gpus=1)]
    busy = pod("busy", gpus=1, on="gpu-1", slots=(0,))
    low = pod("low", gpus=1, created_at=0.0)
    urgent = pod("urgent", gpus=1, priority=100)
    inp = ForecastInput(Snapshot(nodes, [busy, low]), now=0.0, ends={"default/busy": Spread.fixed(100.0)},
                        arrivals=[Arrival(50.0, "default/urgent", [urgent], runs_for=Spread.fixed(500.0))],
                        default_duration=Spread.fixed(100.0))
    fc = forecast(inp, _sched)
    est = fc.estimates["default/low"]
    # the urgent fire preempts `busy` at 50 s and runs 500 s: `low` starts after it, not at 100 s
    assert est.start is not None and abs(est.start - 550.0) <= 12.0
    assert est.after == ("default/urgent",)


def test_never_fitting_unit_has_no_start() -> None:
    nodes = [gpu_node("gpu-1", gpus=1)]
    huge = pod("huge", gpus=4)
    fc = forecast(ForecastInput(Snapshot(nodes, [huge]), now=0.0), _sched)
    est = fc.estimates["default/huge"]
    assert est.start is None and est.state == "beyond-horizon"
    assert "no start within" in est.waits_for(0.0)


def test_high_priority_unit_reports_what_it_would_preempt() -> None:
    nodes = [gpu_node("gpu-1", gpus=2)]
    running, pods = _running_gang("app-low", "gpu-1", (0, 1))
    urgent, driver = gang("app-urgent", 2, priority=100, created_at=1.0,
                          driver=PodRequest(1000, 2048))
    snap = Snapshot(nodes, [*pods, driver], gangs={"app-low": running, "app-urgent": urgent})
    fc = forecast(ForecastInput(snap, now=10.0, ends={"app-low": Spread.fixed(3600.0)}), _sched)
    est = fc.estimates["app-urgent"]
    assert est.preempts == ("app-low",)
    assert est.start is not None and est.start < 100.0  # not after the victim's natural end
    assert "preempting app-low" in est.waits_for(10.0)


def test_unknown_running_work_keeps_its_room() -> None:
    nodes = [gpu_node("gpu-1", gpus=1)]
    other = pod("not-bigk", gpus=1, on="gpu-1", slots=(0,))
    w = pod("w", gpus=1)
    fc = forecast(ForecastInput(Snapshot(nodes, [other, w]), now=0.0), _sched)
    assert fc.estimates["default/w"].start is None


def test_durations_come_from_history_once_there_is_enough_of_it() -> None:
    from bigk.scheduler.forecast import duration_spread, remaining_spread

    assert duration_spread([], 100.0, 600.0) == Spread(80.0, 100.0, 150.0)  # the spec's expectation
    assert duration_spread([50.0], None, 600.0) == Spread(480.0, 600.0, 900.0)  # too little history: default
    hist = [float(x) for x in range(100, 1100, 100)]  # 100..1000 s
    s = duration_spread(hist, 5.0, 600.0)
    assert s.low == 190.0 and s.mid == 550.0 and s.high == 910.0  # history wins over the spec
    # a run that has lasted 700 s: only the runs that lasted longer count (800, 900, 1000 s)
    r = remaining_spread(hist, 5.0, 600.0, 700.0)
    assert r.low == 120.0 and r.mid == 200.0 and r.high == 280.0
    # longer than any past run: the history says nothing; it runs about as long again
    late = remaining_spread(hist, 5.0, 600.0, 5000.0)
    assert late.low == 1250.0 and late.mid == 5000.0 and late.high == 20000.0


def test_all_jobs_durations_stand_in_for_a_job_without_history_or_expectation() -> None:
    from bigk.scheduler.forecast import MIN_POOLED, duration_spread, remaining_spread

    pooled = [10.0] * MIN_POOLED
    assert duration_spread([], None, 600.0, pooled) == Spread(10.0, 10.0, 10.0)
    assert duration_spread([], 100.0, 600.0, pooled) == Spread(80.0, 100.0, 150.0)  # the spec's word first
    assert duration_spread([], None, 600.0, pooled[:-1]) == Spread(480.0, 600.0, 900.0)  # too few: default
    assert remaining_spread([], None, 600.0, 4.0, pooled) == Spread(6.0, 6.0, 6.0)


def test_beyond_the_budget_the_tail_estimates_the_same_starts_on_a_plain_queue() -> None:
    """Past its budget the forecast stops cycling the scheduler and takes the waiting units in queue order on the
    fit rule's accounting: on a queue of one shape it gives the starts the scheduler's own cycles give."""
    nodes = [gpu_node("gpu-1", gpus=2), gpu_node("gpu-2", gpus=2)]
    busy = [pod(f"busy{i}", gpus=1, on=f"gpu-{1 + i // 2}", slots=(i % 2,)) for i in range(4)]
    waiting = [pod(f"w{i}", gpus=1, created_at=float(i)) for i in range(7)]
    ends = {f"default/busy{i}": Spread.fixed(100.0 * (i + 1)) for i in range(4)}

    def run(budget: float):
        inp = ForecastInput(Snapshot(nodes, [*busy, *waiting]), now=10.0, ends=dict(ends),
                            default_duration=Spread(50.0, 250.0, 400.0))
        return forecast(inp, _sched, budget_pod_cycles=budget)

    exact, cheap = run(float("inf")), run(1)
    assert exact.tail == 0 and cheap.tail == 7 and cheap.cycles == 1 < exact.cycles
    for i in range(7):
        e, c = exact.estimates[f"default/w{i}"], cheap.estimates[f"default/w{i}"]
        assert e.method == "cycle" and c.method == "tail"
        assert e.start is not None and c.start == e.start, (i, e.start, c.start)
        assert c.low is not None and c.high is not None and c.low <= c.start <= c.high
    assert [cheap.estimates[f"default/w{i}"].start for i in range(4)] == [110.0, 210.0, 310.0, 360.0]  # w0 ends at 360
    assert "free" in cheap.estimates["default/w0"].waits_for(10.0)


def test_the_tail_starts_a_gang_only_when_driver_and_executors_all_fit() -> None:
    nodes = [gpu_node("gpu-1", gpus=2), gpu_node("gpu-2", gpus=2)]
    busy = [pod(f"busy{i}", gpus=1, on=f"gpu-{1 + i // 2}", slots=(i % 2,)) for i in range(4)]
    info, driver = gang("app-g", 3, created_at=1.0)  # three one-GPU executors
    ends = {f"default/busy{i}": Spread.fixed(100.0 * (i + 1)) for i in range(4)}
    inp = ForecastInput(Snapshot(nodes, [*busy, driver], gangs={"app-g": info}), now=10.0, ends=ends)
    exact = forecast(inp, _sched, budget_pod_cycles=float("inf")).estimates["app-g"]
    cheap = forecast(inp, _sched, budget_pod_cycles=1).estimates["app-g"]
    assert cheap.method == "tail" and cheap.start == exact.start
    assert exact.start is not None and abs(exact.start - 310.0) <= 1.0  # three GPUs free once busy2 ends
    assert sum(len(g) for _, g in cheap.placement) == 3


def test_runs_still_going_lengthen_a_history_of_short_finished_runs() -> None:
    """Early in a history only the short runs have finished; the survival curve counts the long ones still going."""
    from bigk.scheduler.forecast import Survival, duration_spread, remaining_spread

    finished = [60.0, 80.0, 100.0, 120.0]  # the quick ones, done
    going = [900.0] * 6  # six more have run 900 s and go on
    naive = duration_spread(finished, None, 600.0)
    counted = duration_spread(finished, None, 600.0, running=going)
    assert naive.mid <= 120.0 < 900.0 <= counted.mid  # most runs last longer than 900 s, not ~90 s
    # a run at 900 s: past the longest seen, the Pareto tail says about as long again at the median
    later = remaining_spread(finished, None, 600.0, 900.0, running=going)
    assert abs(later.mid - 900.0) <= 1.0 and later.low < later.mid < later.high
    # no run going: the curve is the finished durations' own (Kaplan-Meier without censoring)
    plain = Survival([100.0, 200.0, 300.0, 400.0, 500.0])
    assert plain.remaining(0.0).mid == 300.0 and plain.remaining(250.0).mid == 150.0


def test_drawn_durations_start_the_first_of_many_waiting_units_before_the_median_end() -> None:
    """Eight one-GPU pods run for 100 s (p10..p90 50..200 s): the first waiting pod starts when the first of
    them ends, well before 100 s; with one draw per unit (the median) all eight would end at 100 s."""
    nodes = [gpu_node("gpu-1", gpus=8)]
    busy = [pod(f"busy{i}", gpus=1, on="gpu-1", slots=(i,)) for i in range(8)]
    w = pod("w", gpus=1, created_at=1.0)
    ends = {f"default/busy{i}": Spread(50.0, 100.0, 200.0) for i in range(8)}

    def estimate(draws: str, runs: int):
        inp = ForecastInput(Snapshot(nodes, [*busy, w]), now=0.0, ends=dict(ends), draws=draws)
        return forecast(inp, _sched, runs=runs).estimates["default/w"]

    median = estimate("median", 1)
    drawn = estimate("spread", 5)
    assert median.start == 100.0
    assert drawn.start is not None and drawn.start < 80.0
    assert drawn.low is not None and drawn.high is not None and drawn.low <= drawn.start <= drawn.high


def test_with_one_blocker_the_drawn_runs_give_its_median_and_p10_p90() -> None:
    nodes = [gpu_node("gpu-1", gpus=2)]
    running, pods = _running_gang("app-a", "gpu-1", (0, 1))
    waiting, driver = gang("app-b", 2, created_at=10.0)
    snap = Snapshot(nodes, [*pods, driver], gangs={"app-a": running, "app-b": waiting})
    inp = ForecastInput(snap, now=100.0, ends={"app-a": Spread(30.0, 60.0, 120.0)}, draws="spread")
    est = forecast(inp, _sched, runs=5).estimates["app-b"]
    assert est.start is not None and abs(est.start - 160.0) <= 1.0
    assert est.low is not None and est.high is not None
    assert abs(est.low - 130.0) <= 1.0 and abs(est.high - 220.0) <= 1.0
    assert est.after == ("app-a",)


def test_an_admitted_gang_whose_executors_are_not_created_yet_keeps_their_room() -> None:
    """The live scheduler reserved the executors of a gang it admitted until Spark creates them; a gang created
    earlier (pod times have whole seconds) still waits for that room, not "now" (a fresh scheduler took waiting
    gangs first in queue order, and the board said "now" until the executors appeared)."""
    nodes = [gpu_node("gpu-1", gpus=2)]
    admitted, running_driver = gang("app-a", 2, created_at=10.0)
    running_driver.node = "gpu-1"  # bound; its two executors are not created yet
    waiting, driver = gang("app-b", 2, created_at=9.0)
    snap = Snapshot(nodes, [running_driver, driver], gangs={"app-a": admitted, "app-b": waiting})
    fc = forecast(ForecastInput(snap, now=100.0, ends={"app-a": Spread(30.0, 60.0, 120.0)}), _sched)
    est = fc.estimates["app-b"]
    assert est.state != "now" and est.start is not None and abs(est.start - 160.0) <= 2.0
    assert est.after == ("app-a",)
