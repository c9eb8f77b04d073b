"""Where a repository's statements run: the `Statements` port and its three SQL adapters.

A unit of work hands its repositories the one that fits what it was opened for:
`InTransaction` (a writing unit: everything at once, in its session's transaction),
`ReadConnection` (a read-only unit: one connection without a session) and `HeldInserts` (an
inserts-only unit: inserts kept for its commit, anything else refused).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.util import greenlet_spawn

from domain.adapters.sql import reader_options
from domain.adapters.writes import Row, Write
from domain.ports import UnitOfWorkMisuse

Parameters = Mapping[str, Any] | None


class Statements(Protocol):
    async def execute(
        self, statement: sa.Executable, parameters: Parameters = None
    ) -> sa.CursorResult[Any]:
        """Run `statement` (Core) and return its result."""
        ...

    async def insert(self, write: Write, rows: Sequence[Row]) -> None:
        """Insert `rows` (all with the same keys)."""
        ...

    async def update(self, write: Write, row: Row) -> int:
        """Run an UPDATE with `row`'s values; the number of rows it changed."""
        ...


class InTransaction:
    """Statements in a session's transaction, on the session's connection (the first one
    begins the transaction), as Core: rows map to plain domain objects, so the ORM's
    per-statement bookkeeping buys nothing."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def execute(
        self, statement: sa.Executable, parameters: Parameters = None
    ) -> sa.CursorResult[Any]:
        connection = await self.session.connection()
        return await connection.execute(statement, parameters)

    async def insert(self, write: Write, rows: Sequence[Row]) -> None:
        await write.run(await self.session.connection(), rows)

    async def update(self, write: Write, row: Row) -> int:
        return await write.run(await self.session.connection(), [row])


class ReadConnection:
    """A read-only unit of work's connection, without a session: each read is one greenlet
    (checking the connection out, at the first), where a session adds its transaction states
    and a greenlet for each of connection(), execute, rollback and close. It reads as
    sql.reading's sessions do: on SQLite a snapshot, on PostgreSQL outside a transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine.sync_engine
        self._connection: sa.Connection | None = None

    async def execute(
        self, statement: sa.Executable, parameters: Parameters = None
    ) -> sa.CursorResult[Any]:
        return await greenlet_spawn(self._execute, statement, parameters)

    def _execute(self, statement: sa.Executable, parameters: Parameters) -> sa.CursorResult[Any]:
        if self._connection is None:
            self._connection = self._engine.connect()
            self._connection.execution_options(**reader_options(self._engine.dialect.name))
        return self._connection.execute(statement, parameters)

    async def insert(self, write: Write, rows: Sequence[Row]) -> None:
        raise UnitOfWorkMisuse(f"an insert into {write.table.name} in a read-only unit of work")

    async def update(self, write: Write, row: Row) -> int:
        raise UnitOfWorkMisuse(f"an update of {write.table.name} in a read-only unit of work")

    async def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await greenlet_spawn(connection.close)


class HeldInserts:
    """An inserts-only unit of work's statements: its inserts wait in `rows` for the commit,
    which writes them with its events in one piece (writes.write_together). It reads nothing,
    so a read or an update here is a programming error, refused at once."""

    def __init__(self) -> None:
        self.rows: list[tuple[Write, Row]] = []

    async def execute(
        self, statement: sa.Executable, parameters: Parameters = None
    ) -> sa.CursorResult[Any]:
        raise UnitOfWorkMisuse(
            f"{type(statement).__name__} in an inserts-only unit of work, which can only insert"
        )

    async def insert(self, write: Write, rows: Sequence[Row]) -> None:
        self.rows.extend((write, row) for row in rows)

    async def update(self, write: Write, row: Row) -> int:
        raise UnitOfWorkMisuse(
            f"an update of {write.table.name} in an inserts-only unit of work, which can only"
            " insert"
        )
