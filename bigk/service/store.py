"""Durable service state: runs, suspend overrides, events and finished-run history.

SQLite under the state directory by default, PostgreSQL when a database URL is
given; both through SQLAlchemy 2. Each method is one short transaction, so a
`kill -9` at any moment leaves the last committed state, and the service rebuilds
from it. Scheduled runs carry an idempotency key (job, fire time, attempt): a
fire time that APScheduler replays after a crash cannot create a second run.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    Float,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from bigk.errors import BigkError, Conflict, NotFound
from bigk.service.runstate import ACTIVE, TERMINAL, TIMESTAMP_FIELD, RunState, check_transition


class StoreError(BigkError):
    """The state database cannot be opened or used."""


class UnknownRun(NotFound):
    pass


class _Base(DeclarativeBase):
    pass


class _Run(_Base):
    __tablename__ = "bigk_runs"
    __table_args__ = (UniqueConstraint("job", "fire_time", "attempt", name="uq_run_fire"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    job: Mapped[str] = mapped_column(String(253), index=True)
    queue: Mapped[str] = mapped_column(String(253), default="default")
    namespace: Mapped[str] = mapped_column(String(253), default="default")
    state: Mapped[str] = mapped_column(String(16), index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    retry_of: Mapped[str | None] = mapped_column(String(32), nullable=True)
    trigger: Mapped[str] = mapped_column(String(16), default="manual")  # schedule | manual | retry
    fire_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    not_before: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, index=True)  # `get runs` lists the newest first
    submitted_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    admitted_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    running_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    driver_pod: Mapped[str] = mapped_column(String(253), default="")
    pods: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of {name, node, role, phase}
    reason: Mapped[str] = mapped_column(Text, default="")
    explanation: Mapped[str] = mapped_column(Text, default="")
    spark_app_id: Mapped[str] = mapped_column(String(253), default="")
    # Added with several clusters (issue 18); `_migrate` adds them to a database made before.
    cluster: Mapped[str] = mapped_column(String(63), default="")  # where the run was submitted ('' not yet)
    dispatch_reason: Mapped[str] = mapped_column(Text, default="")  # the dispatcher's Dispatch.message()
    unknown_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # when its cluster was last lost


class _ClusterCordon(_Base):
    """An operator's `bigk cordon --cluster NAME` (or uncordon): wins over the clusters file's `cordoned`."""

    __tablename__ = "bigk_cluster_cordons"

    cluster: Mapped[str] = mapped_column(String(63), primary_key=True)
    cordoned: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[float] = mapped_column(Float)


class _Lease(_Base):
    """A leader lease kept in the state database (`bigk.service.store_lease`): with several clusters the service's
    leadership may not live in one of them. `version` is bumped by every write, as a resourceVersion is."""

    __tablename__ = "bigk_leases"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    holder: Mapped[str] = mapped_column(String(253), default="")
    duration_s: Mapped[float] = mapped_column(Float)
    acquired_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    renewed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    transitions: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)


@dataclass(frozen=True)
class LeaseRecord:
    """One lease row: who holds it, for how long, and the version a conditional write must name."""

    name: str
    holder: str
    duration_s: float
    acquired_at: float | None
    renewed_at: float | None
    transitions: int
    version: int = 0


def _lease(row: _Lease) -> LeaseRecord:
    return LeaseRecord(row.name, row.holder, row.duration_s, row.acquired_at, row.renewed_at, row.transitions,
                       row.version)


# Columns added to existing tables after their first release: (table, column, SQL type and default). `Store` adds
# any that an older database lacks, so a state directory made by an older bigk opens unchanged.
_ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("bigk_runs", "cluster", "VARCHAR(63) NOT NULL DEFAULT ''"),
    ("bigk_runs", "dispatch_reason", "TEXT NOT NULL DEFAULT ''"),
    ("bigk_runs", "unknown_at", "FLOAT"),
)


class _JobOverride(_Base):
    __tablename__ = "bigk_job_overrides"

    job: Mapped[str] = mapped_column(String(253), primary_key=True)
    suspended: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[float] = mapped_column(Float)


class _FireMark(_Base):
    """The last fire time cron handled per job (fired, skipped or missed): how coalesced fires are counted."""

    __tablename__ = "bigk_fire_marks"

    job: Mapped[str] = mapped_column(String(253), primary_key=True)
    fire_time: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class _Event(_Base):
    __tablename__ = "bigk_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    job: Mapped[str] = mapped_column(String(253), default="", index=True)
    run_id: Mapped[str] = mapped_column(String(32), default="")
    message: Mapped[str] = mapped_column(Text, default="")


class _History(_Base):
    """One row per finished run; kept when the run itself is pruned by history limits."""

    __tablename__ = "bigk_history"

    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    job: Mapped[str] = mapped_column(String(253), index=True)
    state: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(16))
    fire_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    submitted_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    admitted_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    running_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text, default="")


@dataclass(frozen=True)
class RunRecord:
    """A detached copy of one run row (safe to pass between threads; frozen: the active runs' records are shared
    by every reader until a run changes, `Store.active_runs`)."""

    id: str
    job: str
    state: RunState
    attempt: int
    created_at: float
    queue: str = "default"
    namespace: str = "default"
    retry_of: str | None = None
    trigger: str = "manual"
    fire_time: float | None = None
    not_before: float | None = None
    submitted_at: float | None = None
    admitted_at: float | None = None
    running_at: float | None = None
    finished_at: float | None = None
    driver_pod: str = ""
    pods: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""
    explanation: str = ""
    spark_app_id: str = ""
    cluster: str = ""  # the cluster it was submitted to ('' before; `default` with one cluster)
    dispatch_reason: str = ""  # why that cluster (and why not each other), or why it is held
    unknown_at: float | None = None  # when its cluster was last found unreachable (state Unknown)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["state"] = str(self.state)
        return out


@dataclass
class EventRecord:
    id: int
    at: float
    kind: str
    job: str
    run_id: str
    message: str


def _transition(session: Session, run_id: str, new: RunState, now: float, fields: dict[str, Any]
                ) -> tuple[RunState, RunRecord]:
    """One run's validated move to `new` inside `session` (the one rule of `Store.transition`): the state it
    left, and the run now."""
    row = session.get(_Run, run_id, with_for_update=True)
    if row is None:
        raise UnknownRun(f"no run {run_id!r}")
    old = RunState(row.state)
    check_transition(run_id, old, new)
    row.state = str(new)
    if new is RunState.PENDING:  # back from Unknown, to be dispatched again: it was never submitted anywhere
        row.submitted_at = None
    elif old is not RunState.UNKNOWN or getattr(row, TIMESTAMP_FIELD[new]) is None:
        setattr(row, TIMESTAMP_FIELD[new], now)  # back from Unknown: the state's first time stays
    _apply(row, fields)
    if new in TERMINAL:
        session.merge(_History(
            run_id=row.id, job=row.job, state=row.state, attempt=row.attempt, trigger=row.trigger,
            fire_time=row.fire_time, created_at=row.created_at, submitted_at=row.submitted_at,
            admitted_at=row.admitted_at, running_at=row.running_at, finished_at=now, reason=row.reason))
    return old, _record(row)


_RUN_COLUMNS = tuple(_Run.__table__.columns)
_RUN_NAMES = tuple(c.key for c in _RUN_COLUMNS)


def _record(row: _Run | tuple[Any, ...]) -> RunRecord:
    """A run row (a mapped `_Run`, or a plain row of `_RUN_COLUMNS`) as a detached record."""
    v = dict(zip(_RUN_NAMES, row, strict=True)) if isinstance(row, tuple) else \
        {name: getattr(row, name) for name in _RUN_NAMES}
    pods = v["pods"]
    return RunRecord(
        id=v["id"], job=v["job"], state=RunState(v["state"]), attempt=v["attempt"], created_at=v["created_at"],
        queue=v["queue"], namespace=v["namespace"], retry_of=v["retry_of"], trigger=v["trigger"],
        fire_time=v["fire_time"], not_before=v["not_before"], submitted_at=v["submitted_at"],
        admitted_at=v["admitted_at"], running_at=v["running_at"], finished_at=v["finished_at"],
        driver_pod=v["driver_pod"], pods=json.loads(pods) if pods and pods != "[]" else [], reason=v["reason"],
        explanation=v["explanation"], spark_app_id=v["spark_app_id"], cluster=v["cluster"] or "",
        dispatch_reason=v["dispatch_reason"] or "", unknown_at=v["unknown_at"],
    )


def default_database_url(state_dir: Path) -> str:
    return f"sqlite:///{(state_dir / 'bigk.db').resolve()}"


def new_run_id() -> str:
    """Eight lowercase hex characters: short enough for pod names, valid as a label value."""
    return secrets.token_hex(4)


class Store:
    """All reads and writes of service state. Thread-safe; every call is its own transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine: Engine = _make_engine(url)
            _Base.metadata.create_all(self.engine)
            _migrate(self.engine)
        except Exception as exc:  # SQLAlchemy raises many types; the user needs one line
            raise StoreError(f"cannot open state database {_redact(url)}: {exc}") from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._lock = threading.RLock()
        # An in-memory SQLite database is one connection for everyone: its reads take the lock too.
        self._one_connection = url in ("sqlite://", "sqlite:///:memory:")
        self._versioned = self.engine.dialect.name == "sqlite"
        if self._versioned:
            _count_run_changes(self.engine)
        self._active: tuple[int, list[RunRecord]] | None = None  # (runs version, the active runs then)
        self._by_id: tuple[object, dict[str, RunRecord]] | None = None  # (the `_active` it indexes, runs by id)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._lock, self._sessions.begin() as session:
            yield session

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A connection for reads of runs. Not under the writers' lock: each thread has its own pooled connection,
        and SQLite in WAL mode (as PostgreSQL) lets readers run beside the writer. Under the lock, every API read
        waited behind the run ticker's listing of thousands of active runs."""
        if self._one_connection:
            with self._lock, self.engine.connect() as conn:
                yield conn
        else:
            with self.engine.connect() as conn:
                yield conn

    def close(self) -> None:
        self.engine.dispose()

    # ---- runs ----------------------------------------------------------------------------

    def create_run(self, job: str, *, now: float, queue: str = "default", namespace: str = "default",
                   trigger: str = "manual", fire_time: float | None = None, attempt: int = 1,
                   retry_of: str | None = None, not_before: float | None = None) -> RunRecord | None:
        """Record a new Pending run; None when (job, fire_time, attempt) already exists."""
        for _ in range(5):
            row = _Run(id=new_run_id(), job=job, queue=queue, namespace=namespace, state=str(RunState.PENDING),
                       attempt=attempt, retry_of=retry_of, trigger=trigger, fire_time=fire_time,
                       not_before=not_before, created_at=now, pods="[]", driver_pod="", reason="",
                       explanation="", spark_app_id="", cluster="", dispatch_reason="")
            try:
                with self._session() as session:
                    if fire_time is not None:
                        dup = session.scalar(select(_Run.id).where(
                            _Run.job == job, _Run.fire_time == fire_time, _Run.attempt == attempt))
                        if dup is not None:
                            return None
                    session.add(row)
                return _record(row)
            except IntegrityError:
                if fire_time is not None and self._fire_exists(job, fire_time, attempt):
                    return None
                continue  # run id collision: draw another
        raise StoreError("could not allocate a unique run id")

    def _fire_exists(self, job: str, fire_time: float, attempt: int) -> bool:
        with self._session() as session:
            return session.scalar(select(_Run.id).where(
                _Run.job == job, _Run.fire_time == fire_time, _Run.attempt == attempt)) is not None

    def get_run(self, run_id: str) -> RunRecord:
        found = self.find_run(run_id)
        if found is None:
            raise UnknownRun(f"no run {run_id!r} (list them with `bigk get runs`)")
        return found

    def find_run(self, run_id: str) -> RunRecord | None:
        with self._reading() as conn:
            row = conn.execute(select(*_RUN_COLUMNS).where(_Run.id == run_id)).first()
        return _record(tuple(row)) if row is not None else None

    def list_runs(self, job: str | None = None, states: Iterable[RunState] | None = None,
                  limit: int | None = None) -> list[RunRecord]:
        """Runs newest first."""
        # Plain rows, not ORM objects: the service lists every active run several times a tick (the ticker, the
        # dispatcher, the ETA board, queue views), and mapped objects cost ~4x as much to load.
        cached = self._active_in(states)
        if cached is not None:
            runs = [r for r in cached if r.job == job] if job is not None else cached
            return runs[:limit] if limit is not None else runs
        stmt = select(*_RUN_COLUMNS).order_by(_Run.created_at.desc(), _Run.id)
        if job is not None:
            stmt = stmt.where(_Run.job == job)
        if states is not None:
            stmt = stmt.where(_Run.state.in_([str(s) for s in states]))
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._reading() as conn:
            return [_record(tuple(r)) for r in conn.execute(stmt).all()]

    def get_runs(self, run_ids: list[str]) -> list[RunRecord]:
        """The runs of `run_ids` that exist, in no particular order: active ones from the kept active runs (on
        SQLite), the others read in one query."""
        out: list[RunRecord] = []
        if self._versioned and run_ids:
            active = self._active_by_id()
            out = [active[i] for i in run_ids if i in active]
            run_ids = [i for i in run_ids if i not in active]
        if not run_ids:
            return out
        with self._reading() as conn:
            for at in range(0, len(run_ids), 500):  # bounded IN lists (SQLite limits bound parameters)
                stmt = select(*_RUN_COLUMNS).where(_Run.id.in_(run_ids[at:at + 500]))
                out.extend(_record(tuple(r)) for r in conn.execute(stmt).all())
        return out

    def waiting_order(self, states: Iterable[RunState]) -> list[tuple[str, str]]:
        """(id, job) of the runs in `states`, oldest first (ties by id): the queue views' order before priority.
        Active states on SQLite come from the kept active runs (`active_runs`), as every other read of them."""
        states = list(states)
        cached = self._active_in(states)
        if cached is not None:
            return [(r.id, r.job) for r in sorted(cached, key=lambda r: (r.created_at, r.id))]
        ordered = (select(_Run.id, _Run.job).where(_Run.state.in_([str(s) for s in states]))
                   .order_by(_Run.created_at, _Run.id))
        with self._reading() as conn:
            return [(i, j) for i, j in conn.execute(ordered).all()]

    def run_fields(self, states: Iterable[RunState], *fields: str) -> list[tuple[Any, ...]]:
        """Only `fields` (column names) of the runs in `states`: for views that need a few columns of every run
        (a queue's waiting gangs, which runs wait), without building whole records."""
        states = list(states)
        cached = self._active_in(states)
        if cached is not None:
            return [tuple(getattr(r, f) for f in fields) for r in cached]
        columns = [getattr(_Run, f) for f in fields]
        stmt = select(*columns).where(_Run.state.in_([str(s) for s in states]))
        with self._reading() as conn:
            return [tuple(r) for r in conn.execute(stmt).all()]

    def run_counts(self, states: Iterable[RunState]) -> list[tuple[str, str, RunState, int]]:
        """(queue, cluster, state, runs) for the runs in `states`: what the queue tree counts, one grouped query."""
        states = list(states)
        cached = self._active_in(states)
        if cached is not None:
            counts: dict[tuple[str, str, RunState], int] = {}
            for r in cached:
                key = (r.queue, r.cluster, r.state)
                counts[key] = counts.get(key, 0) + 1
            return [(q, c, st, n) for (q, c, st), n in counts.items()]
        stmt = (select(_Run.queue, _Run.cluster, _Run.state, func.count())
                .where(_Run.state.in_([str(s) for s in states])).group_by(_Run.queue, _Run.cluster, _Run.state))
        with self._reading() as conn:
            return [(q, c or "", RunState(st), n) for q, c, st, n in conn.execute(stmt).all()]

    def _active_in(self, states: Iterable[RunState] | None) -> list[RunRecord] | None:
        """The kept active runs in `states` (newest first), when they can answer a read of those states: on SQLite,
        for states that are all active; else None (read the table)."""
        if not self._versioned or states is None:
            return None
        wanted = set(states)
        if not wanted <= ACTIVE:
            return None
        runs = self.active_runs()
        return runs if wanted >= ACTIVE else [r for r in runs if r.state in wanted]

    def _active_by_id(self) -> dict[str, RunRecord]:
        """The kept active runs by id (built once per version of them)."""
        active = self._kept_active()
        kept = self._by_id
        if kept is None or kept[0] is not active:
            kept = active, {r.id: r for r in active[1]}
            self._by_id = kept
        return kept[1]

    def active_runs(self, job: str | None = None) -> list[RunRecord]:
        """The active runs, newest first. On SQLite they are read again only when a run changed since the last
        read (a trigger counts every insert, update and delete of a run, whoever makes it): the run ticker, the
        ETA board and the queue views read them every second or more often, and Python's sqlite3 gives up the
        interpreter at every row it steps, so with other threads busy each row waited to get it back (5,000
        rows: a quarter to most of a second, 7 ms on an idle interpreter)."""
        if not self._versioned:
            return self.list_runs(job, ACTIVE)
        runs = self._kept_active()[1]
        return list(runs) if job is None else [r for r in runs if r.job == job]

    def _kept_active(self) -> tuple[int, list[RunRecord]]:
        """(runs version, the active runs at it), listed again when the version moved (SQLite only)."""
        with self._reading() as conn:  # the version first: a change after it makes the next read list again
            version = conn.execute(_RUNS_VERSION).scalar_one()
            cached = self._active
            if cached is None or cached[0] != version:
                stmt = (select(*_RUN_COLUMNS).where(_Run.state.in_([str(s) for s in ACTIVE]))
                        .order_by(_Run.created_at.desc(), _Run.id))
                cached = version, [_record(tuple(r)) for r in conn.execute(stmt).all()]
                self._active = cached
        return cached

    def transition(self, run_id: str, new: RunState, *, now: float, **fields: Any) -> RunRecord:
        """Move a run to `new` (validated), stamp the state's timestamp, and set `fields`.

        A terminal transition also writes the run's history row in the same transaction.
        """
        with self._session() as session:
            return _transition(session, run_id, new, now, fields)[1]

    def transition_many(self, run_ids: Iterable[str], new: RunState, *, now: float, event: str = "",
                        **fields: Any) -> list[RunRecord]:
        """`transition` for many runs in one transaction, each with a `run` event saying `event` (a stop cancelling
        thousands of runs would otherwise commit two transactions per run)."""
        with self._session() as session:
            out = []
            for run_id in run_ids:
                was, done = _transition(session, run_id, new, now, fields)
                session.add(_Event(at=now, kind="run", job=done.job, run_id=run_id,
                                   message=f"{was} -> {new}" + (f": {event}" if event else "")))
                out.append(done)
            return out

    def update_run(self, run_id: str, **fields: Any) -> RunRecord:
        """Change non-state fields (pods, explanation, driver pod, spark app id)."""
        with self._session() as session:
            row = session.get(_Run, run_id)
            if row is None:
                raise UnknownRun(f"no run {run_id!r}")
            _apply(row, fields)
            return _record(row)

    def update_runs(self, updates: Mapping[str, Mapping[str, Any]]) -> None:
        """`update_run` for many runs in one transaction (a tick that re-explains thousands of waiting runs would
        otherwise commit once per run); runs that no longer exist are left out."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for run_id, fields in updates.items():
            unknown = set(fields) - _SETTABLE
            if unknown:
                raise ValueError(f"run field {sorted(unknown)[0]!r} cannot be set")
            values = {f"v_{k}": json.dumps(v, sort_keys=True) if k == "pods" else v for k, v in fields.items()}
            groups.setdefault(tuple(sorted(fields)), []).append({"run_id": run_id, **values})
        table = cast(Table, _Run.__table__)
        with self._session() as session:
            conn = session.connection()
            for keys, rows in groups.items():
                if keys:
                    stmt = update(table).where(table.c.id == bindparam("run_id")).values(
                        {k: bindparam(f"v_{k}") for k in keys})
                    conn.execute(stmt, rows)

    def prune(self, job: str, succeeded_limit: int, failed_limit: int) -> list[RunRecord]:
        """Delete finished runs of `job` beyond the history limits (oldest first); history rows stay."""
        removed: list[RunRecord] = []
        with self._session() as session:
            rows = list(session.scalars(select(_Run).where(
                _Run.job == job, _Run.state.in_([str(s) for s in TERMINAL])).order_by(_Run.finished_at.desc())))
            ok = [r for r in rows if r.state == RunState.SUCCEEDED]
            bad = [r for r in rows if r.state != RunState.SUCCEEDED]
            for row in ok[max(succeeded_limit, 0):] + bad[max(failed_limit, 0):]:
                removed.append(_record(row))
                session.delete(row)
        return removed

    # ---- job overrides ---------------------------------------------------------------------

    def set_suspended(self, job: str, suspended: bool, now: float) -> None:
        with self._session() as session:
            session.merge(_JobOverride(job=job, suspended=suspended, updated_at=now))

    def suspended_overrides(self) -> dict[str, bool]:
        with self._session() as session:
            return {o.job: o.suspended for o in session.scalars(select(_JobOverride))}

    def clear_override(self, job: str) -> None:
        with self._session() as session:
            session.execute(delete(_JobOverride).where(_JobOverride.job == job))

    # ---- cluster cordons ------------------------------------------------------------------

    def set_cluster_cordon(self, cluster: str, cordoned: bool, now: float) -> None:
        with self._session() as session:
            session.merge(_ClusterCordon(cluster=cluster, cordoned=cordoned, updated_at=now))

    def cluster_cordons(self) -> dict[str, bool]:
        with self._session() as session:
            return {c.cluster: c.cordoned for c in session.scalars(select(_ClusterCordon))}

    # ---- leases ----------------------------------------------------------------------------

    def read_lease(self, name: str) -> LeaseRecord | None:
        with self._session() as session:
            row = session.get(_Lease, name)
            return _lease(row) if row is not None else None

    def create_lease(self, lease: LeaseRecord) -> LeaseRecord:
        """Insert a lease that does not exist yet; Conflict when another replica created it first."""
        try:
            with self._session() as session:
                row = _Lease(name=lease.name, holder=lease.holder, duration_s=lease.duration_s,
                             acquired_at=lease.acquired_at, renewed_at=lease.renewed_at,
                             transitions=lease.transitions, version=1)
                session.add(row)
                session.flush()
                return _lease(row)
        except IntegrityError:
            raise Conflict(f"lease {lease.name} exists already") from None

    def replace_lease(self, lease: LeaseRecord) -> LeaseRecord:
        """Write a lease only if it is still at `lease.version` (compare-and-swap); Conflict when it moved on."""
        with self._session() as session:
            done = session.execute(
                update(_Lease).where(_Lease.name == lease.name, _Lease.version == lease.version).values(
                    holder=lease.holder, duration_s=lease.duration_s, acquired_at=lease.acquired_at,
                    renewed_at=lease.renewed_at, transitions=lease.transitions, version=lease.version + 1))
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict(f"lease {lease.name} changed since version {lease.version}")
            row = session.get(_Lease, lease.name, populate_existing=True)
            assert row is not None
            return _lease(row)

    # ---- fire marks ------------------------------------------------------------------------

    def mark_fire(self, job: str, fire_time: float, now: float) -> None:
        with self._session() as session:
            mark = session.get(_FireMark, job)
            if mark is None:
                session.add(_FireMark(job=job, fire_time=fire_time, updated_at=now))
            elif fire_time > mark.fire_time:
                mark.fire_time, mark.updated_at = fire_time, now

    def last_fire(self, job: str) -> float | None:
        with self._session() as session:
            mark = session.get(_FireMark, job)
            return mark.fire_time if mark is not None else None

    def fire_recorded(self, job: str, fire_time: float) -> bool:
        """Whether a run (kept or pruned) exists for this scheduled fire time."""
        with self._session() as session:
            if session.scalar(select(_Run.id).where(_Run.job == job, _Run.fire_time == fire_time)) is not None:
                return True
            return session.scalar(select(_History.run_id).where(
                _History.job == job, _History.fire_time == fire_time)) is not None

    # ---- events and history ----------------------------------------------------------------

    def add_event(self, kind: str, message: str, *, now: float, job: str = "", run_id: str = "") -> None:
        with self._session() as session:
            session.add(_Event(at=now, kind=kind, job=job, run_id=run_id, message=message))

    def events(self, job: str | None = None, run_id: str | None = None, kind: str | None = None,
               limit: int = 200) -> list[EventRecord]:
        """Events newest first."""
        stmt = select(_Event).order_by(_Event.id.desc()).limit(limit)
        if job is not None:
            stmt = stmt.where(_Event.job == job)
        if run_id is not None:
            stmt = stmt.where(_Event.run_id == run_id)
        if kind is not None:
            stmt = stmt.where(_Event.kind == kind)
        with self._session() as session:
            return [EventRecord(e.id, e.at, e.kind, e.job, e.run_id, e.message) for e in session.scalars(stmt)]

    def prune_events(self, before: float) -> int:
        """Delete events older than `before`; return how many went."""
        with self._session() as session:
            result = session.execute(delete(_Event).where(_Event.at < before))
            return int(getattr(result, "rowcount", 0) or 0)

    def history(self, job: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Finished runs, newest first, including runs pruned from the runs table."""
        stmt = select(_History).order_by(_History.finished_at.desc())
        if job is not None:
            stmt = stmt.where(_History.job == job)
        if limit is not None:
            stmt = stmt.limit(limit)
        cols = [c.name for c in _History.__table__.columns]
        with self._session() as session:
            return [{c: getattr(h, c) for c in cols} for h in session.scalars(stmt)]


_SETTABLE = {"driver_pod", "pods", "reason", "explanation", "spark_app_id", "not_before", "namespace", "queue",
             "cluster", "dispatch_reason"}


def _migrate(engine: Engine) -> None:
    """Add the columns of `_ADDED_COLUMNS` that an older database lacks (SQLite and PostgreSQL alike)."""
    from sqlalchemy import inspect

    inspector = inspect(engine)
    for table, column, ddl in _ADDED_COLUMNS:
        have = {c["name"] for c in inspector.get_columns(table)}
        if column not in have:
            with engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}"))
    for index in cast(Table, _Run.__table__).indexes:  # added since (create_all adds none to an old table)
        index.create(engine, checkfirst=True)


_RUNS_VERSION = text("SELECT version FROM bigk_runs_version WHERE id = 0")


def _count_run_changes(engine: Engine) -> None:
    """SQLite: a counter of run changes, kept by triggers (any writer, any connection), that `Store.active_runs`
    compares with the one its cached listing was read at."""
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bigk_runs_version "
                          "(id INTEGER PRIMARY KEY CHECK (id = 0), version INTEGER NOT NULL)"))
        conn.execute(text("INSERT OR IGNORE INTO bigk_runs_version (id, version) VALUES (0, 0)"))
        for verb in ("INSERT", "UPDATE", "DELETE"):
            conn.execute(text(f"CREATE TRIGGER IF NOT EXISTS bigk_runs_{verb.lower()}_counted AFTER {verb} "
                              "ON bigk_runs BEGIN UPDATE bigk_runs_version SET version = version + 1 "
                              "WHERE id = 0; END"))


def _apply(row: _Run, fields: dict[str, Any]) -> None:
    for key, value in fields.items():
        if key not in _SETTABLE:
            raise ValueError(f"run field {key!r} cannot be set")
        if key == "pods":
            value = json.dumps(value, sort_keys=True)
        setattr(row, key, value)


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def _redact(url: str) -> str:
    """Hide a password in a database URL before it reaches a log or an error."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
