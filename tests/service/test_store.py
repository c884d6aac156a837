"""The store keeps runs, enforces the state machine and never records a fire time twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from bigk.service.runstate import InvalidTransition, RunState
from bigk.service.store import Store, UnknownRun, default_database_url


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    return Store(default_database_url(tmp_path))


def test_run_walks_the_state_machine_and_records_timestamps(store: Store) -> None:
    run = store.create_run("etl", now=100.0, queue="batch", trigger="schedule", fire_time=60.0)
    assert run is not None and run.state is RunState.PENDING and run.created_at == 100.0
    store.transition(run.id, RunState.SUBMITTED, now=101.0, driver_pod=f"etl-{run.id}-driver")
    store.transition(run.id, RunState.ADMITTED, now=103.0)
    store.transition(run.id, RunState.RUNNING, now=104.0)
    done = store.transition(run.id, RunState.SUCCEEDED, now=110.0, pods=[{"name": "p", "node": "n"}])
    assert (done.submitted_at, done.admitted_at, done.running_at, done.finished_at) == (101.0, 103.0, 104.0, 110.0)
    assert done.pods == [{"name": "p", "node": "n"}]
    with pytest.raises(InvalidTransition):
        store.transition(run.id, RunState.RUNNING, now=111.0)
    assert store.get_run(run.id).state is RunState.SUCCEEDED
    [hist] = store.history("etl")
    assert hist["state"] == "Succeeded" and hist["finished_at"] == 110.0


def test_same_fire_time_is_recorded_once_even_across_store_instances(tmp_path: Path) -> None:
    url = default_database_url(tmp_path)
    first = Store(url).create_run("etl", now=1.0, trigger="schedule", fire_time=60.0)
    again = Store(url).create_run("etl", now=2.0, trigger="schedule", fire_time=60.0)
    retry = Store(url).create_run("etl", now=3.0, trigger="retry", fire_time=60.0, attempt=2)
    assert first is not None and again is None and retry is not None
    assert len(Store(url).list_runs("etl")) == 2


def test_manual_runs_are_never_deduplicated(store: Store) -> None:
    a = store.create_run("adhoc", now=1.0)
    b = store.create_run("adhoc", now=1.0)
    assert a is not None and b is not None and a.id != b.id


def test_prune_keeps_the_newest_runs_per_limit_and_keeps_history(store: Store) -> None:
    ids = []
    for i in range(5):
        run = store.create_run("etl", now=float(i))
        assert run is not None
        final = RunState.SUCCEEDED if i % 2 == 0 else RunState.FAILED
        store.transition(run.id, final, now=10.0 + i)
        ids.append(run.id)
    removed = store.prune("etl", succeeded_limit=1, failed_limit=1)
    assert sorted(r.id for r in removed) == sorted([ids[0], ids[2], ids[1]])
    assert sorted(r.id for r in store.list_runs("etl")) == sorted([ids[4], ids[3]])
    assert len(store.history("etl")) == 5


def test_unknown_run_is_a_not_found_error(store: Store) -> None:
    with pytest.raises(UnknownRun) as err:
        store.get_run("nope")
    assert err.value.exit_code == 3


def test_suspend_overrides_persist(tmp_path: Path) -> None:
    url = default_database_url(tmp_path)
    Store(url).set_suspended("etl", True, now=1.0)
    assert Store(url).suspended_overrides() == {"etl": True}
    Store(url).clear_override("etl")
    assert Store(url).suspended_overrides() == {}


def test_old_events_are_pruned(store: Store) -> None:
    store.add_event("fired", "old", now=10.0, job="etl")
    store.add_event("fired", "new", now=100.0, job="etl")
    assert store.prune_events(before=50.0) == 1
    assert [e.message for e in store.events(job="etl")] == ["new"]


def test_many_runs_move_in_one_transaction_each_with_its_event_and_history(store: Store) -> None:
    runs = [store.create_run("etl", now=100.0 + i) for i in range(3)]
    assert all(r is not None for r in runs)
    ids = [r.id for r in runs if r is not None]
    store.transition(ids[0], RunState.SUBMITTED, now=101.0)
    done = store.transition_many(ids, RunState.CANCELLED, now=120.0, event="stopping", reason="stopping")
    assert [r.state for r in done] == [RunState.CANCELLED] * 3 and {r.finished_at for r in done} == {120.0}
    assert {r.id: r.reason for r in store.list_runs()} == dict.fromkeys(ids, "stopping")
    messages = sorted(e.message for e in store.events(kind="run"))
    assert messages == ["Pending -> Cancelled: stopping", "Pending -> Cancelled: stopping",
                        "Submitted -> Cancelled: stopping"]
    assert len(store.history("etl")) == 3
    with pytest.raises(InvalidTransition):  # a run that cannot move: nothing of the batch is written
        store.transition_many([store.create_run("etl", now=130.0).id, ids[0]],  # type: ignore[union-attr]
                              RunState.CANCELLED, now=131.0)
    assert [r.state for r in store.list_runs(states=[RunState.PENDING])] == [RunState.PENDING]


def test_a_database_from_before_the_created_at_index_gets_it_and_reads_run_beside_a_writer(tmp_path: Path) -> None:
    """`get runs` lists the newest first: an older database gains the index when opened; and reads of runs do not
    wait for the writers' lock (WAL lets them run beside the writer)."""
    import threading

    from sqlalchemy import inspect, text

    url = default_database_url(tmp_path)
    first = Store(url)
    run = first.create_run("a", now=1.0)
    assert run is not None
    with first.engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_bigk_runs_created_at"))
    assert "ix_bigk_runs_created_at" not in {i["name"] for i in inspect(first.engine).get_indexes("bigk_runs")}
    first.close()
    again = Store(url)
    assert "ix_bigk_runs_created_at" in {i["name"] for i in inspect(again.engine).get_indexes("bigk_runs")}
    read: list[str] = []
    with again._lock:  # a writer holds the lock: a read from another thread still answers
        reader = threading.Thread(target=lambda: read.extend(r.id for r in again.list_runs()))
        reader.start()
        reader.join(5)
    assert read == [run.id]


def test_many_runs_change_fields_in_one_transaction(store: Store) -> None:
    a = store.create_run("a", now=1.0)
    b = store.create_run("b", now=2.0)
    assert a is not None and b is not None
    store.update_runs({a.id: {"explanation": "waits for 8 GPUs", "pods": [{"name": "d", "node": "", "role": "driver",
                                                                             "phase": "Pending"}]},
                       b.id: {"dispatch_reason": "held"}, "gone1234": {"explanation": "x"}})
    got_a, got_b = store.get_run(a.id), store.get_run(b.id)
    assert got_a.explanation == "waits for 8 GPUs" and got_a.pods[0]["name"] == "d" and got_a.dispatch_reason == ""
    assert got_b.dispatch_reason == "held" and got_b.explanation == "" and got_b.state is RunState.PENDING
    with pytest.raises(ValueError, match="'state' cannot be set"):
        store.update_runs({a.id: {"state": "Running"}})


def test_waiting_order_is_oldest_first_then_by_id(store: Store) -> None:
    """The queue views' order: created_at, then id (many runs share a created_at here)."""
    import random

    rng = random.Random(7)
    made = []
    for i in range(300):
        run = store.create_run(f"job-{i % 7}", now=1_764_780_000.0 + rng.choice([0.0, 0.000001, 1.5, 3.25]) + i % 11)
        assert run is not None
        made.append(run)
    for run in made[::5]:
        store.transition(run.id, RunState.CANCELLED, now=1.0)
    expected = sorted(((r.created_at, r.id), r.job) for r in made if r not in made[::5])
    assert store.waiting_order([RunState.PENDING]) == [(key[1], job) for key, job in expected]
    assert store.waiting_order([RunState.RUNNING]) == []


def test_active_runs_are_read_again_after_any_change_to_a_run_and_only_then(store: Store) -> None:
    """On SQLite the active runs are kept between reads and listed again only when a run changed (triggers count
    every insert, update and delete, whichever call or connection makes it): each kind of change shows at once."""
    from sqlalchemy import text

    a = store.create_run("job-a", now=1.0)
    b = store.create_run("job-b", now=2.0)
    assert a is not None and b is not None
    assert [r.id for r in store.active_runs()] == [b.id, a.id]
    first = store.active_runs()
    assert store.active_runs()[0] is first[0]  # nothing changed: the same records
    store.add_event("run", "not a run change", now=2.5)
    assert store.active_runs()[0] is first[0]
    store.transition(a.id, RunState.SUBMITTED, now=3.0)
    assert {r.id: r.state for r in store.active_runs()}[a.id] is RunState.SUBMITTED
    assert store.active_runs()[0] is not first[0]
    store.update_runs({b.id: {"explanation": "waits for 8 GPUs"}})
    assert {r.id: r.explanation for r in store.active_runs()}[b.id] == "waits for 8 GPUs"
    assert [r.id for r in store.active_runs("job-a")] == [a.id]
    store.transition(a.id, RunState.CANCELLED, now=4.0)
    assert [r.id for r in store.active_runs()] == [b.id]
    with store.engine.begin() as conn:  # a write that is none of the Store's calls (another process, by hand)
        conn.execute(text("UPDATE bigk_runs SET queue = 'other' WHERE id = :i"), {"i": b.id})
    assert store.active_runs()[0].queue == "other"
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM bigk_runs WHERE id = :i"), {"i": b.id})
    assert store.active_runs() == []


def test_reads_of_active_states_from_the_kept_runs_equal_reads_of_the_table(tmp_path: Path) -> None:
    """Listings, the waiting order, chosen fields and counts of active states come from the kept active runs on
    SQLite: the same answers as the table gives (another Store on the same file, reading the table)."""
    import random

    url = default_database_url(tmp_path)
    kept, table = Store(url), Store(url)
    table._versioned = False
    rng = random.Random(5)
    for i in range(120):
        run = kept.create_run(f"job-{i % 4}", now=float(rng.randrange(40)), queue=f"q{i % 3}")
        assert run is not None
        step = i % 5
        if step >= 1:
            kept.transition(run.id, RunState.SUBMITTED, now=50.0)
        if step >= 2:
            kept.transition(run.id, RunState.ADMITTED, now=51.0)
        if step >= 3:
            kept.transition(run.id, RunState.RUNNING, now=52.0)
        if step == 4:
            kept.transition(run.id, RunState.SUCCEEDED, now=53.0)
    waiting = [RunState.PENDING, RunState.SUBMITTED, RunState.ADMITTED]
    for states in (waiting, [RunState.SUBMITTED], [RunState.RUNNING, *waiting]):
        assert kept.list_runs(states=states) == table.list_runs(states=states)
        assert kept.list_runs("job-1", states=states, limit=7) == table.list_runs("job-1", states=states, limit=7)
        assert kept.waiting_order(states) == table.waiting_order(states)
        assert sorted(kept.run_fields(states, "id", "job", "queue")) == \
            sorted(table.run_fields(states, "id", "job", "queue"))
        assert sorted(kept.run_counts(states)) == sorted(table.run_counts(states))
    assert kept.list_runs(states=[RunState.SUCCEEDED]) == table.list_runs(states=[RunState.SUCCEEDED])


def test_get_runs_reads_active_runs_as_kept_and_others_from_the_table(store: Store) -> None:
    a, b = store.create_run("job-a", now=1.0), store.create_run("job-b", now=2.0)
    assert a is not None and b is not None
    store.transition(b.id, RunState.CANCELLED, now=3.0)
    got = {r.id: r for r in store.get_runs([a.id, b.id, "no-such-run"])}
    assert set(got) == {a.id, b.id} and got[b.id].state is RunState.CANCELLED
    store.transition(a.id, RunState.SUBMITTED, now=4.0)
    assert store.get_runs([a.id])[0].state is RunState.SUBMITTED
