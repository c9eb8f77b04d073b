"""Engines for SQLite and PostgreSQL, and sessions that only read.

The two databases are configured apart where each needs it. SQLite runs through this project's
driver (sqlite_driver): WAL, a writer that takes the write lock at its BEGIN, readers that take
none. PostgreSQL runs through asyncpg: a reader runs outside a transaction block, and JSON
columns decode without a call for the common empty list.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

from domain.adapters import sqlite_driver
from domain.adapters.metrics import POOL_WAIT_SECONDS

# execution option of a connection that only reads (see reader_options)
READ_ONLY = "dueflow_read_only"
# execution option of a request's write transaction: on SQLite it waits its turn in the writer
# queue (sqlite_driver.begin_in_turn); background writers leave it out and give way
IN_TURN = "dueflow_in_turn"
BUSY_TIMEOUT_MS = 10_000


async def begin_urgently(session: AsyncSession) -> None:
    """Begin the session's SQLite transaction holding the write lock, ahead of the writers
    waiting their turn (sqlite_driver's begin_urgently), within the busy timeout they wait."""
    connection = await session.connection()
    driver = sqlite_driver.driver_of(await connection.get_raw_connection())
    try:
        await driver.begin_urgently(BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as exc:
        raise DBAPIError.instance("BEGIN IMMEDIATE", None, exc, sqlite3.Error) from exc


def reader_options(dialect: str) -> dict[str, Any]:
    """The execution options of a connection that only reads. On SQLite it reads one WAL
    snapshot and neither takes nor waits for the write lock. On PostgreSQL it opens no
    transaction (autocommit): at READ COMMITTED every statement reads a snapshot of its own, in
    a transaction or not, and BEGIN and ROLLBACK would be two more round trips."""
    if dialect == "postgresql":
        return {READ_ONLY: True, "isolation_level": "AUTOCOMMIT"}
    return {READ_ONLY: True}


@contextlib.asynccontextmanager
async def reading(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session that only reads (see reader_options)."""
    async with sessions() as session:
        assert session.bind is not None
        await session.connection(execution_options=reader_options(session.bind.dialect.name))
        yield session


@contextlib.asynccontextmanager
async def reading_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection of `engine` marked read-only (on SQLite it takes no write turn)."""
    async with engine.connect() as conn:
        await conn.execution_options(**{READ_ONLY: True})
        yield conn


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


def busy(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) is SQLite's answer to a write that waited its whole busy
    timeout for the writer queue or the write lock: a transient state, nothing written."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, sqlite3.OperationalError) and str(seen) == "database is locked":
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class WaitTimedPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's pool for asyncio engines, timing each checkout's wait for a connection
    (dueflow_db_pool_wait_seconds). `_do_get` is the pool's own step that takes a free connection,
    opens one, or waits for one to come back; SQLAlchemy has no event before it."""

    def _do_get(self) -> ConnectionPoolEntry:
        started = time.perf_counter()
        try:
            return super()._do_get()
        finally:
            POOL_WAIT_SECONDS.observe(time.perf_counter() - started)


def make_engine(url: str, pool_size: int | None = None) -> AsyncEngine:
    """An engine for `url`; SQLite gets WAL, foreign keys and write transactions that queue.
    `pool_size` keeps at most that many PostgreSQL connections (SQLAlchemy's default otherwise)."""
    target = async_url(url)
    if target.startswith("sqlite+aiosqlite:"):
        # LIFO: the next request gets the connection the last one used, whose page cache is
        # still warm (SQLite drops a connection's cache when another connection has written)
        engine = create_async_engine(
            target, module=sqlite_driver.dbapi(), pool_use_lifo=True, poolclass=WaitTimedPool
        )
        _configure_sqlite(engine)
    else:
        sized = {} if pool_size is None else {"pool_size": pool_size, "max_overflow": 0}
        engine = create_async_engine(
            target, json_deserializer=_json_value, poolclass=WaitTimedPool, **sized
        )
        _configure_postgresql(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
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
        # SQLAlchemy starts a SQLite transaction only through this hook (the DBAPI connection
        # is in autocommit mode), so this is where the driver is told which BEGIN to send
        driver = sqlite_driver.driver_of(connection.connection)
        options = connection.get_execution_options()
        if options.get(READ_ONLY, False):
            driver.begin_reading()
        elif options.get(IN_TURN, False):
            driver.begin_in_turn()
        else:
            driver.begin_writing()


def _configure_postgresql(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "checkout")
    def _closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # A restart or an idle timeout closes pooled connections under the server; asyncpg sees
        # the socket close, and the pool swaps such a connection for a fresh one. (The pool's
        # pre-ping would ask the server instead: three round trips before every unit of work.)
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("PostgreSQL closed this pooled connection")


def _json_value(text: str) -> Any:
    """A JSON value PostgreSQL sent: asyncpg decodes each as it arrives, three per listed task,
    and most are an empty list (no reminders, no exdates)."""
    return [] if text == "[]" else json.loads(text)
