"""aiosqlite with one thread hop per statement.

aiosqlite runs every sqlite3 call on the connection's own thread and wakes the event loop for
each. SQLAlchemy's adapter makes four such hops per statement (open a cursor, execute, fetch,
close), commits and rolls back even when no transaction is open (a pool check-in rolls back
after every commit), and a read-only unit of work opens with a `BEGIN` of its own. Each hop
costs a queue hand-off and an event-loop wake-up: on a small machine, more than SQLite takes to
run a task listing.

Here a statement is one hop that keeps everything the caller will ask of it (rows, description,
rowcount, lastrowid); commit and rollback are skipped when SQLite has no transaction open; and a
`BEGIN` or `BEGIN IMMEDIATE` travels with the statement after it, so the unit of work's first
statement and its transaction start cost one hop. A writer waiting for the write lock waits in
that hop, on the connection's thread, as it would have in its own; a failure to get the lock
surfaces from that statement. `BEGIN IMMEDIATE TRANSACTION` (spelled out) runs at once, for a
caller that must see the lock refused right there (sql.py's urgent writers).

The rest is aiosqlite's (the connection, its thread) and SQLAlchemy's `sqlite+aiosqlite`
dialect, handed this module in place of the `aiosqlite` one.
"""

from __future__ import annotations

import sqlite3
import types
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi

Row = tuple[Any, ...]
Outcome = tuple[Any, list[Row], int, int | None]
# the transaction starts that wait for the next statement and run with it
DEFERRED_BEGINS = frozenset({"BEGIN", "BEGIN IMMEDIATE"})


def _run(
    connection: sqlite3.Connection, begin: str | None, sql: str, parameters: Any, many: bool
) -> Outcome:
    """One statement on the connection's thread (after a pending BEGIN): all it gave."""
    if begin is not None:
        connection.execute(begin)
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        else:
            cursor.execute(sql, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneHopCursor:
    """An aiosqlite-shaped cursor whose execute() is a single hop; the fetches read its rows."""

    arraysize = 1

    def __init__(self, connection: OneHopConnection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Row] = []

    async def __aenter__(self) -> OneHopCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        return None

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> OneHopCursor:
        if sql in DEFERRED_BEGINS and not parameters and not self._connection.in_transaction:
            self._connection.begin_pending = sql
            self.description, self._rows, self.rowcount, self.lastrowid = None, [], -1, None
            return self
        return await self._take(sql, () if parameters is None else parameters, many=False)

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> OneHopCursor:
        return await self._take(sql, parameters, many=True)

    async def _take(self, sql: str, parameters: Any, *, many: bool) -> OneHopCursor:
        outcome = await self._connection.statement(sql, parameters, many)
        self.description, self._rows, self.rowcount, self.lastrowid = outcome
        return self

    async def fetchone(self) -> Row | None:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Row]:
        count = self.arraysize if size is None else size
        taken, self._rows = self._rows[:count], self._rows[count:]
        return taken

    async def fetchall(self) -> list[Row]:
        taken, self._rows = self._rows, []
        return taken

    async def close(self) -> None:
        self._rows = []


class OneHopConnection(aiosqlite.Connection):
    """aiosqlite's connection with one-hop cursors and no hop for an empty commit/rollback.

    Reading `in_transaction` from the event loop is safe: SQLAlchemy runs one operation at a
    time on a connection, so the connection's thread is idle whenever this is asked."""

    begin_pending: str | None = None

    def cursor(self) -> OneHopCursor:  # type: ignore[override]
        return OneHopCursor(self)

    async def statement(self, sql: str, parameters: Any, many: bool) -> Outcome:
        begin, self.begin_pending = self.begin_pending, None
        outcome: Outcome = await self._execute(  # type: ignore[no-untyped-call]
            _run, self._conn, begin, sql, parameters, many
        )
        return outcome

    @property
    def in_transaction(self) -> bool:
        return self.begin_pending is not None or self._conn.in_transaction

    async def commit(self) -> None:
        self.begin_pending = None
        if self._connection is not None and self._connection.in_transaction:
            await super().commit()

    async def rollback(self) -> None:
        self.begin_pending = None
        if self._connection is not None and self._connection.in_transaction:
            await super().rollback()


def connect(database: str, *, iter_chunk_size: int = 64, **kwargs: Any) -> OneHopConnection:
    """aiosqlite.connect, making a OneHopConnection (awaiting it starts its thread)."""
    connection = OneHopConnection(partial(sqlite3.connect, database, **kwargs), iter_chunk_size)
    connection._thread.daemon = True
    return connection


def dbapi() -> AsyncAdapt_aiosqlite_dbapi:
    """The DBAPI module for create_async_engine(module=...): aiosqlite with this connect()."""
    module = types.ModuleType("dueflow_aiosqlite")
    module.__dict__.update(vars(aiosqlite))
    module.__dict__.update(connect=connect, Connection=OneHopConnection)
    return AsyncAdapt_aiosqlite_dbapi(module, sqlite3)
