"""The audit worker: appends every event once to the per-user audit log."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from domain.adapters.tables import AuditEntryRow
from domain.events import TOPIC_REMINDERS, TOPIC_TASK_EVENTS
from workers.consumer import Consumer, Outcome, Received

AUDIT = SQLModel.metadata.tables[AuditEntryRow.__tablename__]
# one statement object, so SQLAlchemy compiles it once and only binds parameters per event
_APPEND = sa.insert(AUDIT)


async def record(event: Received, session: AsyncSession) -> Outcome:
    """Append the event; a stale one is history too, so it is recorded all the same."""
    envelope = event.envelope
    changes = envelope["payload"].get("changes") or {}
    metadata = envelope.get("metadata") or {}
    await session.execute(
        _APPEND,
        {
            "event_id": event.event_id,
            "user_id": event.user_id,
            "task_id": event.task_id,
            "event_type": event.event_type,
            "sequence": event.sequence,
            "occurred_at": dt.datetime.fromisoformat(envelope["timestamp"]),
            "recorded_at": dt.datetime.now(dt.UTC),
            "changes": changes,
            "correlation_id": metadata.get("correlation_id"),
        },
    )
    return Outcome.SUCCESS


AUDIT_CONSUMER = Consumer(
    name="audit", handlers={TOPIC_TASK_EVENTS: record, TOPIC_REMINDERS: record}
)
