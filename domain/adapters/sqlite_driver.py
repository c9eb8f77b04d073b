"""aiosqlite that leaves the event loop only to wait.

aiosqlite runs every sqlite3 call on the connection's own thread and wakes the event loop for
each; SQLAlchemy's adapter makes four such calls per statement (open a cursor, execute, fetch,
close). Each costs a queue hand-off and two thread wake-ups, more than SQLite takes for a small
insert or a page of reads.

SQLite itself is quick; what can be slow is waiting, for the write lock or for the disk. So a
statement runs on the event loop when it cannot wait for a lock (`OneHopConnection._inline`): a
read, which WAL gives a snapshot, or any statement of a transaction that holds the write lock.
Whatever does go to the thread goes in one hop that keeps everything the caller will ask of it
(rows, description, rowcount, lastrowid).

Transactions start through named methods, called by the code that wants each kind:
`begin_reading()` and `begin_writing()` start one with the next statement (they travel
together), `begin_urgently()` takes the write lock at once ahead of waiting writers, and
`write()` runs a whole write transaction in one call. Commit and rollback cost nothing when
SQLite has no transaction open.

A request's writer (`begin_in_turn()`, `write()`) first takes a turn in the database's writer
queue (sqlite_writer_queue: a flock on a lock file beside it, shared by every process), so the
requests of every process wait in the kernel and the next one goes the moment the last one
commits, instead of polling from SQLite's busy handler. Background writers (`begin_writing()`:
the relay, the consumers) take no turn and wait in the busy handler as before, so a process's
requests go before its background work.

The rest is aiosqlite's (the connection, its thread) and SQLAlchemy's `sqlite+aiosqlite`
dialect, handed this module in place of the `aiosqlite` one.
"""

from __future__ import annotations

import asyncio
import enum
import sqlite3
import time
import types
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi
from sqlalchemy.pool import PoolProxiedConnection

from domain.adapters.sqlite_writer_queue import Turn, WriterQueue

Row = tuple[Any, ...]
Outcome = tuple[Any, list[Row], int, int | None]
# a write commit this slow on average moves to the connection's thread (see commit())
SLOW_COMMIT_SECONDS = 0.002
# how often an urgent writer asks for the write lock; SQLite's busy handler sleeps up to 100 ms
URGENT_POLL_SECONDS = 0.0005


class Begin(enum.Enum):
    """How a transaction that starts with the next statement begins."""

    # a WAL snapshot: it takes no lock and waits for no writer
    READING = "BEGIN"
    # the write lock up front: a transaction that reads and then writes cannot fail to upgrade
    # its lock, and writers queue behind busy_timeout instead
    WRITING = "BEGIN IMMEDIATE"


def _run(
    connection: sqlite3.Connection, begin: Begin | None, sql: str, parameters: Any, many: bool
) -> Outcome:
    """One statement on the connection's thread (after `begin`): all it gave."""
    if begin is not None:
        connection.execute(begin.value)
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
    """aiosqlite's connection with one-hop cursors, named transaction starts and no hop for an
    empty commit/rollback; statements that cannot wait for a lock run on the event loop itself.

    Using the sqlite3 connection from the event loop is safe: SQLAlchemy runs one operation at
    a time on a connection, so the connection's thread is idle whenever the loop uses it."""

    # the BEGIN that travels with the next statement (begin_reading, begin_writing)
    begin_pending: Begin | None = None
    # recent write commits' duration (a moving average over all connections of the process)
    commit_seconds = 0.0
    # the open transaction holds SQLite's write lock
    writing = False
    # the connection's own busy timeout, which try_begin_immediate() restores
    busy_timeout_ms: int | None = None
    # the writer queue of its database file (None: in memory), looked up at the first write
    queue: WriterQueue | None = None
    queue_known = False
    # the turn in the queue the open write transaction holds
    turn: Turn | None = None
    # the pending BEGIN IMMEDIATE is a request's, which takes a turn first (begin_in_turn)
    in_turn = False

    def cursor(self) -> OneHopCursor:  # type: ignore[override]
        # aiosqlite declares a coroutine here; SQLAlchemy enters what cursor() returns with
        # __aenter__, as an aiosqlite cursor context allows, and so does a OneHopCursor
        return OneHopCursor(self)

    def begin_reading(self) -> None:
        """Start a read transaction (BEGIN) with the next statement: one WAL snapshot for all
        its reads, taking no lock and waiting for no writer."""
        if not self.in_transaction:
            self.begin_pending = Begin.READING

    def begin_writing(self) -> None:
        """Start a background write transaction (BEGIN IMMEDIATE) with the next statement:
        tried on the event loop without waiting, else sent to the connection's thread to wait
        there for the lock in SQLite's busy handler, so the loop keeps serving (the holder may
        need it). It takes no turn in the writer queue: it waits while requests go first."""
        if not self.in_transaction:
            self.begin_pending = Begin.WRITING

    def begin_in_turn(self) -> None:
        """Start a request's write transaction with the next statement: its turn in the writer
        queue first (waited for off the loop), then BEGIN IMMEDIATE, asked for again every
        URGENT_POLL_SECONDS while a writer outside the queue holds the lock. On a database with
        no queue (in memory) this is begin_writing()."""
        if not self.in_transaction:
            self.begin_pending = Begin.WRITING
            self.in_turn = True

    def try_begin_immediate(self) -> bool:
        """BEGIN IMMEDIATE now if the write lock is free this instant; False (and no transaction)
        if another connection holds it. It never waits, so it runs on the event loop."""
        self.begin_pending = None
        self.writing = _try_write_lock(self._conn, self._busy_timeout_ms())
        return self.writing

    def _busy_timeout_ms(self) -> int:
        if self.busy_timeout_ms is None:
            (self.busy_timeout_ms,) = self._conn.execute("PRAGMA busy_timeout").fetchone()
        return self.busy_timeout_ms

    def _queue(self) -> WriterQueue | None:
        if not self.queue_known:
            self.queue, self.queue_known = WriterQueue.beside(self._conn), True
        return self.queue

    async def _begin_in_turn(self, queue: WriterQueue) -> None:
        """Wait for a turn, then for the write lock, within the busy timeout in all."""
        patience = self._busy_timeout_ms() / 1000
        deadline = time.monotonic() + patience
        self.turn = await queue.turn(patience, self._off_loop)
        try:
            await self.begin_urgently(max(0.0, deadline - time.monotonic()))
        except BaseException:
            self._give_turn_back()
            raise

    async def _off_loop(self, call: Callable[[], None]) -> None:
        """Run `call` on the connection's thread (idle while its writer waits for a turn)."""
        await self._execute(call)  # type: ignore[no-untyped-call]

    def _give_turn_back(self) -> None:
        turn, self.turn = self.turn, None
        if turn is not None:
            turn.release()

    async def begin_urgently(self, patience: float) -> None:
        """Take the write lock for a time-critical writer (a reminder firing), ahead of writers
        that wait in SQLite's busy handler: this one asks again every URGENT_POLL_SECONDS on
        the event loop. Raises sqlite3.OperationalError after `patience` seconds."""
        deadline = time.monotonic() + patience
        while not self.try_begin_immediate():
            if time.monotonic() > deadline:
                raise sqlite3.OperationalError("database is locked")
            await asyncio.sleep(URGENT_POLL_SECONDS)

    async def write(self, statements: list[tuple[str, Any]]) -> None:
        """A request's BEGIN IMMEDIATE (in turn), each (sql, parameters), COMMIT: all or
        nothing, in one call."""
        self.begin_in_turn()
        try:
            for sql, parameters in statements:
                await self.statement(sql, parameters, False)
            await self.commit()
        except BaseException:
            await self.rollback()
            raise

    async def statement(self, sql: str, parameters: Any, many: bool) -> Outcome:
        """Run one statement (after the pending BEGIN, if any): on the loop if it cannot wait
        for a lock, else in one hop to the connection's thread."""
        begin, self.begin_pending = self.begin_pending, None
        in_turn, self.in_turn = self.in_turn, False
        if begin is Begin.WRITING and in_turn and (queue := self._queue()) is not None:
            await self._begin_in_turn(queue)
            begin = None  # begun: the statement runs in the transaction, on the loop
        if self._inline(begin, sql):  # it ran `begin` itself
            return _run(self._conn, None, sql, parameters, many)
        outcome: Outcome = await self._execute(  # type: ignore[no-untyped-call]
            _run, self._conn, begin, sql, parameters, many
        )
        if begin is Begin.WRITING or (self._conn.in_transaction and not reads_only(sql)):
            self.writing = True  # its BEGIN IMMEDIATE, or the statement, took the write lock
        return outcome

    def _inline(self, begin: Begin | None, sql: str) -> bool:
        """Whether the statement (after `begin`) can run on the event loop at once; if so,
        `begin` has run. Only a statement that cannot wait on SQLite's locks can: a read in a
        WAL snapshot, or any statement of a transaction that already holds the write lock."""
        if begin is Begin.WRITING:
            return self.try_begin_immediate()
        reading = reads_only(sql)
        if begin is Begin.READING:
            if reading:
                self._conn.execute(begin.value)
            return reading
        return self._conn.in_transaction and (self.writing or reading)

    @property
    def in_transaction(self) -> bool:
        return self.begin_pending is not None or self._conn.in_transaction

    async def commit(self) -> None:
        """A read transaction's commit only lets go of its snapshot. A write transaction's
        waits for the disk (fsync, synchronous=FULL): on the event loop while the disk has been
        quick, on the connection's thread once it has been slow, so a slow disk holds up this
        writer and not every request the loop serves. A turn in the writer queue is given back
        once the write lock is."""
        self.begin_pending, self.in_turn = None, False
        writing, self.writing = self.writing, False
        try:
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
        finally:
            self._give_turn_back()

    async def rollback(self) -> None:
        """Nothing to wait for: WAL rolls back by forgetting the transaction's pages."""
        self.begin_pending, self.in_turn = None, False
        self.writing = False
        try:
            if self._connection is not None and self._connection.in_transaction:
                self._connection.rollback()
        finally:
            self._give_turn_back()

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            self._give_turn_back()


def reads_only(sql: str) -> bool:
    """Whether `sql` is a SELECT: the one place the driver reads SQL text, since the DBAPI
    hands it nothing else. A SELECT takes no write lock, so it may run on the event loop in a
    snapshot; anything else counts as a write (a PRAGMA or a WITH ... INSERT, conservatively)."""
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


def driver_of(connection: PoolProxiedConnection) -> OneHopConnection:
    """The OneHopConnection under a pooled connection of an engine from make_engine."""
    driver = connection.driver_connection
    assert isinstance(driver, OneHopConnection), driver
    return driver


def dbapi() -> AsyncAdapt_aiosqlite_dbapi:
    """The DBAPI module for create_async_engine(module=...): aiosqlite with this connect()."""
    module = types.ModuleType("dueflow_aiosqlite")
    module.__dict__.update(vars(aiosqlite))
    module.__dict__.update(connect=connect, Connection=OneHopConnection)
    return AsyncAdapt_aiosqlite_dbapi(module, sqlite3)
