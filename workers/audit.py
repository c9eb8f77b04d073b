"""The audit worker: appends every event once to the per-user audit log.

An entry keeps who (user, and the `source` that made the change: the MCP server, the recurrence
worker, ...), when (occurred and recorded), what (event type, sequence, field-level changes) and
why (correlation and causation ids). Payload keys beyond `task` and `changes` — a reminder event's
`reminder` or `delivery`, say — are kept as `details`, whatever the event type, so event types
added later are recorded without a change here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from domain.adapters.metrics import AUDIT_ENTRIES, count_after_commit
from domain.adapters.tables import AuditEntryRow
from domain.clock import SystemClock
from domain.events import TOPIC_REMINDERS, TOPIC_TASK_EVENTS
from domain.ports import Clock
from workers.consumer import Consumer, MalformedEvent, Outcome, Received

NAME = "audit"
AUDIT = SQLModel.metadata.tables[AuditEntryRow.__tablename__]
# one statement object, so SQLAlchemy compiles it once and only binds parameters per event
_APPEND = sa.insert(AUDIT)
_PAYLOAD_CORE = frozenset({"task", "changes"})
MAX_TITLE = 500


def entry_values(event: Received, recorded_at: dt.datetime) -> dict[str, Any]:
    """The audit_log row of `event`."""
    envelope = event.envelope
    payload = envelope["payload"]
    metadata = envelope.get("metadata") or {}
    task = payload.get("task")
    title = task.get("title") if isinstance(task, dict) else None
    changes = payload.get("changes")
    details = {key: value for key, value in payload.items() if key not in _PAYLOAD_CORE}
    return {
        "event_id": event.event_id,
        "user_id": event.user_id,
        "task_id": event.task_id,
        "event_type": event.event_type,
        "sequence": event.sequence,
        "occurred_at": _occurred_at(envelope.get("timestamp")),
        "recorded_at": recorded_at,
        "changes": changes if isinstance(changes, dict) else {},
        "correlation_id": _short(metadata.get("correlation_id"), 64),
        "causation_id": _short(metadata.get("causation_id"), 64),
        "source": _short(metadata.get("source"), 100),
        "task_title": _short(title, MAX_TITLE),
        "details": details or None,
    }


def audit_consumer(clock: Clock) -> Consumer:
    """The audit consumer; `clock` stamps each entry's recorded time."""

    async def record(event: Received, session: AsyncSession) -> Outcome:
        """Append the event; a stale one is history too, so it is recorded all the same."""
        await session.execute(_APPEND, entry_values(event, clock.now()))
        count_after_commit(session, AUDIT_ENTRIES)
        return Outcome.SUCCESS

    async def record_all(events: Sequence[Received], session: AsyncSession) -> Outcome:
        """Append a batch's events in one statement (bench_events.py: one round trip per
        event was the audit consumer's cost)."""
        now = clock.now()
        await session.execute(_APPEND, [entry_values(event, now) for event in events])
        count_after_commit(session, AUDIT_ENTRIES, len(events))
        return Outcome.SUCCESS

    return Consumer(
        name=NAME,
        handlers={TOPIC_TASK_EVENTS: record, TOPIC_REMINDERS: record},
        batch=record_all,
    )


AUDIT_CONSUMER = audit_consumer(SystemClock())


def _occurred_at(timestamp: Any) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(str(timestamp))
    except ValueError:
        raise MalformedEvent(f"timestamp {timestamp!r} is not RFC 3339") from None
    if moment.tzinfo is None:
        raise MalformedEvent(f"timestamp {timestamp!r} has no UTC offset")
    return moment


def _short(value: Any, limit: int) -> str | None:
    return None if value is None else str(value)[:limit]
