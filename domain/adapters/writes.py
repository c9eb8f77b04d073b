"""Write statements compiled once, and inserts written in one piece.

SQLAlchemy re-derives a statement's cache key, parameters and result on every execution, which
for a single-row insert costs more than the database's own work. Compiled once per column set,
with the dialect's own bind processors, a `Write` goes to the database with its values in
order, and a failure is still SQLAlchemy's error, as from execute().

`write_together` is an inserts-only unit of work's commit (unit_of_work.py): its rows, all or
nothing, without a session. On PostgreSQL it is one statement, the earlier inserts in WITH
clauses, which PostgreSQL runs atomically outside a transaction block: one round trip instead
of BEGIN, the inserts and COMMIT. On SQLite it is one call into the driver, which runs the
whole transaction (sqlite_driver.OneHopConnection.write).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.util import await_only, greenlet_spawn

from domain.adapters.sqlite_driver import driver_of

Compiled = tuple[str, tuple[str, ...], dict[str, Any]]  # SQL, parameter order, bind processors
Row = dict[str, Any]


def _compile(statement: Any, dialect: Any, keys: list[str] | None = None) -> Compiled:
    compiled = statement.compile(dialect=dialect, column_keys=keys)
    return str(compiled), tuple(compiled.positiontup or ()), dict(compiled._bind_processors)


def _ordered(compiled: Compiled, values: Row) -> tuple[Any, ...]:
    _sql, order, processors = compiled
    return tuple(processors[k](values[k]) if k in processors else values[k] for k in order)


class Write:
    """An INSERT or UPDATE run with its compiled form (see the module's docstring)."""

    def __init__(self, statement: sa.Insert | sa.Update) -> None:
        assert isinstance(statement.table, sa.Table)
        self.statement = statement
        self.table: sa.Table = statement.table
        self._compiled: dict[tuple[str, tuple[str, ...]], Compiled] = {}  # by dialect, keys

    async def run(self, connection: AsyncConnection, rows: Sequence[Row]) -> int:
        """Run it for each of `rows` (all with the same keys) in the connection's transaction;
        the number of rows it touched."""
        compiled = self.compiled(connection.dialect, tuple(rows[0]))
        values = [_ordered(compiled, row) for row in rows]
        many = len(values) > 1
        if connection.dialect.name != "sqlite":
            result = await connection.exec_driver_sql(compiled[0], values if many else values[0])
            return int(result.rowcount)
        # SQLite: straight to the driver, whose statement() returns what SQLAlchemy's cursor
        # would have read from it
        driver = driver_of(await connection.get_raw_connection())
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


Inserts = Sequence[tuple[Write, Row]]
# PostgreSQL only: by the writes (their ids) and column sets of the rows
_TOGETHER: dict[tuple[tuple[int, tuple[str, ...]], ...], Compiled] = {}


async def write_together(engine: AsyncEngine, inserts: Inserts) -> None:
    """Insert every (write, row) of `inserts`, in order, all or nothing (see the module's doc)."""
    # one greenlet for the checkout, the write and the return to the pool, where the async
    # connection's API would take three (and a task for its shielded close)
    await greenlet_spawn(_write_together, engine.sync_engine, inserts)


def _write_together(engine: sa.Engine, inserts: Inserts) -> None:
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            statements = []
            for write, row in inserts:
                compiled = write.compiled(connection.dialect, tuple(row))
                statements.append((compiled[0], _ordered(compiled, row)))
            try:
                await_only(driver_of(connection.connection).write(statements))
            except sqlite3.Error as exc:
                raise sa.exc.DBAPIError.instance(None, None, exc, sqlite3.Error) from exc
            return
        connection.execution_options(isolation_level="AUTOCOMMIT")
        compiled = _together(connection.dialect, inserts)
        values = {f"w{i}_{k}": v for i, (_, row) in enumerate(inserts) for k, v in row.items()}
        connection.exec_driver_sql(compiled[0], _ordered(compiled, values))


def _together(dialect: Any, inserts: Inserts) -> Compiled:
    """One INSERT of the last row, the others' INSERTs in WITH clauses (PostgreSQL)."""
    signature = tuple((id(write), tuple(row)) for write, row in inserts)
    compiled = _TOGETHER.get(signature)
    if compiled is None:
        statements = [
            sa.insert(write.table).values(
                {key: sa.bindparam(f"w{i}_{key}", type_=write.table.c[key].type) for key in row}
            )
            for i, (write, row) in enumerate(inserts)
        ]
        *earlier, last = statements
        together = last.add_cte(*(s.cte(f"w{i}") for i, s in enumerate(earlier)))
        compiled = _TOGETHER[signature] = _compile(together, dialect)
    return compiled
