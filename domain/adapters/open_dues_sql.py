"""OpenDues in SQL: the two reads of the turn schedule (domain.turns), each a range of the
tasks' (user_id, status, due_at) index, whatever the number of the user's open tasks."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.adapters.sql import reading_connection
from domain.adapters.tables import TaskRow
from domain.model import Status

T = TaskRow.__table__.c  # type: ignore[attr-defined]
# an all-day date's due_at is its midnight in the task's zone: within a day of the date's
# midnight in UTC, whichever zone, so a range on due_at finds the dates asked for
_ZONES_APART = dt.timedelta(days=1)


class SqlOpenDues:
    """Reads when a user's open tasks fall due, on `engine`'s read-only connections."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def next_due(self, user_id: str, at_or_after: dt.datetime) -> dt.datetime | None:
        query = (
            sa.select(T.due_at)
            .where(
                T.user_id == user_id,
                T.status == Status.OPEN.value,
                T.due_at >= at_or_after,
                T.due_all_day.is_(False),
            )
            .order_by(T.due_at)
            .limit(1)
        )
        async with reading_connection(self._engine) as conn:
            found = (await conn.execute(query)).scalar()
        return found if isinstance(found, dt.datetime) else None

    async def fell_due(
        self,
        user_id: str,
        since: dt.datetime,
        until: dt.datetime,
        days: tuple[dt.date, dt.date],
        limit: int,
    ) -> list[str]:
        first, last = days
        ranges = [sa.and_(T.due_all_day.is_(False), T.due_at >= since, T.due_at < until)]
        if first < last:
            midnight = dt.time(tzinfo=dt.UTC)
            ranges.append(
                sa.and_(
                    T.due_all_day.is_(True),
                    T.due_at >= dt.datetime.combine(first, midnight) - _ZONES_APART,
                    T.due_at < dt.datetime.combine(last, midnight) + _ZONES_APART,
                    T.due_date >= first,
                    T.due_date < last,
                )
            )
        found: list[tuple[dt.datetime, str]] = []
        # a read per range rather than one OR of both: each stays a range of the index
        async with reading_connection(self._engine) as conn:
            for where in ranges:
                query = (
                    sa.select(T.due_at, T.id)
                    .where(T.user_id == user_id, T.status == Status.OPEN.value, where)
                    .order_by(T.due_at, T.id)
                    .limit(limit)
                )
                found.extend((due, str(task_id)) for due, task_id in await conn.execute(query))
        return [task_id for _, task_id in sorted(found)[:limit]]
