"""The audit log in SQL: the history read model, and the one way entries leave it (retention)."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import SQLModel

from domain.adapters.sql import reading
from domain.adapters.tables import AuditEntryRow, UTCDateTime
from domain.history import HistoryEntry, HistoryPage, HistoryQuery
from domain.ports import EventuallyConsistent, ViewFreshness

AUDIT = SQLModel.metadata.tables[AuditEntryRow.__tablename__]
A = AUDIT.c
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class SqlHistory:
    """Reads the audit log; every query is scoped to the query's user."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], views: ViewFreshness | None = None
    ) -> None:
        self._sessions = sessions
        # the audit consumer writes the log: with `views`, a user's read waits for the user's
        # own events to reach it (the API process, embedded)
        self._views = views or EventuallyConsistent()

    async def history(self, query: HistoryQuery) -> HistoryPage:
        await self._views.caught_up(query.user_id)
        after = query.position()
        statement = sa.select(AUDIT).where(A.user_id == query.user_id)
        if query.task_id is not None:
            statement = statement.where(A.task_id == query.task_id)
        if query.since is not None:
            statement = statement.where(A.occurred_at >= query.since)
        if query.until is not None:
            statement = statement.where(A.occurred_at < query.until)
        if after is not None:
            moment, entry_id = after
            # typed as the column is, so SQLite compares the same UTC text it stores
            key = sa.tuple_(sa.literal(moment, UTCDateTime()), sa.literal(entry_id, BIGINT))
            statement = statement.where(sa.tuple_(A.occurred_at, A.id) < key)
        # newest first; entries of one moment in the order they were recorded, newest first
        statement = statement.order_by(A.occurred_at.desc(), A.id.desc()).limit(query.limit + 1)
        async with reading(self._sessions) as session:
            found = [entry_of(row) for row in (await session.execute(statement)).all()]
        return query.page(found)


async def delete_older_than(
    sessions: async_sessionmaker[AsyncSession], cutoff: dt.datetime, batch: int
) -> int:
    """Delete up to `batch` entries that occurred before `cutoff`, oldest first, in one
    transaction; answer how many went. Retention is the only caller."""
    oldest = (
        sa.select(A.id).where(A.occurred_at < cutoff).order_by(A.occurred_at, A.id).limit(batch)
    )
    async with sessions() as session, session.begin():
        result = await session.execute(sa.delete(AUDIT).where(A.id.in_(oldest.scalar_subquery())))
    return int(cast(sa.CursorResult[Any], result).rowcount)


def entry_of(row: Any) -> HistoryEntry:
    """A history entry from an `audit_log` row."""
    return HistoryEntry(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        user_id=row.user_id,
        task_id=row.task_id,
        task_title=row.task_title,
        sequence=row.sequence,
        occurred_at=row.occurred_at,
        recorded_at=row.recorded_at,
        changes=dict(row.changes or {}),
        source=row.source,
        correlation_id=row.correlation_id,
        causation_id=row.causation_id,
        details=dict(row.details or {}),
    )
