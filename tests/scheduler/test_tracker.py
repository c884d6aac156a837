"""`PodTracker` keeps what `group_gangs` would give for every snapshot (hypothesis), from differences only."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from bigk.cluster.model import Gang, Pod, PodRequest, Role
from bigk.scheduler.tracker import PodTracker
from bigk.scheduler.units import group_gangs

REQ = PodRequest(1000, 1024)

# (kind, pod index, gang index): add a pod, bind it (a new object), bind it in place (as the simulators do after
# the scheduler's own bind), remove it, change its gang's info, or pass the same objects again.
op_st = st.tuples(st.sampled_from(["add", "bind", "bind-in-place", "remove", "info", "same"]),
                  st.integers(0, 11), st.integers(0, 3))


def gang_info(g: int, priority: int = 0) -> Gang:
    return Gang(f"g{g}", "default", priority, REQ, REQ, 2)


def make_pod(i: int, g: int) -> Pod:
    if g == 3:  # a lone pod
        return Pod(f"p{i}", REQ)
    role = Role.DRIVER if i % 4 == 0 else Role.EXECUTOR
    return Pod(f"p{i}", REQ, gang=f"g{g}", role=role)


def shape(views: dict, bound: list[Pod], lone: list[Pod]) -> tuple[object, ...]:
    return ({g: ([p.key for p in v.bound], [p.key for p in v.pending], v.driver.key if v.driver else None, v.info)
             for g, v in views.items()}, sorted(p.key for p in bound), sorted(p.key for p in lone))


@settings(max_examples=150, deadline=None)
@given(st.lists(op_st, min_size=1, max_size=40))
def test_the_tracker_groups_as_group_gangs_does(ops: list[tuple[str, int, int]]) -> None:
    pods: dict[str, Pod] = {}
    gangs = {f"g{g}": gang_info(g) for g in range(3)}
    tracker = PodTracker()
    binds: list[str] = []
    for kind, i, g in ops:
        key = f"default/p{i}"
        if kind == "add" and key not in pods:
            pods[key] = make_pod(i, g)
        elif kind == "bind" and key in pods and not pods[key].node:
            pods[key] = replace(pods[key], node="n1")
        elif kind == "bind-in-place" and key in pods and not pods[key].node:
            pods[key].node = "n1"
            binds = [key]
        elif kind == "remove":
            pods.pop(key, None)
        elif kind == "info" and g < 3:
            gangs[f"g{g}"] = gang_info(g, gangs[f"g{g}"].priority + 1)
        snapshot = list(pods.values())
        tracker.update(snapshot, gangs, binds)
        binds = []
        views, bound, lone = group_gangs(snapshot, gangs)
        assert shape(tracker.views, list(tracker.bound.values()), list(tracker.lone.values())) == \
            shape(views, bound, lone)
        assert sorted(tracker.views, key=tracker.first_seen) == list(views)  # gangs as their first pods come
