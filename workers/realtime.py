"""The realtime worker: each task change and fired reminder, in its user's feed, for live views.

A change is given the next position of its user's feed (one row per user holds the last one; its
row lock orders the user's changes, so positions have no gaps and follow commit order) and its
message is kept in `realtime_changes`, in the handler's transaction. Once that commits, the
message goes to the user's open connections (`workers.live_hub`); a client that reconnects with
the last position it saw is sent the rows after it from the database (`workers.gateway`).

The feed is its own table, not the outbox or the audit log: the outbox is the relay's (rows per
event, not per user, and pruned as it likes) and the audit log is another worker's, written when
that worker gets to it, without the task summary a view needs.

The handler is idempotent by itself (an event already in the feed is only sent again) and never
puts an older version of a task after a newer one.

In Dapr mode the app has two subscriptions (docs/realtime.md): the feed is written by one shared,
durable consumer group (`realtime_consumer`, each change once, whichever replica it reaches,
including changes published while no replica ran), and every replica also receives every change
through its own consumer to push the feed's row to its connections (`push_consumer`, which
writes nothing).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import SQLModel

from domain.adapters.sql import reading
from domain.adapters.tables import RealtimeChangeRow, RealtimeHeadRow
from domain.due import zone
from domain.events import TOPIC_REMINDERS, TOPIC_TASK_UPDATES, EventType
from domain.model import Priority, Status, Task
from domain.ports import Clock
from domain.query import Outlook
from domain.reminder_schedule import due_from_json
from workers.consumer import (
    SUCCESS,
    Consumer,
    ConsumerRunner,
    MalformedEvent,
    Outcome,
    Received,
    after_commit,
)

log = logging.getLogger("dueflow.realtime")

NAME = "realtime"
PUSH = "realtime-push"  # the per-replica subscription that only pushes (Dapr mode)
CHANGES = SQLModel.metadata.tables[RealtimeChangeRow.__tablename__]
HEADS = SQLModel.metadata.tables[RealtimeHeadRow.__tablename__]
DEFAULT_KEEP = 1000  # changes kept per user for resuming
PUSH_PATIENCE = 2.0  # seconds a push waits for the feed to hold its change before RETRY
_PUSH_POLL = 0.05
_PRUNE_EVERY = 100  # positions between two prunings of a user's feed

Deliver = Callable[[str, int, str], None]  # user, position, message text


def summary(snapshot: Mapping[str, Any], outlook: Outlook) -> dict[str, Any]:
    """A task snapshot (as events carry it) in the shape list_tasks answers; a snapshot without
    its timestamps (they only age the urgency) is read as of now."""
    try:
        task = Task(
            id=str(snapshot["id"]),
            user_id=str(snapshot.get("user_id", "")),
            title=str(snapshot["title"]),
            created_at=_moment(snapshot.get("created_at") or outlook.now.isoformat()),
            updated_at=_moment(snapshot.get("updated_at") or outlook.now.isoformat()),
            status=Status(snapshot["status"]),
            priority=Priority(snapshot["priority"]),
            tags=tuple(snapshot.get("tags") or ()),
            due=due_from_json(snapshot.get("due")),
            version=int(snapshot["version"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedEvent(f"the task snapshot is not one Dueflow wrote: {exc}") from None
    recurrence = snapshot.get("recurrence")
    rule = recurrence.get("rule") if isinstance(recurrence, dict) else None
    return task_summary(task, outlook, rule)


def task_summary(task: Task, outlook: Outlook, rule: str | None = None) -> dict[str, Any]:
    """A task in the shape list_tasks answers (its RRULE given apart, or read off the task)."""
    if rule is None and task.recurrence is not None:
        rule = task.recurrence.rule
    return {
        "id": task.id,
        "title": task.title,
        "status": task.status.value,
        "priority": task.priority.value,
        "tags": list(task.tags),
        "due": task.due.local.isoformat() if task.due else None,
        "overdue": outlook.overdue(task),
        "urgency": outlook.urgency(task),
        "recurrence": rule,
        "version": task.version,
    }


def change_message(event: Received, position: int, outlook: Outlook) -> dict[str, Any]:
    """The message a client is sent for `event` at `position` of its user's feed."""
    payload = event.envelope["payload"]
    snapshot = payload.get("task")
    if not isinstance(snapshot, dict):
        raise MalformedEvent("the payload carries no task snapshot")
    changes = payload.get("changes")
    message: dict[str, Any] = {
        "type": "change",
        "position": position,
        "event": event.event_type,
        "task_id": event.task_id,
        "sequence": event.sequence,
        "task": summary(snapshot, outlook),
        "changes": changes if isinstance(changes, dict) else {},
        "at": event.envelope.get("timestamp"),
    }
    reminder = payload.get("reminder")
    if isinstance(reminder, dict):
        message["reminder"] = reminder
    return message


def realtime_consumer(
    clock: Clock, default_timezone: str = "UTC", deliver: Deliver | None = None, keep: int = 0
) -> Consumer:
    """The realtime consumer; `deliver` gets each message once its feed row commits (the
    gateway's hub); `keep` changes per user stay for resuming (DEFAULT_KEEP when 0)."""
    user_zone = zone(default_timezone)
    kept = keep or DEFAULT_KEEP

    async def record(event: Received, session: AsyncSession) -> Outcome:
        if not _shown(event):
            return Outcome.SUCCESS  # scheduled, cancelled, delivered: nothing a view shows
        appended = await append(session, event, Outlook.at(clock.now(), user_zone), clock, kept)
        if appended is not None and deliver is not None:
            position, text = appended
            after_commit(session, lambda: deliver(event.user_id, position, text))
        return Outcome.SUCCESS

    async def record_all(events: Sequence[Received], session: AsyncSession) -> Outcome:
        """A batch in a few statements, with the effect of record() on each in turn."""
        shown = [e for e in events if _shown(e)]
        if not shown:
            return Outcome.SUCCESS
        appended = await append_all(session, shown, Outlook.at(clock.now(), user_zone), clock, kept)
        if appended and deliver is not None:
            after_commit(session, lambda: _deliver_all(deliver, appended))
        return Outcome.SUCCESS

    return Consumer(
        name=NAME,
        handlers={TOPIC_TASK_UPDATES: record, TOPIC_REMINDERS: record},
        batch=record_all,
    )


def _shown(event: Received) -> bool:
    """A task change, or a fired reminder: what a view shows."""
    return event.topic != TOPIC_REMINDERS or event.event_type == EventType.REMINDER_TRIGGERED


def _deliver_all(deliver: Deliver, appended: Sequence[tuple[str, int, str]]) -> None:
    for user_id, position, text in appended:
        deliver(user_id, position, text)


def push_consumer(
    feed: Feed, deliver: Deliver, patience: float = PUSH_PATIENCE, poll: float = _PUSH_POLL
) -> Consumer:
    """The per-replica push (Dapr mode): hands the feed's row of a delivered change to this
    replica's connections, and writes nothing. A change the feed does not hold yet (the feed's
    group has not written it) is waited for up to `patience` seconds, then answered RETRY so
    Dapr delivers it again; one the feed will never hold (stale, or a reminder event a view does
    not show) answers SUCCESS."""

    async def push(event: Received, session: AsyncSession) -> Outcome:
        if event.topic == TOPIC_REMINDERS and event.event_type != EventType.REMINDER_TRIGGERED:
            return Outcome.SUCCESS
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while True:
            found = await feed.find(event.event_id)
            if found is not None:
                deliver(event.user_id, *found)
                return Outcome.SUCCESS
            if event.topic == TOPIC_TASK_UPDATES and await feed.superseded(event):
                return Outcome.SUCCESS  # the feed skips an older version: nothing to push
            if loop.time() >= deadline:
                return Outcome.RETRY
            await asyncio.sleep(poll)

    return Consumer(name=PUSH, handlers={TOPIC_TASK_UPDATES: push, TOPIC_REMINDERS: push})


async def append(
    session: AsyncSession, event: Received, outlook: Outlook, clock: Clock, keep: int
) -> tuple[int, str] | None:
    """Put `event` in its user's feed: its (position, message text); an event already there
    answers its row as it is; a task change older than one already in the feed answers None."""
    found = (
        await session.execute(
            sa.select(CHANGES.c.position, CHANGES.c.message).where(
                CHANGES.c.event_id == event.event_id
            )
        )
    ).first()
    if found is not None:
        return int(found[0]), str(found[1])
    if event.topic == TOPIC_TASK_UPDATES:
        latest = (
            await session.execute(
                sa.select(sa.func.max(CHANGES.c.sequence)).where(
                    CHANGES.c.task_id == event.task_id, CHANGES.c.topic == TOPIC_TASK_UPDATES
                )
            )
        ).scalar()
        if latest is not None and event.sequence <= int(latest):
            return None
    position = await _next_position(session, event.user_id)
    text = json.dumps(change_message(event, position, outlook), separators=(",", ":"))
    await session.execute(
        sa.insert(CHANGES).values(
            user_id=event.user_id,
            position=position,
            event_id=event.event_id,
            task_id=event.task_id,
            topic=event.topic,
            sequence=event.sequence,
            message=text,
            created_at=clock.now(),
        )
    )
    if position % _PRUNE_EVERY == 0 and position > keep:
        await session.execute(
            sa.delete(CHANGES).where(
                CHANGES.c.user_id == event.user_id, CHANGES.c.position <= position - keep
            )
        )
    return position, text


async def append_all(
    session: AsyncSession, events: Sequence[Received], outlook: Outlook, clock: Clock, keep: int
) -> list[tuple[str, int, str]]:
    """append() for a batch of shown events, in order, in a statement per kind of work rather
    than per event (the relay hands the consumers whole batches): answers (user, position,
    message text) for each event that is or was put in the feed, in the order given."""
    ids = [e.event_id for e in events]
    found = {
        str(event_id): (int(position), str(text))
        for event_id, position, text in await session.execute(
            sa.select(CHANGES.c.event_id, CHANGES.c.position, CHANGES.c.message).where(
                CHANGES.c.event_id.in_(ids)
            )
        )
    }
    task_ids = sorted({e.task_id for e in events if e.topic == TOPIC_TASK_UPDATES})
    latest: dict[str, int] = {}
    if task_ids:
        latest = {
            str(task_id): int(sequence)
            for task_id, sequence in await session.execute(
                sa.select(CHANGES.c.task_id, sa.func.max(CHANGES.c.sequence))
                .where(CHANGES.c.task_id.in_(task_ids), CHANGES.c.topic == TOPIC_TASK_UPDATES)
                .group_by(CHANGES.c.task_id)
            )
        }
    new: list[Received] = []
    new_ids: set[str] = set()
    for event in events:
        if event.event_id in found or event.event_id in new_ids:
            continue
        if event.topic == TOPIC_TASK_UPDATES:
            if event.sequence <= latest.get(event.task_id, 0):
                continue
            latest[event.task_id] = event.sequence
        new.append(event)
        new_ids.add(event.event_id)
    per_user: dict[str, int] = {}
    for event in new:
        per_user[event.user_id] = per_user.get(event.user_id, 0) + 1
    # heads in a fixed order: two relays' passes lock them alike and cannot deadlock
    next_of = {
        user: await _next_position(session, user, count) - count + 1
        for user, count in sorted(per_user.items())
    }
    placed: dict[str, tuple[int, str]] = {}
    rows = []
    now = clock.now()
    for event in new:
        position = next_of[event.user_id]
        next_of[event.user_id] = position + 1
        text = json.dumps(change_message(event, position, outlook), separators=(",", ":"))
        placed[event.event_id] = (position, text)
        rows.append(
            {
                "user_id": event.user_id,
                "position": position,
                "event_id": event.event_id,
                "task_id": event.task_id,
                "topic": event.topic,
                "sequence": event.sequence,
                "message": text,
                "created_at": now,
            }
        )
    if rows:
        await session.execute(sa.insert(CHANGES), rows)
    for user, count in per_user.items():
        last = next_of[user] - 1
        if last // _PRUNE_EVERY != (last - count) // _PRUNE_EVERY and last > keep:
            await session.execute(
                sa.delete(CHANGES).where(
                    CHANGES.c.user_id == user, CHANGES.c.position <= last - keep
                )
            )
    answered = []
    for event in events:
        row = placed.get(event.event_id) or found.get(event.event_id)
        if row is not None:
            answered.append((event.user_id, *row))
    return answered


async def _next_position(session: AsyncSession, user_id: str, count: int = 1) -> int:
    """The user's head moved `count` positions on: its new last position; the head row stays
    locked until the transaction ends."""
    # the dialect's own INSERT ... ON CONFLICT, imported when first used: a stdio start loads
    # neither dialect module
    values = {"user_id": user_id, "position": count}
    bump = {"position": HEADS.c.position + count}
    statement: Any
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        statement = postgresql.insert(HEADS).values(**values)
    else:
        from sqlalchemy.dialects import sqlite

        statement = sqlite.insert(HEADS).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[HEADS.c.user_id], set_=bump
    ).returning(HEADS.c.position)
    return int((await session.execute(statement)).scalar_one())


class FeedRunner(ConsumerRunner):
    """Runs the realtime consumers without the inbox (other consumers as usual): the feed is its
    own record (an event it holds already is only sent again), and a push writes nothing."""

    async def _apply(self, consumer: Consumer, event: Received) -> tuple[Outcome, str]:
        if consumer.name not in (NAME, PUSH):
            return await super()._apply(consumer, event)
        handler = consumer.handlers.get(event.topic)
        if handler is None:
            raise MalformedEvent(f"{consumer.name} has no handler for topic {event.topic!r}")
        try:
            async with self._sessions() as session, session.begin():
                outcome = await handler(event, session)
        except IntegrityError:
            # another replica put the event in the feed meanwhile (during a rebalance of the
            # feed's group): the redelivery finds it there and sends it
            return Outcome.RETRY, Outcome.RETRY.lower()
        return outcome, SUCCESS if outcome is Outcome.SUCCESS else outcome.lower()


class FeedTaps:
    """Whoever this process tells of each feed row its realtime consumer commits: the gateway's
    hub, and what taps in later (the MCP server's resource updates)."""

    def __init__(self, *taps: Deliver) -> None:
        self._taps = list(taps)

    def add(self, tap: Deliver) -> None:
        self._taps.append(tap)

    def deliver(self, user_id: str, position: int, text: str) -> None:
        for tap in self._taps:
            tap(user_id, position, text)


@dataclass(frozen=True, slots=True)
class Feed:
    """Reads a user's feed: its head, and the messages after a position."""

    sessions: async_sessionmaker[AsyncSession]

    async def head(self, user_id: str) -> int:
        """The user's last position (0 before any change)."""
        async with reading(self.sessions) as session:
            value = (
                await session.execute(sa.select(HEADS.c.position).where(HEADS.c.user_id == user_id))
            ).scalar()
        return int(value) if value is not None else 0

    async def after(
        self, user_id: str, position: int, upto: int | None = None, limit: int = 500
    ) -> Sequence[tuple[int, str]]:
        """At most `limit` of the user's messages after `position` (up to `upto`), in order."""
        query = (
            sa.select(CHANGES.c.position, CHANGES.c.message)
            .where(CHANGES.c.user_id == user_id, CHANGES.c.position > position)
            .order_by(CHANGES.c.position)
            .limit(limit)
        )
        if upto is not None:
            query = query.where(CHANGES.c.position <= upto)
        async with reading(self.sessions) as session:
            rows = (await session.execute(query)).all()
        return [(int(found), str(text)) for found, text in rows]

    async def find(self, event_id: str) -> tuple[int, str] | None:
        """The feed's (position, message text) of an event; None when it holds none."""
        async with reading(self.sessions) as session:
            found = (
                await session.execute(
                    sa.select(CHANGES.c.position, CHANGES.c.message).where(
                        CHANGES.c.event_id == event_id
                    )
                )
            ).first()
        return (int(found[0]), str(found[1])) if found is not None else None

    async def superseded(self, event: Received) -> bool:
        """True when the feed holds the event's task at its version or a later one."""
        async with reading(self.sessions) as session:
            latest = (
                await session.execute(
                    sa.select(sa.func.max(CHANGES.c.sequence)).where(
                        CHANGES.c.task_id == event.task_id, CHANGES.c.topic == TOPIC_TASK_UPDATES
                    )
                )
            ).scalar()
        return latest is not None and event.sequence <= int(latest)

    async def oldest(self, user_id: str) -> int | None:
        """The user's oldest position still kept; None when none is."""
        async with reading(self.sessions) as session:
            value = (
                await session.execute(
                    sa.select(sa.func.min(CHANGES.c.position)).where(CHANGES.c.user_id == user_id)
                )
            ).scalar()
        return int(value) if value is not None else None


def _moment(text: Any) -> dt.datetime:
    moment = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment.astimezone(dt.UTC)
