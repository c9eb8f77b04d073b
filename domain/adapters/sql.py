"""The SQL unit of work and task repository, one code path for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Any, Self, TypeAlias

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_only, greenlet_spawn
from sqlmodel import SQLModel

from domain.adapters import sqlite_driver
from domain.adapters.reminder_sql import SqlReminderRepository
from domain.adapters.tables import IdempotencyKeyRow, OutboxRow, TaskRow
from domain.adapters.task_queries import (
    RAW_TASK,
    FilterShape,
    list_statement,
    matching_statement,
    parameters,
    sorted_statement,
)
from domain.adapters.writes import PENDING, Pending, Write, insert, insert_together
from domain.due import Due
from domain.errors import ConcurrentChange, IdempotencyRace
from domain.events import TaskEvent
from domain.model import Priority, Status, Task
from domain.ports import IdempotencyRecord, ReminderRepository
from domain.query import SortKey, TaskFilter
from domain.recurrence import Recurrence, RecurrenceAnchor
from domain.reminders import reminder_from_spec

# Core columns build the queries: typed expressions, where SQLModel attributes are values.
TASKS = SQLModel.metadata.tables[TaskRow.__tablename__]
OUTBOX = SQLModel.metadata.tables[OutboxRow.__tablename__]
T = TASKS.c
# execution option of a read-only unit of work's connection
READ_ONLY = "dueflow_read_only"
URGENT = "dueflow_urgent"  # a time-critical writer (a reminder firing): it polls for the lock
BUSY_TIMEOUT_MS = 10_000
# the reminder schedule of a unit of work's session: the SQL table, or a Dapr state store
ReminderStore: TypeAlias = Callable[[AsyncSession], ReminderRepository]


@contextlib.asynccontextmanager
async def reading(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session that only reads: on SQLite it reads a snapshot and neither takes nor waits for
    the write lock (a session's transaction otherwise starts as a writer's, BEGIN IMMEDIATE)."""
    async with sessions() as session:
        await start_reading(session)
        yield session


async def start_reading(session: AsyncSession) -> None:
    """Start `session` as a reader. On SQLite it reads one WAL snapshot and neither takes nor
    waits for the write lock. On PostgreSQL it opens no transaction (autocommit): at READ
    COMMITTED every statement reads a snapshot of its own, in a transaction or not, and BEGIN
    and ROLLBACK would be two more round trips."""
    assert session.bind is not None
    await session.connection(execution_options=_reader(session.bind.dialect.name))


def _reader(dialect: str) -> dict[str, Any]:
    """The execution options of a reader's connection (see start_reading)."""
    if dialect == "postgresql":
        return {READ_ONLY: True, "isolation_level": "AUTOCOMMIT"}
    return {READ_ONLY: True}


class Reading:
    """A read-only unit of work's connection, without a session: it reads as start_reading's
    session does, and each statement is one greenlet (checking the connection out, at the
    first). The session's own bookkeeping (its transaction states, a greenlet for each of
    connection(), execute, rollback and close) cost a 50-task listing more than its rows did.

    Repositories use it as they use a session: `connection()` and `execute()`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine.sync_engine
        self._connection: sa.Connection | None = None

    async def connection(self) -> Reading:
        return self

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return await greenlet_spawn(self._execute, statement, parameters)

    def _execute(self, statement: Any, parameters: Any) -> Any:
        if self._connection is None:
            self._connection = self._engine.connect()
            self._connection.execution_options(**_reader(self._engine.dialect.name))
        return self._connection.execute(statement, parameters)

    async def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await greenlet_spawn(connection.close)


def shared_store(repository: ReminderRepository) -> ReminderStore:
    """A ReminderStore handing every session the same repository (one that holds no session)."""
    return lambda _session: repository


def async_url(url: str) -> str:
    """The URL with the async driver this project uses for its database."""
    for prefix in (
        "postgres://",
        "postgresql://",
        "postgresql+psycopg2://",
        "postgresql+psycopg://",
    ):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


def make_engine(url: str) -> AsyncEngine:
    """An engine for `url`; SQLite gets WAL, foreign keys and write transactions that queue."""
    target = async_url(url)
    if target.startswith("sqlite+aiosqlite:"):
        # LIFO: the next request gets the connection the last one used, whose page cache is
        # still warm (SQLite drops a connection's cache when another connection has written)
        engine = create_async_engine(target, module=sqlite_driver.dbapi(), pool_use_lifo=True)
    else:
        engine = create_async_engine(target, json_deserializer=_json_value)

        @event.listens_for(engine.sync_engine, "checkout")
        def _closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
            # A restart or an idle timeout closes pooled connections under the server; asyncpg
            # sees the socket close, and the pool swaps such a connection for a fresh one. (The
            # pool's pre-ping would ask the server instead: BEGIN, a query and ROLLBACK, three
            # round trips before every unit of work.)
            if dbapi_connection.driver_connection.is_closed():
                raise DisconnectionError("PostgreSQL closed this pooled connection")

    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            for pragma in (
                "journal_mode=WAL",
                "synchronous=FULL",
                "mmap_size=268435456",  # a cold page cache refills from the map, not read()
                "foreign_keys=ON",
                f"busy_timeout={BUSY_TIMEOUT_MS}",
            ):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            # A deferred transaction that reads and then writes can fail to upgrade its lock;
            # taking the write lock up front makes writers queue behind busy_timeout instead.
            # A read-only one reads a WAL snapshot: it needs no lock and waits for no writer.
            # The driver sends the BEGIN with the transaction's first statement.
            options = connection.get_execution_options()
            if options.get(URGENT, False):
                _begin_urgently(connection)
            else:
                driver = connection.connection.driver_connection
                driver.begin("BEGIN" if options.get(READ_ONLY, False) else "BEGIN IMMEDIATE")

    return engine


def _begin_urgently(connection: Any) -> None:
    """Take SQLite's write lock as soon as it is free: other writers wait in SQLite's busy
    handler, which sleeps in steps of up to 100 ms; this one polls every half millisecond on the
    event loop (await_only: SQLAlchemy's asyncio greenlet), so it goes first."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    connection.exec_driver_sql("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                # spelled out, this BEGIN runs at once (sqlite_driver defers the short form)
                connection.exec_driver_sql("BEGIN IMMEDIATE TRANSACTION")
                return
            except OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            await_only(asyncio.sleep(0.0005))
    finally:
        connection.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


class SqlUnitOfWork:
    """A transaction over one session; leaving without commit() rolls everything back."""

    tasks: SqlTaskRepository
    reminders: ReminderRepository
    session: AsyncSession  # a read-only unit's is a Reading, which reads as a session does

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        after_commit: Callable[[], None] | None = None,
        *,
        read_only: bool = False,
        inserts_only: bool = False,
        urgent: bool = False,
        reminder_store: ReminderStore = SqlReminderRepository,
    ) -> None:
        self._sessions = sessions
        self._urgent = urgent
        self._reminder_store = reminder_store
        self._after_commit = after_commit
        self._read_only = read_only
        self._events: list[TaskEvent] = []
        self._reading: Reading | None = None

    async def __aenter__(self) -> Self:
        self._events = []
        bind = self._sessions.kw.get("bind")
        self._reading = None
        if self._read_only and isinstance(bind, AsyncEngine):
            self._reading = Reading(bind)
            self.session = self._reading  # type: ignore[assignment]
        else:
            self.session = self._sessions()
            if self._read_only:
                await start_reading(self.session)
            elif self._urgent:
                await self.session.connection(execution_options={URGENT: True})
            elif isinstance(bind, AsyncEngine):
                self.session.info[PENDING] = []  # inserts wait for commit (domain/adapters/writes)
        self.tasks = SqlTaskRepository(self.session)
        self.reminders = self._reminder_store(self.session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._reading is not None:
            await self._reading.close()
        elif self.session.in_transaction():  # else it never used the database, or its commit
            await self.session.close()  # bypassed the session; closing rolls back

    def record(self, event: TaskEvent) -> None:
        self._events.append(event)

    async def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("commit() in a read-only unit of work")
        pending: Pending = self.session.info.pop(PENDING, None) or []
        if pending:  # nothing else ran: the inserts and their events go in one piece
            pending += [(_INSERT_OUTBOX, row) for row in self._outbox_rows()]
            await insert_together(self._sessions.kw["bind"], pending)
        else:
            await self._write_outbox()
            await self.session.commit()
        published, self._events = bool(self._events), []
        if published and self._after_commit is not None:
            self._after_commit()

    async def _write_outbox(self) -> None:
        if self._events:
            await _INSERT_OUTBOX.run(self.session, self._outbox_rows())

    def _outbox_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "event_id": item.event_id,
                "event_type": item.event_type.value,
                "task_id": item.task_id,
                "user_id": item.user_id,
                "sequence": item.sequence,
                "payload": item.envelope(),
                "created_at": item.timestamp,
                "attempts": 0,
            }
            for item in self._events
        ]


class JoinedUnitOfWork(SqlUnitOfWork):
    """A unit of work inside a transaction its caller owns (a consumer's inbox transaction):
    commit() writes the outbox rows; the state, the events and the inbox row commit together
    when the caller commits, and nothing does if it rolls back."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        read_only: bool = False,
        reminder_store: ReminderStore = SqlReminderRepository,
    ) -> None:
        self._joined = session
        self._reminder_store = reminder_store
        self._events = []
        self._after_commit = None
        self._read_only = False  # the caller's transaction decides

    async def __aenter__(self) -> Self:
        self.session = self._joined
        self.tasks = SqlTaskRepository(self.session)
        self.reminders = self._reminder_store(self.session)
        self._events = []
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def commit(self) -> None:
        await self._write_outbox()
        await self.session.flush()
        self._events = []


class SqlTaskRepository:
    """Tasks in SQL. Statements run as Core on the session's connection: the ORM's per-statement
    bookkeeping is not needed for rows that map to plain domain objects."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _execute(self, statement: Any, parameters: Any = None) -> sa.CursorResult[Any]:
        connection = await self.session.connection()
        result: sa.CursorResult[Any] = await connection.execute(statement, parameters)
        return result

    async def add(self, task: Task) -> None:
        await insert(self.session, _INSERT_TASK, _row_values(task))  # task_tags: by trigger

    async def get(self, user_id: str, task_id: str) -> Task | None:
        row = (
            await self._execute(_SELECT_TASK, {"task_id": task_id, "user_id": user_id})
        ).one_or_none()
        return task_from_row(row) if row is not None else None

    async def save(self, task: Task, expected_version: int) -> None:
        values = _row_values(task)
        values.update(match_id=task.id, match_user=task.user_id, match_version=expected_version)
        if await _UPDATE_TASK.run(self.session, [values]) != 1:
            raise ConcurrentChange()

    async def list_page(
        self,
        user_id: str,
        where: TaskFilter,
        now: dt.datetime,
        today: dt.date,
        limit: int,
        after: tuple[dt.datetime, str] | None,
    ) -> list[Task]:
        values = parameters(user_id, where, now, today)
        values["limit"] = limit
        if after is not None:
            values["after_created"], values["after_id"] = after
        query = list_statement(FilterShape.of(where), after is not None)
        return [task_from_row(row) for row in (await self._execute(query, values)).all()]

    async def sorted_page(
        self,
        user_id: str,
        where: TaskFilter,
        now: dt.datetime,
        today: dt.date,
        order: tuple[SortKey, ...],
        offset: int,
        limit: int,
    ) -> list[Task]:
        values = parameters(user_id, where, now, today)
        values["offset"], values["limit"] = offset, limit
        query = sorted_statement(FilterShape.of(where), order)
        return [task_from_row(row) for row in (await self._execute(query, values)).all()]

    async def all_matching(
        self, user_id: str, where: TaskFilter, now: dt.datetime, today: dt.date
    ) -> list[Task]:
        query = matching_statement(FilterShape.of(where))
        values = parameters(user_id, where, now, today)
        return [task_from_row(row) for row in (await self._execute(query, values)).all()]

    async def find_idempotency(self, user_id: str, key: str) -> IdempotencyRecord | None:
        row = await self.session.get(IdempotencyKeyRow, (user_id, key))
        return IdempotencyRecord(row.request_hash, row.task_id) if row is not None else None

    async def remember_idempotency(
        self, user_id: str, key: str, record: IdempotencyRecord, now: dt.datetime
    ) -> None:
        self.session.add(
            IdempotencyKeyRow(
                user_id=user_id,
                key=key,
                request_hash=record.request_hash,
                task_id=record.task_id,
                created_at=now,
            )
        )
        try:
            await self.session.flush()
        except IntegrityError:
            raise IdempotencyRace() from None


# statements built once: the writes compile once per column set (Write); SQLAlchemy finds the
# reads' compiled form without rebuilding a cache key
_INSERT_TASK = Write(sa.insert(TASKS))
_INSERT_OUTBOX = Write(sa.insert(OUTBOX))
# every column from the parameters of the same names; the match_* ones select the row
_UPDATE_TASK = Write(
    sa.update(TASKS).where(
        T.id == sa.bindparam("match_id", type_=T.id.type),
        T.user_id == sa.bindparam("match_user", type_=T.user_id.type),
        T.version == sa.bindparam("match_version", type_=T.version.type),
    )
)
_SELECT_TASK = sa.select(*RAW_TASK).where(
    T.id == sa.bindparam("task_id", type_=T.id.type),
    T.user_id == sa.bindparam("user_id", type_=T.user_id.type),
)


def _row_values(task: Task) -> dict[str, Any]:
    due = task.due
    rec = task.recurrence
    return {
        "id": task.id,
        "user_id": task.user_id,
        "title": task.title,
        "description": task.description,
        "status": task.status.value,
        "priority_rank": task.priority.rank,
        "tags": list(task.tags),
        "due_at": due.instant if due else None,
        "due_date": due.date if due else None,
        "due_all_day": bool(due and due.all_day),
        "timezone": due.timezone if due else None,
        "reminders": [r.spec for r in task.reminders],
        "recurrence_rule": task.recurrence.rule if task.recurrence else None,
        "recurrence_anchor": task.recurrence.anchor.value if task.recurrence else None,
        "series_id": task.recurrence.series_id if task.recurrence else None,
        "occurrence": task.occurrence,
        "recurrence_start": _wall_text(rec.start) if rec else None,
        "recurrence_exdates": [_wall_text(day) for day in rec.exdates] if rec else [],
        "recurred_from": task.recurred_from,
        "recurred_to": task.recurred_to,
        "series_ended": task.series_ended,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "completed_at": task.completed_at,
        "deleted_at": task.deleted_at,
        "version": task.version,
    }


def task_from_row(row: Sequence[Any]) -> Task:
    """A task from a row of RAW_TASK (the `tasks` columns in table order): the driver's values,
    as SQLite or PostgreSQL gives them."""
    (
        task_id,
        user_id,
        title,
        description,
        status,
        priority_rank,
        tags,
        due_at,
        due_date,
        due_all_day,
        timezone,
        reminders,
        recurrence_rule,
        recurrence_anchor,
        series_id,
        occurrence,
        recurrence_start,
        recurrence_exdates,
        recurred_from,
        recurred_to,
        series_ended,
        created_at,
        updated_at,
        completed_at,
        deleted_at,
        version,
    ) = row
    due = None
    if timezone is not None:
        if due_all_day:
            due = Due(timezone=timezone, date=_date(due_date))
        else:
            due = Due(timezone=timezone, at=_moment(due_at))
    recurrence = None
    if recurrence_rule is not None:
        recurrence = Recurrence(
            rule=recurrence_rule,
            anchor=RecurrenceAnchor(recurrence_anchor or "schedule"),
            series_id=series_id or task_id,
            start=_wall_value(recurrence_start),
            exdates=tuple(_wall_value(day) for day in _json_list(recurrence_exdates)),
        )
    specs = _json_list(reminders)
    return Task(
        id=task_id,
        user_id=user_id,
        title=title,
        description=description,
        status=_STATUS[status],
        priority=Priority.from_rank(priority_rank),
        tags=tuple(_json_list(tags)),
        due=due,
        reminders=tuple(reminder_from_spec(spec) for spec in specs) if specs else (),
        recurrence=recurrence,
        created_at=_moment(created_at),
        updated_at=_moment(updated_at),
        completed_at=_moment(completed_at) if completed_at is not None else None,
        deleted_at=_moment(deleted_at) if deleted_at is not None else None,
        version=version,
        occurrence=occurrence,
        recurred_from=recurred_from,
        recurred_to=recurred_to,
        series_ended=bool(series_ended),
    )


def _moment(value: Any) -> dt.datetime:
    """A stored UTC moment: SQLite's text (no zone; see UTCDateTime) or PostgreSQL's datetime."""
    if isinstance(value, str):
        # appending the offset parses several times faster than .replace(tzinfo=...) after
        return dt.datetime.fromisoformat(value + "+00:00")
    moment: dt.datetime = value.astimezone(dt.UTC)
    return moment


def _date(value: Any) -> dt.date:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def _json_list(value: Any) -> list[Any]:
    """A JSON list column: SQLite's text, or the list PostgreSQL's driver already decoded."""
    if value is None:
        return []
    if isinstance(value, str):
        # raw_decode skips json.loads' checks, which cost more than parsing a short list; the
        # values are SQLAlchemy's own json.dumps output
        decoded: list[Any] = _JSON.raw_decode(value)[0]
        return decoded
    listed: list[Any] = value
    return listed


_JSON = json.JSONDecoder()


def _json_value(text: str) -> Any:
    """A JSON value PostgreSQL sent: asyncpg decodes each as it arrives, three per listed task,
    and most are an empty list (no reminders, no exdates)."""
    return [] if text == "[]" else json.loads(text)


# a dict lookup: calling the enum class costs several times as much, once per listed row
_STATUS = {status.value: status for status in Status}


def _wall_text(value: dt.datetime | dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _wall_value(text: str | None) -> Any:
    """A stored series start or exdate: a naive local datetime, or a date."""
    if text is None:
        return None
    return dt.datetime.fromisoformat(text) if "T" in text else dt.date.fromisoformat(text)
