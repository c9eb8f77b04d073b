"""The notification dispatcher: delivers pending deliveries, retries with backoff, dead-letters.

A row is claimed by a conditional UPDATE that only takes rows nobody holds a live lease on
(FOR UPDATE SKIP LOCKED on PostgreSQL spares replicas waiting on each other), so several
dispatchers never deliver one row at the same time. Delivery runs outside any transaction; a
dispatcher that dies mid-delivery leaves its lease to expire and the row is delivered again
(at least once: webhook receivers dedupe on X-Dueflow-Event-Id).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from domain.adapters.foreground import Foreground
from domain.adapters.metrics import NOTIFICATION_SECONDS, NOTIFICATIONS, declare_channels
from domain.adapters.polling import poll
from domain.adapters.sql import reading
from domain.adapters.unit_of_work import JoinedUnitOfWork
from domain.backoff import Backoff
from domain.channels import Channel, DeliveryFailed, LogChannel, Notification, Sent
from domain.events import EventType, TaskEvent
from domain.ports import Clock
from workers.address_guard import AddressGuard
from workers.notifications import (
    DEAD,
    DELIVERED,
    DELIVERIES,
    LOG,
    PENDING,
    SKIPPED,
    WEBHOOK,
    NotificationConfig,
)

log = logging.getLogger("dueflow.notifications")
FOREGROUND_SETTLE = 0.005
FOREGROUND_PATIENCE = 0.5
COL = DELIVERIES.c


# A failed delivery is tried again after 5-10 s, doubling per attempt up to an hour, six tries
# in all; jittered so that the deliveries a webhook outage failed together come back apart.
DELIVERY_BACKOFF = Backoff(base=10.0, cap=3600.0, attempts=6, jitter=0.5)


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """A delivery as `dueflow notifications failed` shows it."""

    id: int
    event_id: str
    channel: str
    user_id: str
    task_id: str
    status: str
    attempts: int
    last_error: str | None
    created_at: dt.datetime


class NotificationDispatcher:
    """Delivers due rows of notification_deliveries through their channels."""

    def __init__(
        self,
        engine: AsyncEngine,
        channels: Mapping[str, Channel],
        clock: Clock,
        backoff: Backoff = DELIVERY_BACKOFF,
        poll_seconds: float = 5.0,
        batch_size: int = 50,
        concurrency: int = 8,
        lease: dt.timedelta = dt.timedelta(minutes=5),
        foreground: Foreground | None = None,
    ) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._channels = dict(channels)
        declare_channels(self._channels)
        self._clock = clock
        self._backoff = backoff
        self._poll = poll_seconds
        # a failed pass waits twice the poll interval, doubling up to a minute
        self._pass_backoff = Backoff(base=2 * poll_seconds, cap=60.0)
        self._batch = batch_size
        self._slots = asyncio.Semaphore(concurrency)
        self._lease = lease
        self._wake = asyncio.Event()
        self._locking = engine.dialect.name != "sqlite"
        self._foreground = foreground
        # each pass's outcomes, by its claim token, until the pass records them at once
        self._outcomes: dict[str, list[tuple[sa.Row[Any], dict[str, Any]]]] = {}

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(self._channels)

    def notify(self) -> None:
        """Wake the dispatcher now: deliveries were committed."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set, on every wake-up and every poll interval."""
        await poll(
            self.deliver_due,
            wake=self._wake,
            stop=stop,
            every=self._poll,
            backoff=self._pass_backoff,
            log=log,
            name="notification dispatch pass",
            give_way=self._give_way,
        )

    async def _give_way(self) -> None:
        """Requests and the reminder timer first: wait for a pause between them (bounded)."""
        if self._foreground is not None:
            await self._foreground.quiet(FOREGROUND_SETTLE, FOREGROUND_PATIENCE)

    async def deliver_due(self) -> int:
        """One pass: claim the rows due now, deliver each, record the outcome; answer how many."""
        token = str(uuid.uuid4())
        claimed = await self._claim(token)
        try:
            await asyncio.gather(*(self._deliver(token, row) for row in claimed))
        finally:
            await self._record(token)
        return len(claimed)

    async def aclose(self) -> None:
        for channel in self._channels.values():
            closer = getattr(channel, "aclose", None)
            if closer is not None:
                await closer()

    async def failed(self, limit: int = 100) -> list[DeliveryRecord]:
        """The dead deliveries, newest first, with their errors."""
        return await failed_deliveries(self._sessions, limit)

    async def _claim(self, token: str) -> list[sa.Row[Any]]:
        now = self._clock.now()
        due = sa.and_(
            COL.status == PENDING,
            # a replica takes only what it can deliver (the mcp channel lives in MCP servers)
            COL.channel.in_(list(self._channels)),
            sa.or_(COL.next_attempt_at.is_(None), COL.next_attempt_at <= now),
            sa.or_(COL.claimed_until.is_(None), COL.claimed_until <= now),
        )
        candidates = sa.select(COL.id).where(due).order_by(COL.id).limit(self._batch)
        if self._locking:
            candidates = candidates.with_for_update(skip_locked=True)
        claim = (
            sa.update(DELIVERIES)
            # `due` again: the UPDATE re-checks each row, so a row another dispatcher took
            # between the SELECT and here is left alone
            .where(COL.id.in_(candidates.scalar_subquery()), due)
            .values(claimed_by=token, claimed_until=now + self._lease)
            .returning(
                COL.id,
                COL.event_id,
                COL.channel,
                COL.user_id,
                COL.task_id,
                COL.message,
                COL.attempts,
            )
        )
        async with self._sessions() as session, session.begin():
            return sorted((await session.execute(claim)).all(), key=lambda row: row.id)

    async def _deliver(self, token: str, row: sa.Row[Any]) -> None:
        attempt = row.attempts + 1
        channel = self._channels.get(row.channel)
        async with self._slots:
            started = time.perf_counter()
            try:
                if channel is None:
                    raise DeliveryFailed(
                        f"the {row.channel} channel is not enabled in this process", retry=True
                    )
                notification = Notification(
                    row.id, row.event_id, row.user_id, row.task_id, dict(row.message), attempt
                )
                sent = await channel.send(notification)
            except DeliveryFailed as exc:
                self._failed(token, row, attempt, str(exc), exc.retry)
            except Exception as exc:
                log.exception("channel %s raised on delivery %d", row.channel, row.id)
                self._failed(token, row, attempt, f"{type(exc).__name__}: {exc}", True)
            else:
                self._succeeded(token, row, attempt, sent)
            finally:
                NOTIFICATION_SECONDS.labels(row.channel).observe(time.perf_counter() - started)

    def _succeeded(self, token: str, row: sa.Row[Any], attempt: int, sent: Sent) -> None:
        status = DELIVERED if sent.skipped is None else SKIPPED
        NOTIFICATIONS.labels(row.channel, status).inc()
        self._queue_outcome(
            token,
            row,
            status=status,
            attempts=attempt,
            delivered_at=self._clock.now() if status == DELIVERED else None,
            last_error=sent.skipped,
            next_attempt_at=None,
        )
        log.debug("delivery %d (%s, event %s): %s", row.id, row.channel, row.event_id, status)

    def _failed(self, token: str, row: sa.Row[Any], attempt: int, error: str, retry: bool) -> None:
        error = error[:2000]
        if retry and self._backoff.tries_again(attempt):
            retry_at = self._clock.now() + dt.timedelta(seconds=self._backoff.delay(attempt))
            NOTIFICATIONS.labels(row.channel, "retried").inc()
            self._queue_outcome(
                token,
                row,
                status=PENDING,
                attempts=attempt,
                last_error=error,
                next_attempt_at=retry_at,
            )
            log.warning(
                "delivery %d (%s to %s, event %s) failed, attempt %d of %d; retry at %s: %s",
                row.id,
                row.channel,
                row.user_id,
                row.event_id,
                attempt,
                self._backoff.attempts,
                retry_at.isoformat(),
                error,
            )
            return
        NOTIFICATIONS.labels(row.channel, DEAD).inc()
        self._queue_outcome(
            token, row, status=DEAD, attempts=attempt, last_error=error, next_attempt_at=None
        )
        log.error(
            "delivery %d (%s to %s, event %s, task %s) is dead after %d attempt(s): %s",
            row.id,
            row.channel,
            row.user_id,
            row.event_id,
            row.task_id,
            attempt,
            error,
        )

    def _queue_outcome(self, token: str, row: sa.Row[Any], **values: Any) -> None:
        """Queue the attempt's outcome; the pass records all of them in one transaction."""
        self._outcomes.setdefault(token, []).append((row, values))

    async def _record(self, token: str) -> None:
        """Record a pass's outcomes; a final one (delivered, skipped, dead) also records a
        REMINDER_DELIVERED event, so the task's history shows every channel's delivery.

        Two statements whatever the pass's size: on SQLite this transaction holds the one write
        lock, which a reminder coming due must not wait long for."""
        outcomes = self._outcomes.pop(token, [])
        if not outcomes:
            return
        async with (
            self._sessions() as session,
            session.begin(),
            JoinedUnitOfWork(session) as uow,
        ):
            # still ours: a claim whose lease ran out may have gone to another dispatcher
            held = set(
                (
                    await session.scalars(
                        sa.select(COL.id)
                        .where(COL.id.in_([row.id for row, _ in outcomes]), COL.claimed_by == token)
                        .with_for_update()
                    )
                ).all()
            )
            mine = [(row, values) for row, values in outcomes if row.id in held]
            if mine:
                await session.execute(
                    _RECORD_OUTCOME,
                    [
                        {"delivery_id": row.id, "to_delivered_at": None}
                        | {f"to_{column}": value for column, value in values.items()}
                        for row, values in mine
                    ],
                )
            for row, values in mine:
                if values["status"] != PENDING:
                    uow.record(self._delivered_event(row, values))
            await uow.commit()
        for row, _ in outcomes:
            if row.id not in held:
                log.warning(
                    "delivery %d: the lease ran out before its outcome was recorded", row.id
                )

    def _delivered_event(self, row: sa.Row[Any], values: Mapping[str, Any]) -> TaskEvent:
        message = dict(row.message)
        task = dict(message.get("task") or {})
        return TaskEvent(
            event_type=EventType.REMINDER_DELIVERED,
            task_id=row.task_id,
            user_id=row.user_id,
            sequence=int(task.get("version") or 0),
            timestamp=self._clock.now(),
            task=task,
            changes={},
            source="dueflow.notifications",
            causation_id=row.event_id,
            details={
                "reminder": message.get("reminder") or {},
                "delivery": {
                    "channel": row.channel,
                    "status": values["status"],
                    "attempts": values["attempts"],
                    "error": values.get("last_error"),
                },
            },
        )


# one attempt's outcome, releasing its claim (parameters: delivery_id, to_<column> for the rest)
_RECORD_OUTCOME = (
    sa.update(DELIVERIES)
    .where(COL.id == sa.bindparam("delivery_id", type_=COL.id.type))
    .values(
        claimed_by=None,
        claimed_until=None,
        status=sa.bindparam("to_status", type_=COL.status.type),
        attempts=sa.bindparam("to_attempts", type_=COL.attempts.type),
        delivered_at=sa.bindparam("to_delivered_at", type_=COL.delivered_at.type),
        last_error=sa.bindparam("to_last_error", type_=COL.last_error.type),
        next_attempt_at=sa.bindparam("to_next_attempt_at", type_=COL.next_attempt_at.type),
    )
)


def build_dispatcher(
    engine: AsyncEngine,
    config: NotificationConfig,
    clock: Clock,
    extra_channels: Sequence[Channel] = (),
    foreground: Foreground | None = None,
) -> NotificationDispatcher:
    """The dispatcher of `config`: log always, webhook when configured, plus `extra_channels`."""
    channels: dict[str, Channel] = {LOG: LogChannel()}
    if config.webhooks and config.webhook_secret:
        from workers.webhook import WebhookChannel  # httpx: only for a process with webhooks

        channels[WEBHOOK] = WebhookChannel(
            config.webhooks,
            config.webhook_secret,
            clock,
            config.webhook_timeout_seconds,
            AddressGuard(config.webhook_allow_private),
        )
    for channel in extra_channels:
        channels[channel.name] = channel
    backoff = Backoff(
        base=config.retry_base_seconds,
        cap=config.retry_cap_seconds,
        attempts=config.max_attempts,
        jitter=DELIVERY_BACKOFF.jitter,
    )
    return NotificationDispatcher(
        engine,
        channels,
        clock,
        backoff=backoff,
        poll_seconds=config.poll_seconds,
        foreground=foreground,
    )


async def failed_deliveries(
    sessions: async_sessionmaker[AsyncSession], limit: int = 100
) -> list[DeliveryRecord]:
    """The dead deliveries, newest first, with their errors (`dueflow notifications failed`)."""
    query = (
        sa.select(
            COL.id,
            COL.event_id,
            COL.channel,
            COL.user_id,
            COL.task_id,
            COL.status,
            COL.attempts,
            COL.last_error,
            COL.created_at,
        )
        .where(COL.status == DEAD)
        .order_by(COL.id.desc())
        .limit(limit)
    )
    async with reading(sessions) as session:
        return [DeliveryRecord(*row) for row in (await session.execute(query)).all()]
