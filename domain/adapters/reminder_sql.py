"""The reminder schedule on SQL: the `reminder_schedule` table behind ReminderRepository."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel

from domain.adapters.statements import Statements
from domain.adapters.tables import ReminderRow
from domain.adapters.writes import Write
from domain.reminder_schedule import ReminderState, ScheduledReminder

SCHEDULE = SQLModel.metadata.tables[ReminderRow.__tablename__]
_PENDING = ReminderState.PENDING.value
_INSERT = Write(sa.insert(SCHEDULE))


class SqlReminderRepository:
    """Rows read and written through a unit of work's statements; the unit of work (or the
    consumer's inbox transaction) commits."""

    transactional = True

    def __init__(self, statements: Statements) -> None:
        self._statements = statements

    async def get(self, reminder_id: str) -> ScheduledReminder | None:
        query = sa.select(SCHEDULE).where(SCHEDULE.c.id == reminder_id)
        row = (await self._statements.execute(query)).mappings().first()
        return _to_reminder(row) if row else None

    async def for_task(self, task_id: str) -> list[ScheduledReminder]:
        query = sa.select(SCHEDULE).where(SCHEDULE.c.task_id == task_id).order_by(SCHEDULE.c.id)
        return [_to_reminder(r) for r in (await self._statements.execute(query)).mappings()]

    async def put(self, reminder: ScheduledReminder, now: dt.datetime) -> None:
        values = _row_values(reminder, now)
        updated = await self._statements.execute(
            sa.update(SCHEDULE).where(SCHEDULE.c.id == reminder.id).values(**values)
        )
        if updated.rowcount == 0:
            await self._statements.execute(sa.insert(SCHEDULE).values(id=reminder.id, **values))

    async def put_many(self, reminders: Sequence[ScheduledReminder], now: dt.datetime) -> None:
        # two statements for any number of rows, where put() takes up to two per row: a task's
        # reconciliation writes all its reminders at once (bench_fairness.py: 20 per task)
        if not reminders:
            return
        ids = [reminder.id for reminder in reminders]
        await self._statements.execute(sa.delete(SCHEDULE).where(SCHEDULE.c.id.in_(ids)))
        rows = [{"id": r.id, **_row_values(r, now)} for r in reminders]
        await self._statements.insert(_INSERT, rows)

    async def transition(
        self, reminder: ScheduledReminder, expected: ReminderState, now: dt.datetime
    ) -> bool:
        # the state in the WHERE makes this the guard: of two replicas firing one reminder, the
        # second finds the row no longer pending (PostgreSQL re-checks it after the first commits)
        result = await self._statements.execute(
            sa.update(SCHEDULE)
            .where(SCHEDULE.c.id == reminder.id, SCHEDULE.c.state == expected.value)
            .values(**_row_values(reminder, now))
        )
        return result.rowcount == 1

    async def due(self, now: dt.datetime, limit: int) -> list[ScheduledReminder]:
        query = (
            sa.select(SCHEDULE)
            .where(SCHEDULE.c.state == _PENDING, SCHEDULE.c.fire_at <= now)
            .order_by(SCHEDULE.c.fire_at, SCHEDULE.c.id)
            .limit(limit)
        )
        return [_to_reminder(r) for r in (await self._statements.execute(query)).mappings()]

    async def next_moment(self) -> dt.datetime | None:
        query = sa.select(sa.func.min(SCHEDULE.c.fire_at)).where(SCHEDULE.c.state == _PENDING)
        value = (await self._statements.execute(query)).scalar()
        if value is None:
            return None
        # an aggregate bypasses the column type on SQLite: it comes back naive (UTC) or as text
        moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
        return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment

    async def upcoming(
        self, user_id: str, until: dt.datetime, limit: int
    ) -> list[ScheduledReminder]:
        query = (
            sa.select(SCHEDULE)
            .where(
                SCHEDULE.c.user_id == user_id,
                SCHEDULE.c.state == _PENDING,
                SCHEDULE.c.fire_at <= until,
            )
            .order_by(SCHEDULE.c.fire_at, SCHEDULE.c.id)
            .limit(limit)
        )
        return [_to_reminder(r) for r in (await self._statements.execute(query)).mappings()]


def _row_values(reminder: ScheduledReminder, now: dt.datetime) -> dict[str, Any]:
    return {
        "user_id": reminder.user_id,
        "task_id": reminder.task_id,
        "spec": reminder.spec,
        "fire_at": reminder.fire_at,
        "task_version": reminder.task_version,
        "state": reminder.state.value,
        "fired_at": reminder.fired_at,
        "late": reminder.late,
        "reason": reminder.reason,
        "updated_at": now,
    }


def _to_reminder(row: Any) -> ScheduledReminder:
    return ScheduledReminder(
        id=row["id"],
        user_id=row["user_id"],
        task_id=row["task_id"],
        spec=row["spec"],
        fire_at=row["fire_at"],
        task_version=row["task_version"],
        state=ReminderState(row["state"]),
        fired_at=row["fired_at"],
        late=bool(row["late"]),
        reason=row["reason"],
    )
