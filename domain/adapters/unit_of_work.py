"""The SQL unit of work: one transaction, its repositories, and its events' outbox rows.

A use case opens the unit for what it will do, and the unit runs its statements to suit
(statements.py):
- a writing unit (the default) runs each statement at once in its session's transaction;
- `read_only`: one connection without a session, on SQLite a snapshot that takes no lock, on
  PostgreSQL no transaction block;
- `inserts_only`: its inserts wait for the commit, which writes them and its events in one
  piece (writes.write_together): one statement on PostgreSQL, one call into SQLite's driver. A
  read or an update raises UnitOfWorkMisuse;
- `urgent` (a writing unit that must not queue, e.g. a reminder firing): on SQLite it takes the
  write lock as it opens, ahead of writers waiting in SQLite's busy handler.

On SQLite a writing or inserts-only unit is a request's writer: it takes its turn in the writer
queue every process shares (sqlite_driver.begin_in_turn), where background writers (the relay,
the consumers, which open sessions of their own) give way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeAlias

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import SQLModel

from domain.adapters.calendar_sql import SqlCalendarLinks
from domain.adapters.metrics import TRANSACTION_SECONDS
from domain.adapters.reminder_sql import SqlReminderRepository
from domain.adapters.sql import IN_TURN, begin_urgently
from domain.adapters.statements import (
    HeldInserts,
    InTransaction,
    ReadConnection,
    Statements,
)
from domain.adapters.tables import OutboxRow
from domain.adapters.task_repository import SqlTaskRepository
from domain.adapters.tracing import span, with_traceparent
from domain.adapters.writes import Write, write_together
from domain.events import TaskEvent
from domain.ports import ReminderRepository, UnitOfWorkMisuse

# the reminder schedule a unit of work's statements reach: the SQL table, or a Dapr state store
ReminderRepositoryFactory: TypeAlias = Callable[[Statements], ReminderRepository]

_INSERT_OUTBOX = Write(sa.insert(SQLModel.metadata.tables[OutboxRow.__tablename__]))


def shared_repository(repository: ReminderRepository) -> ReminderRepositoryFactory:
    """A factory handing every unit the same repository (one outside the database)."""
    return lambda _statements: repository


class SqlUnitOfWork:
    """One transaction; leaving without commit() rolls everything back (see the module's doc)."""

    tasks: SqlTaskRepository
    reminders: ReminderRepository
    calendar: SqlCalendarLinks
    statements: Statements

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        after_commit: Callable[[], None] | None = None,
        *,
        read_only: bool = False,
        inserts_only: bool = False,
        urgent: bool = False,
        reminder_store: ReminderRepositoryFactory = SqlReminderRepository,
    ) -> None:
        if read_only + inserts_only + urgent > 1:
            raise ValueError("a unit of work is at most one of read_only, inserts_only, urgent")
        engine = sessions.kw.get("bind")
        if not isinstance(engine, AsyncEngine):
            raise TypeError(f"SqlUnitOfWork needs sessions bound to an AsyncEngine, not {engine}")
        self._sessions = sessions
        self._engine = engine
        self._after_commit = after_commit
        self._read_only = read_only
        self._inserts_only = inserts_only
        self._urgent = urgent
        self._reminder_store = reminder_store
        self._events: list[TaskEvent] = []
        self._session: AsyncSession | None = None
        self._reader: ReadConnection | None = None
        self._held: HeldInserts | None = None
        self._began = 0.0

    async def __aenter__(self) -> Self:
        self._began = time.perf_counter()
        self._events = []
        self._session = self._reader = self._held = None
        if self._read_only:
            self.statements = self._reader = ReadConnection(self._engine)
        elif self._inserts_only:
            self.statements = self._held = HeldInserts()
        else:
            self._session = self._sessions()
            self.statements = InTransaction(self._session)
            if self._engine.dialect.name == "sqlite":
                if self._urgent:
                    await begin_urgently(self._session)
                else:
                    await self._session.connection(execution_options={IN_TURN: True})
        self.tasks = SqlTaskRepository(self.statements)
        self.reminders = self._reminder_store(self.statements)
        self.calendar = SqlCalendarLinks(self.statements)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._reader is not None:
            await self._reader.close()
        elif self._session is not None and self._session.in_transaction():
            await self._session.close()  # not committed: closing rolls back

    def record(self, event: TaskEvent) -> None:
        self._events.append(event)

    async def commit(self) -> None:
        if self._read_only:
            raise UnitOfWorkMisuse("commit() in a read-only unit of work")
        with span("commit", attributes={"dueflow.events": len(self._events)}):
            await self._commit()
        TRANSACTION_SECONDS.observe(time.perf_counter() - self._began)

    async def _commit(self) -> None:
        outbox = outbox_rows(self._events)
        if self._held is not None:
            inserts = [*self._held.rows, *((_INSERT_OUTBOX, row) for row in outbox)]
            self._held.rows = []
            if inserts:
                await write_together(self._engine, inserts)
        else:
            assert self._session is not None
            if outbox:
                await self.statements.insert(_INSERT_OUTBOX, outbox)
            await self._session.commit()
        published, self._events = bool(self._events), []
        if published and self._after_commit is not None:
            self._after_commit()


class JoinedUnitOfWork:
    """A unit of work inside a transaction its caller owns (a consumer's inbox transaction):
    commit() writes the outbox rows; the state, the events and the inbox row commit together
    when the caller commits, and nothing does if it rolls back. The caller's transaction is
    already open, so every statement runs in it at once: `read_only` and `inserts_only` change
    nothing here."""

    tasks: SqlTaskRepository
    reminders: ReminderRepository
    calendar: SqlCalendarLinks
    statements: Statements

    def __init__(
        self,
        session: AsyncSession,
        *,
        read_only: bool = False,
        inserts_only: bool = False,
        reminder_store: ReminderRepositoryFactory = SqlReminderRepository,
    ) -> None:
        self._session = session
        self._reminder_store = reminder_store
        self._events: list[TaskEvent] = []

    async def __aenter__(self) -> Self:
        self.statements = InTransaction(self._session)
        self.tasks = SqlTaskRepository(self.statements)
        self.reminders = self._reminder_store(self.statements)
        self.calendar = SqlCalendarLinks(self.statements)
        self._events = []
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def record(self, event: TaskEvent) -> None:
        self._events.append(event)

    async def commit(self) -> None:
        outbox = outbox_rows(self._events)
        if outbox:
            await self.statements.insert(_INSERT_OUTBOX, outbox)
        await self._session.flush()
        self._events = []


def outbox_rows(events: list[TaskEvent]) -> list[dict[str, Any]]:
    """The outbox rows of `events`, in order."""
    return [
        {
            "event_id": item.event_id,
            "event_type": item.event_type.value,
            "task_id": item.task_id,
            "user_id": item.user_id,
            "sequence": item.sequence,
            "payload": with_traceparent(item.envelope()),
            "created_at": item.timestamp,
            "attempts": 0,
        }
        for item in events
    ]
