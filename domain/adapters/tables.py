"""SQLModel tables: tasks and their tags, the outbox, idempotency keys, consumers, audit, leases."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in and out, on SQLite (which keeps no zone) as on PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def _utc(nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


class TaskRow(SQLModel, table=True):
    __tablename__ = "tasks"
    __table_args__ = (
        sa.Index("ix_tasks_user_status_created", "user_id", "status", "created_at", "id"),
        sa.Index("ix_tasks_user_status_due", "user_id", "status", "due_at"),
        sa.Index(
            "ix_tasks_user_status_priority_created",
            "user_id",
            "status",
            "priority_rank",
            "created_at",
            "id",
        ),
        sa.Index("ix_tasks_user_status_updated", "user_id", "status", "updated_at"),
        sa.Index("ix_tasks_user_series", "user_id", "series_id"),
    )

    id: str = Field(primary_key=True, max_length=36)
    user_id: str = Field(max_length=200)
    title: str = Field(max_length=500)
    description: str = Field(default="", sa_type=sa.Text)
    status: str = Field(max_length=16)
    priority_rank: int = Field(default=0)
    tags: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    due_at: dt.datetime | None = _utc(nullable=True)
    due_date: dt.date | None = Field(default=None)
    due_all_day: bool = Field(default=False)
    timezone: str | None = Field(default=None, max_length=64)
    reminders: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    recurrence_rule: str | None = Field(default=None, sa_type=sa.Text)
    recurrence_anchor: str | None = Field(default=None, max_length=16)
    series_id: str | None = Field(default=None, max_length=36)
    occurrence: int = Field(default=1)
    recurrence_start: str | None = Field(default=None, max_length=32)
    recurrence_exdates: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    recurred_from: str | None = Field(default=None, max_length=36)
    recurred_to: str | None = Field(default=None, max_length=36)
    series_ended: bool = Field(default=False)
    created_at: dt.datetime = _utc()
    updated_at: dt.datetime = _utc()
    completed_at: dt.datetime | None = _utc(nullable=True)
    deleted_at: dt.datetime | None = _utc(nullable=True)
    version: int = Field(default=1)


class TaskTagRow(SQLModel, table=True):
    """One row per tag of a task, for the tag filters; triggers derive it from tasks.tags
    (migration 0006), so nothing writes it directly. It carries its task's status, priority
    and creation time (0007): a listing by tag reads its page in creation order off one index."""

    __tablename__ = "task_tags"
    __table_args__ = (
        sa.Index(
            "ix_task_tags_listing",
            "user_id",
            "tag",
            "status",
            "priority_rank",
            "created_at",
            "task_id",
        ),
    )

    task_id: str = Field(
        primary_key=True,
        max_length=36,
        sa_column_args=[sa.ForeignKey("tasks.id", ondelete="CASCADE")],
    )
    tag: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(max_length=200)
    status: str | None = Field(default=None, max_length=16)
    priority_rank: int | None = None
    created_at: dt.datetime | None = _utc(nullable=True)


class OutboxRow(SQLModel, table=True):
    """One committed event waiting for (or done with) publication."""

    __tablename__ = "outbox"
    __table_args__ = (
        sa.Index("ix_outbox_pending", "published_at", "id"),
        sa.Index("ix_outbox_task", "task_id", "id"),
    )

    id: int | None = Field(
        default=None, primary_key=True, sa_type=sa.BigInteger().with_variant(sa.Integer, "sqlite")
    )
    event_id: str = Field(max_length=36, unique=True)
    event_type: str = Field(max_length=40)
    task_id: str = Field(max_length=36)
    user_id: str = Field(max_length=200)
    sequence: int
    payload: dict[str, Any] = Field(sa_type=sa.JSON)
    created_at: dt.datetime = _utc()
    published_at: dt.datetime | None = _utc(nullable=True)
    attempts: int = Field(default=0)
    next_attempt_at: dt.datetime | None = _utc(nullable=True)
    last_error: str | None = Field(default=None, sa_type=sa.Text)


class IdempotencyKeyRow(SQLModel, table=True):
    __tablename__ = "idempotency_keys"

    user_id: str = Field(primary_key=True, max_length=200)
    key: str = Field(primary_key=True, max_length=200)
    request_hash: str = Field(max_length=64)
    task_id: str = Field(max_length=36)
    created_at: dt.datetime = _utc()


class ProcessedEventRow(SQLModel, table=True):
    """The inbox: an event a consumer has applied, so a redelivery has no second effect."""

    __tablename__ = "processed_events"
    __table_args__ = (sa.Index("ix_processed_task", "consumer", "task_id", "sequence"),)

    consumer: str = Field(primary_key=True, max_length=64)
    event_id: str = Field(primary_key=True, max_length=36)
    task_id: str = Field(max_length=36)
    sequence: int
    processed_at: dt.datetime = _utc()


class DeadLetterRow(SQLModel, table=True):
    """An event a consumer could not apply, parked with its error until replayed."""

    __tablename__ = "dead_letters"
    __table_args__ = (sa.Index("ix_dead_letters_open", "replayed_at", "id"),)

    id: int | None = Field(
        default=None,
        primary_key=True,
        sa_type=sa.BigInteger().with_variant(sa.Integer, "sqlite"),
    )
    consumer: str = Field(max_length=64)
    topic: str = Field(max_length=64)
    event_id: str = Field(max_length=36)
    task_id: str = Field(max_length=36)
    envelope: dict[str, Any] = Field(sa_type=sa.JSON)
    error: str = Field(sa_type=sa.Text)
    attempts: int
    created_at: dt.datetime = _utc()
    replayed_at: dt.datetime | None = _utc(nullable=True)


class AuditEntryRow(SQLModel, table=True):
    """One event as the audit log keeps it: append-only."""

    __tablename__ = "audit_log"
    __table_args__ = (
        sa.Index("ix_audit_user_time", "user_id", "occurred_at", "id"),
        sa.Index("ix_audit_task_time", "task_id", "occurred_at", "id"),
        sa.Index("ix_audit_occurred", "occurred_at", "id"),
    )

    id: int | None = Field(
        default=None,
        primary_key=True,
        sa_type=sa.BigInteger().with_variant(sa.Integer, "sqlite"),
    )
    event_id: str = Field(max_length=36, unique=True)
    user_id: str = Field(max_length=200)
    task_id: str = Field(max_length=36)
    event_type: str = Field(max_length=40)
    sequence: int
    occurred_at: dt.datetime = _utc()
    recorded_at: dt.datetime = _utc()
    changes: dict[str, Any] = Field(sa_type=sa.JSON)
    correlation_id: str | None = Field(default=None, max_length=64)
    causation_id: str | None = Field(default=None, max_length=64)
    source: str | None = Field(default=None, max_length=100)
    task_title: str | None = Field(default=None, max_length=500)
    # payload keys beyond task and changes (e.g. a reminder event's `reminder`, `delivery`)
    details: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)


class LeaseRow(SQLModel, table=True):
    """A named lock that expires: at most one holder runs a periodic job at a time."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=100)
    holder: str = Field(max_length=200)
    expires_at: dt.datetime = _utc()


class ReminderRow(SQLModel, table=True):
    """One reminder of a task at one moment, as the reminders worker keeps its schedule."""

    __tablename__ = "reminder_schedule"
    __table_args__ = (
        sa.Index("ix_reminder_due", "state", "fire_at"),
        sa.Index("ix_reminder_user_due", "user_id", "state", "fire_at"),
        sa.Index("ix_reminder_task", "task_id"),
    )

    id: str = Field(primary_key=True, max_length=120)
    user_id: str = Field(max_length=200)
    task_id: str = Field(max_length=36)
    spec: str = Field(max_length=64)
    fire_at: dt.datetime = _utc()
    task_version: int
    state: str = Field(max_length=16)
    fired_at: dt.datetime | None = _utc(nullable=True)
    late: bool = Field(default=False)
    reason: str | None = Field(default=None, sa_type=sa.Text)
    updated_at: dt.datetime = _utc()


class NotificationDeliveryRow(SQLModel, table=True):
    """One triggered reminder on one channel: delivered once, retried, or dead with its error."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "channel", name="uq_delivery_event_channel"),
        sa.Index("ix_delivery_pending", "status", "next_attempt_at"),
        sa.Index("ix_delivery_user", "user_id", "created_at"),
    )

    id: int | None = Field(
        default=None,
        primary_key=True,
        sa_type=sa.BigInteger().with_variant(sa.Integer, "sqlite"),
    )
    event_id: str = Field(max_length=36)
    channel: str = Field(max_length=32)
    user_id: str = Field(max_length=200)
    task_id: str = Field(max_length=36)
    reminder_id: str = Field(max_length=120)
    message: dict[str, Any] = Field(sa_type=sa.JSON)
    status: str = Field(max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: dt.datetime | None = _utc(nullable=True)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    created_at: dt.datetime = _utc()
    delivered_at: dt.datetime | None = _utc(nullable=True)
    # a dispatcher's lease on the row while it delivers it: no other replica takes it meanwhile
    claimed_by: str | None = Field(default=None, max_length=36)
    claimed_until: dt.datetime | None = _utc(nullable=True)


class AccessTokenRow(SQLModel, table=True):
    """A personal access token: the salted hash of its secret, never the secret (domain.access)."""

    __tablename__ = "access_tokens"
    __table_args__ = (sa.Index("ix_access_tokens_user", "user_id", "created_at"),)

    id: str = Field(primary_key=True, max_length=16)
    user_id: str = Field(max_length=200)
    name: str = Field(default="", max_length=100)
    scopes: str = Field(max_length=100)  # space-separated
    salt: str = Field(max_length=32)
    digest: str = Field(max_length=64)
    created_at: dt.datetime = _utc()
    expires_at: dt.datetime | None = _utc(nullable=True)
    revoked_at: dt.datetime | None = _utc(nullable=True)
    last_used_at: dt.datetime | None = _utc(nullable=True)


class AccessLogRow(SQLModel, table=True):
    """Who created, revoked or was refused which token, and when (never a secret)."""

    __tablename__ = "access_log"
    __table_args__ = (sa.Index("ix_access_log_user", "user_id", "at"),)

    id: int | None = Field(
        default=None,
        primary_key=True,
        sa_type=sa.BigInteger().with_variant(sa.Integer, "sqlite"),
    )
    at: dt.datetime = _utc(index=True)
    action: str = Field(max_length=16)
    token_id: str | None = Field(default=None, max_length=16)
    user_id: str | None = Field(default=None, max_length=200)
    detail: str = Field(default="", max_length=200)


class CalendarLinkRow(SQLModel, table=True):
    """An iCalendar UID imported for a user, the task it became, and the SEQUENCE and
    LAST-MODIFIED it was imported at (domain.calendar)."""

    __tablename__ = "calendar_links"
    __table_args__ = (sa.Index("ix_calendar_links_task", "user_id", "task_id"),)

    user_id: str = Field(primary_key=True, max_length=200)
    uid: str = Field(primary_key=True, max_length=255)
    task_id: str = Field(max_length=36)
    sequence: int = Field(default=0)
    last_modified: dt.datetime | None = _utc(nullable=True)
    task_version: int = Field(default=1)  # the task's version when the UID last wrote it


class CalendarFeedRow(SQLModel, table=True):
    """A private calendar feed URL: the salted hash of its secret, never the secret."""

    __tablename__ = "calendar_feeds"
    __table_args__ = (sa.Index("ix_calendar_feeds_user", "user_id", "created_at"),)

    id: str = Field(primary_key=True, max_length=16)
    user_id: str = Field(max_length=200)
    name: str = Field(default="", max_length=100)
    salt: str = Field(max_length=32)
    digest: str = Field(max_length=64)
    events: bool = Field(default=False)  # also answer the tasks as VEVENTs
    token_id: str | None = Field(default=None, max_length=16)  # the personal token that made it
    created_at: dt.datetime = _utc()
    revoked_at: dt.datetime | None = _utc(nullable=True)


class CalendarRenderRow(SQLModel, table=True):
    """A task's component as a calendar feed shows it, written by the icalendar library and
    kept so a feed renders only what changed (domain.adapters.calendar_renders): valid while
    its fingerprint (the task's version, its calendar stamp and the form) still matches."""

    __tablename__ = "calendar_renders"

    user_id: str = Field(primary_key=True, max_length=200)
    task_id: str = Field(primary_key=True, max_length=36)
    form: str = Field(primary_key=True, max_length=8)  # vtodo, or vevent for events feeds
    fingerprint: str = Field(max_length=64)
    text: str = Field(sa_type=sa.Text)
    tzids: str = Field(default="", sa_type=sa.Text)  # the TZIDs it names, comma-separated
    first_day: dt.date | None = Field(default=None)  # what its zones' VTIMEZONEs must cover
    last_day: dt.date | None = Field(default=None)


class RealtimeChangeRow(SQLModel, table=True):
    """One change as the realtime gateway sends it, at its place in its user's feed: a client
    that reconnects with the last position it saw is sent every row after it (workers.realtime)."""

    __tablename__ = "realtime_changes"
    __table_args__ = (sa.Index("ix_realtime_task", "task_id", "topic", "sequence"),)

    user_id: str = Field(primary_key=True, max_length=200)
    position: int = Field(primary_key=True, sa_type=sa.BigInteger)
    event_id: str = Field(max_length=36, unique=True)
    task_id: str = Field(max_length=36)
    topic: str = Field(max_length=32)
    sequence: int
    message: str = Field(sa_type=sa.Text)  # the JSON text sent, position included
    created_at: dt.datetime = _utc()


class RealtimeHeadRow(SQLModel, table=True):
    """The last position given in a user's feed; its row lock orders the user's changes."""

    __tablename__ = "realtime_heads"

    user_id: str = Field(primary_key=True, max_length=200)
    position: int = Field(sa_type=sa.BigInteger)


class RealtimeGrantRow(SQLModel, table=True):
    """A WebSocket ticket, a board session or a sign-in link: only a hash of its secret is kept,
    and the personal token that issued it (if one did), which must still be active."""

    __tablename__ = "realtime_grants"
    __table_args__ = (sa.Index("ix_realtime_grants_expiry", "expires_at"),)

    digest: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=16)  # ticket | session | signin
    user_id: str = Field(max_length=200)
    token_id: str | None = Field(default=None, max_length=16)
    created_at: dt.datetime = _utc()
    expires_at: dt.datetime = _utc()
    used_at: dt.datetime | None = _utc(nullable=True)
