"""aiosqlite that leaves the event loop only to wait.

aiosqlite runs every sqlite3 call on the connection's own thread and wakes the event loop for
each. SQLAlchemy's adapter makes four such hops per statement (open a cursor, execute, fetch,
close), commits and rolls back even when no transaction is open, and a read-only unit of work
opens with a `BEGIN` of its own. Each hop costs a queue hand-off and two thread wake-ups: on a
small machine, more than SQLite takes to insert a task or read a page of them.

SQLite itself is quick; what can be slow is waiting, for the write lock or for the disk. So
here a statement runs on the event loop when it cannot wait for a lock: a read (WAL gives it a
snapshot), or any statement of a transaction that holds the write lock. `BEGIN IMMEDIATE` is
tried on the loop without waiting (busy_timeout 0); if another connection holds the lock, the
BEGIN and its statement go to the connection's thread and wait there in SQLite's busy handler,
so the loop keeps serving (the holder may need it to finish). A write transaction's commit
waits for fsync on the loop while commits have been quick, on the thread once they have not
(commit()). Whatever does go to the thread goes in one hop that keeps everything the caller will
ask of it (rows, description, rowcount, lastrowid). Commit and rollback are skipped when SQLite
has no transaction open, and a `BEGIN` or `BEGIN IMMEDIATE` travels with the statement after it.
`BEGIN IMMEDIATE TRANSACTION` (spelled out) runs at once, for a caller that must see the lock
refused right there (sql.py's urgent writers).

The rest is aiosqlite's (the connection, its thread) and SQLAlchemy's `sqlite+aiosqlite`
dialect, handed this module in place of the `aiosqlite` one.
"""

from __future__ import annotations

import sqlite3
import time
import types
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi

Row = tuple[Any, ...]
Outcome = tuple[Any, list[Row], int, int | None]
# a write commit this slow on average moves to the connection's thread (see commit())
SLOW_COMMIT_SECONDS = 0.002
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
            self._connection.begin(sql)
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
    """aiosqlite's connection with one-hop cursors and no hop for an empty commit/rollback;
    statements that cannot wait for a lock run on the event loop itself (see `_inline`).

    Reading `in_transaction` from the event loop is safe: SQLAlchemy runs one operation at a
    time on a connection, so the connection's thread is idle whenever this is asked."""

    begin_pending: str | None = None
    # recent write commits' duration (a moving average over all connections of the process)
    commit_seconds = 0.0
    # the open transaction holds SQLite's write lock (its BEGIN IMMEDIATE went through)
    writing = False
    # the connection's own busy timeout, which a BEGIN IMMEDIATE tried at once restores
    busy_timeout_ms: int | None = None

    def cursor(self) -> OneHopCursor:  # type: ignore[override]
        return OneHopCursor(self)

    def begin(self, sql: str) -> None:
        """Start a transaction with `sql` (BEGIN or BEGIN IMMEDIATE) and the next statement:
        what executing it does, without a statement's round through SQLAlchemy."""
        if not self.in_transaction:
            self.begin_pending = sql

    async def statement(self, sql: str, parameters: Any, many: bool) -> Outcome:
        begin, self.begin_pending = self.begin_pending, None
        if self._inline(begin, sql):  # it ran `begin` itself
            return _run(self._conn, None, sql, parameters, many)
        outcome: Outcome = await self._execute(  # type: ignore[no-untyped-call]
            _run, self._conn, begin, sql, parameters, many
        )
        if begin == "BEGIN IMMEDIATE" or (self._conn.in_transaction and not _reads(sql)):
            self.writing = True  # its BEGIN IMMEDIATE, or the statement, took the write lock
        return outcome

    def _inline(self, begin: str | None, sql: str) -> bool:
        """Whether the statement (after `begin`) can run on the event loop at once; if so,
        `begin` has run.

        Only a statement that cannot wait on SQLite's locks does: a read in a WAL snapshot,
        or any statement of a transaction that already holds the write lock. A BEGIN IMMEDIATE
        is tried here without waiting; if another connection holds the lock, the statement
        goes to the connection's thread and waits there, as every statement used to."""
        if begin == "BEGIN IMMEDIATE":
            if self.busy_timeout_ms is None:
                (self.busy_timeout_ms,) = self._conn.execute("PRAGMA busy_timeout").fetchone()
            self.writing = _try_write_lock(self._conn, self.busy_timeout_ms)
            return self.writing
        reading = _reads(sql)
        if begin == "BEGIN":
            if reading:
                self._conn.execute(begin)
            return reading
        return self._conn.in_transaction and (self.writing or reading)

    async def write(self, statements: list[tuple[str, Any]]) -> None:
        """BEGIN IMMEDIATE, each (sql, parameters), COMMIT: all or nothing."""
        self.begin("BEGIN IMMEDIATE")
        try:
            for sql, parameters in statements:
                await self.statement(sql, parameters, False)
            await self.commit()
        except BaseException:
            await self.rollback()
            raise

    @property
    def in_transaction(self) -> bool:
        return self.begin_pending is not None or self._conn.in_transaction

    async def commit(self) -> None:
        """A read transaction's commit only lets go of its snapshot. A write transaction's
        waits for the disk (fsync, synchronous=FULL): on the event loop while the disk has been
        quick, on the connection's thread once it has been slow, so a slow disk holds up this
        writer and not every request the loop serves."""
        self.begin_pending = None
        writing, self.writing = self.writing, False
        if self._connection is None or not self._connection.in_transaction:
            return
        if not writing:
            self._connection.commit()
            return
        started = time.perf_counter()
        if OneHopConnection.commit_seconds > SLOW_COMMIT_SECONDS:
            await super().commit()
        else:
            self._connection.commit()
        elapsed = time.perf_counter() - started
        OneHopConnection.commit_seconds += (elapsed - OneHopConnection.commit_seconds) / 8

    async def rollback(self) -> None:
        """Nothing to wait for: WAL rolls back by forgetting the transaction's pages."""
        self.begin_pending = None
        self.writing = False
        if self._connection is not None and self._connection.in_transaction:
            self._connection.rollback()


def _reads(sql: str) -> bool:
    return sql.lstrip()[:6].upper() == "SELECT"


def _try_write_lock(connection: sqlite3.Connection, timeout: int) -> bool:
    """BEGIN IMMEDIATE if the write lock is free this instant; False (and no transaction) if
    another connection holds it. `timeout`: the busy timeout (ms) to restore after."""
    connection.execute("PRAGMA busy_timeout=0")
    try:
        connection.execute("BEGIN IMMEDIATE")
        return True
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return False
        raise
    finally:
        connection.execute(f"PRAGMA busy_timeout={int(timeout)}")


def connect(database: str, *, iter_chunk_size: int = 64, **kwargs: Any) -> OneHopConnection:
    """aiosqlite.connect, making a OneHopConnection (awaiting it starts its thread)."""
    # the event loop runs some statements itself (OneHopConnection._inline), never at the same
    # time as the connection's thread
    kwargs["check_same_thread"] = False
    connection = OneHopConnection(partial(sqlite3.connect, database, **kwargs), iter_chunk_size)
    connection._thread.daemon = True
    return connection


def dbapi() -> AsyncAdapt_aiosqlite_dbapi:
    """The DBAPI module for create_async_engine(module=...): aiosqlite with this connect()."""
    module = types.ModuleType("dueflow_aiosqlite")
    module.__dict__.update(vars(aiosqlite))
    module.__dict__.update(connect=connect, Connection=OneHopConnection)
    return AsyncAdapt_aiosqlite_dbapi(module, sqlite3)
