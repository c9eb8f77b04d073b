"""The schema revision this code needs (HEAD) and the one a database is at, read without Alembic.

Nearly every start opens a database already at HEAD; reading its revision with one query spares
that start the migration machinery (Alembic, and Mako and Pygments behind it), which only
domain.adapters.schema loads, to migrate.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

HEAD = "0011"
"""The newest migration's revision; a new migration moves it (a test checks it is Alembic's)."""
VERSION_TABLE = "alembic_version"  # where Alembic records the revision, in its one column


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database's schema is at; None for a database never migrated."""
    async with engine.connect() as connection:
        return await connection.run_sync(_recorded_revision)


def _recorded_revision(connection: Connection) -> str | None:
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return None
    query = sa.select(sa.column("version_num", sa.String)).select_from(sa.table(VERSION_TABLE))
    return connection.execute(query).scalar_one_or_none()
