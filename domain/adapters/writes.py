"""Write statements compiled once, and a unit of work's inserts written in one piece.

SQLAlchemy re-derives a statement's cache key, parameters and result on every execution; for
the one insert of an add that took longer than the database's own work. Compiled once per
column set, with the dialect's own bind processors, a statement goes to the database with its
values in order, and a failure is still SQLAlchemy's error, as from execute().

A unit of work that only adds rows (a new task and its event) holds its inserts back (`insert`)
and writes them at commit without SQLAlchemy's session or transaction bookkeeping
(`insert_together`): on PostgreSQL as one statement, the earlier inserts in WITH clauses, which
PostgreSQL runs atomically outside a transaction block (one round trip, where BEGIN, two INSERTs
and COMMIT were four); on SQLite as one transaction handed to the driver whole. Anything else
the unit runs first starts its transaction, and the held-back inserts go ahead of it
(`_insert_pending`), so a unit of work reads its own writes in order.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.util import await_only, greenlet_spawn

# session.info key: the inserts a unit of work holds back until its commit
PENDING = "dueflow_pending_inserts"

Compiled = tuple[str, tuple[str, ...], dict[str, Any]]  # SQL, parameter order, bind processors
Pending = list[tuple["Write", dict[str, Any]]]


def _compile(statement: Any, dialect: Any, keys: list[str] | None = None) -> Compiled:
    compiled = statement.compile(dialect=dialect, column_keys=keys)
    return str(compiled), tuple(compiled.positiontup or ()), dict(compiled._bind_processors)


def _ordered(compiled: Compiled, values: dict[str, Any]) -> tuple[Any, ...]:
    _sql, order, processors = compiled
    return tuple(processors[k](values[k]) if k in processors else values[k] for k in order)


class Write:
    """An INSERT or UPDATE run with its compiled form (see the module's docstring)."""

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self.table: sa.Table = statement.table
        self._compiled: dict[tuple[str, tuple[str, ...]], Compiled] = {}  # by dialect, keys

    async def run(self, session: AsyncSession, rows: list[dict[str, Any]]) -> int:
        """Run it for each of `rows` (all with the same keys); the rows it touched."""
        connection = await session.connection()
        compiled = self.compiled(connection.dialect, tuple(rows[0]))
        values = [_ordered(compiled, row) for row in rows]
        many = len(values) > 1
        if connection.dialect.name != "sqlite":
            result = await connection.exec_driver_sql(compiled[0], values if many else values[0])
            return int(result.rowcount)
        # on SQLite the statement goes to the driver's connection (domain/adapters/sqlite_driver)
        # in the transaction the session began
        driver: Any = (await connection.get_raw_connection()).driver_connection
        try:
            outcome = await driver.statement(compiled[0], values if many else values[0], many)
        except sqlite3.Error as exc:
            raise sa.exc.DBAPIError.instance(compiled[0], values, exc, sqlite3.Error) from exc
        return int(outcome[2])

    def compiled(self, dialect: Any, keys: tuple[str, ...]) -> Compiled:
        found = self._compiled.get((dialect.name, keys))
        if found is None:
            compiled = _compile(self.statement, dialect, list(keys))
            found = self._compiled[dialect.name, keys] = compiled
        return found


async def insert(session: AsyncSession, write: Write, row: dict[str, Any]) -> None:
    """Insert `row` now, or at the unit of work's commit if it holds its inserts back."""
    pending: Pending | None = session.info.get(PENDING)
    if pending is not None and not session.in_transaction():
        pending.append((write, row))
    else:
        await write.run(session, [row])


# PostgreSQL only: by the writes (their ids) and column sets of the rows
_TOGETHER: dict[tuple[tuple[int, tuple[str, ...]], ...], Compiled] = {}


async def insert_together(engine: AsyncEngine, rows: Pending) -> None:
    """Insert every (write, row) of `rows`, in order, all or nothing (see the module's doc)."""
    # one greenlet for the checkout, the write and the return to the pool, where the async
    # connection's API would take three (and a task for its shielded close)
    await greenlet_spawn(_insert_together, engine.sync_engine, rows)


def _insert_together(engine: sa.Engine, rows: Pending) -> None:
    with engine.connect() as connection:
        if connection.dialect.name != "sqlite":
            connection.execution_options(isolation_level="AUTOCOMMIT")
            compiled = _together(connection.dialect, rows)
            values = {f"w{i}_{k}": v for i, (_, row) in enumerate(rows) for k, v in row.items()}
            connection.exec_driver_sql(compiled[0], _ordered(compiled, values))
            return
        statements = []
        for write, row in rows:
            compiled = write.compiled(connection.dialect, tuple(row))
            statements.append((compiled[0], _ordered(compiled, row)))
        driver: Any = connection.connection.driver_connection
        try:
            await_only(driver.write(statements))
        except sqlite3.Error as exc:
            raise sa.exc.DBAPIError.instance(None, None, exc, sqlite3.Error) from exc


def _together(dialect: Any, rows: Pending) -> Compiled:
    """One INSERT of the last row, the others' INSERTs in WITH clauses (PostgreSQL)."""
    signature = tuple((id(write), tuple(row)) for write, row in rows)
    compiled = _TOGETHER.get(signature)
    if compiled is None:
        statements = [
            sa.insert(write.table).values(
                {key: sa.bindparam(f"w{i}_{key}", type_=write.table.c[key].type) for key in row}
            )
            for i, (write, row) in enumerate(rows)
        ]
        *earlier, last = statements
        together = last.add_cte(*(s.cte(f"w{i}") for i, s in enumerate(earlier)))
        compiled = _TOGETHER[signature] = _compile(together, dialect)
    return compiled


@event.listens_for(Session, "after_begin")
def _insert_pending(session: Session, _transaction: Any, connection: Any) -> None:
    # Something else runs in the unit of work before its commit: the held-back inserts go first
    pending: Pending | None = session.info.get(PENDING)
    if pending:
        held, pending[:] = list(pending), []
        for write, row in held:
            compiled = write.compiled(connection.dialect, tuple(row))
            connection.exec_driver_sql(compiled[0], _ordered(compiled, row))
