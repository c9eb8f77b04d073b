"""The reminder use cases: keep a task's schedule, fire reminders, list, snooze and dismiss.

Firing is guarded by the schedule row itself: a reminder moves from `pending` to `fired` (or
`stale`) in the same transaction that records REMINDER_TRIGGERED, and only if it is still
pending, so two timers, two job callbacks or a sweep beside a job never fire it twice.

A schedule that cannot join the transaction (a Dapr state store) is written before the commit:
if the commit then fails, the reminders it moved are put back to pending (best effort), so the
next job callback or sweep fires them instead of losing them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.due import iso_utc, parse_moment, zone
from domain.errors import NotFound, ValidationFailed, echo
from domain.events import EventType, TaskEvent
from domain.model import Status, Task, check_task_id
from domain.ports import (
    Clock,
    EventuallyConsistent,
    UnitOfWork,
    UnitOfWorkFactory,
    ViewFreshness,
)
from domain.reminder_schedule import (
    SNOOZE,
    ReminderState,
    ScheduledReminder,
    is_late,
    planned_reminders,
    reminder_id,
    still_due,
)
from domain.reminder_specs import MAX_LEAD, parse_duration

log = logging.getLogger("dueflow.reminders")

SOURCE = "dueflow.reminders"
MAX_WITHIN = dt.timedelta(days=366)
DEFAULT_WITHIN = dt.timedelta(days=7)
_PENDING = ReminderState.PENDING


@dataclass(frozen=True, slots=True)
class ScheduleChange:
    """What a reconciliation did: reminders now pending at a (new) moment, and ones withdrawn."""

    scheduled: list[ScheduledReminder]
    withdrawn: list[ScheduledReminder]
    # still pending at an unchanged moment: their jobs exist already, unless the delivery that
    # scheduled them failed after a schedule outside the transaction had been written
    kept: list[ScheduledReminder] = dataclasses.field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.scheduled or self.withdrawn)


@dataclass(frozen=True, slots=True)
class Upcoming:
    reminder: ScheduledReminder
    task: Task


def _cancel_unplanned(
    unplanned: list[ScheduledReminder],
    snapshot: Mapping[str, Any],
    kept: list[ScheduledReminder],
    withdrawn: list[ScheduledReminder],
    writes: list[ScheduledReminder],
) -> None:
    """Cancel the pending reminders the task no longer plans (adding them to `withdrawn` and to
    the `writes` to make); a snoozed one of a task still open is kept, since the snooze stands
    on its own."""
    still_open = snapshot.get("status") == Status.OPEN.value
    for old in unplanned:
        if old.state is not _PENDING:
            continue
        if old.snoozed and still_open:
            kept.append(old)
            continue
        reason = (
            f"the task was {snapshot.get('status')}"
            if not still_open
            else "the reminder was removed from the task"
        )
        gone = dataclasses.replace(old, state=ReminderState.CANCELLED, reason=reason)
        writes.append(gone)
        withdrawn.append(gone)


async def reconcile(
    uow: UnitOfWork,
    snapshot: Mapping[str, Any],
    event_time: dt.datetime,
    now: dt.datetime,
    causation_id: str | None = None,
) -> ScheduleChange:
    """Bring the schedule of the task in `snapshot` in line with it, recording reminder events.

    A reminder whose moment was already past when the change was made is marked `passed` and
    never fires; one whose moment passed only while the worker was behind still fires (late).
    """
    task_id, version = snapshot["id"], int(snapshot["version"])
    planned = planned_reminders(snapshot)
    existing = {r.id: r for r in await uow.reminders.for_task(task_id)}
    scheduled: list[ScheduledReminder] = []
    withdrawn: list[ScheduledReminder] = []
    kept: list[ScheduledReminder] = []
    writes: list[ScheduledReminder] = []  # written in one put_many at the end
    for rid, (spec, moment) in planned.items():
        old = existing.get(rid)
        if old is not None and old.fire_at == moment and old.state is not ReminderState.CANCELLED:
            if old.task_version != version:  # same moment: fired, dismissed or pending stays so
                old = dataclasses.replace(old, task_version=version)
                writes.append(old)
            if old.state is _PENDING:
                kept.append(old)
            continue
        state = _PENDING if moment >= event_time else ReminderState.PASSED
        new = ScheduledReminder(
            id=rid,
            user_id=snapshot["user_id"],
            task_id=task_id,
            spec=spec,
            fire_at=moment,
            task_version=version,
            state=state,
            reason=None if state is _PENDING else "its moment had passed when it was set",
        )
        writes.append(new)
        if state is _PENDING:
            scheduled.append(new)
        elif old is not None and old.state is _PENDING:  # its job, if any, must go
            withdrawn.append(new)
    unplanned = [old for rid, old in existing.items() if rid not in planned]
    _cancel_unplanned(unplanned, snapshot, kept, withdrawn, writes)
    await uow.reminders.put_many(writes, now)
    for reminder in scheduled:
        uow.record(_event(EventType.REMINDER_SCHEDULED, reminder, snapshot, now, causation_id))
    for reminder in withdrawn:
        if reminder.state is ReminderState.CANCELLED:
            uow.record(_event(EventType.REMINDER_CANCELLED, reminder, snapshot, now, causation_id))
    return ScheduleChange(scheduled, withdrawn, kept)


class ReminderService:
    """Reminder use cases for any user; every user-facing call names the user it acts for."""

    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        clock: Clock,
        default_timezone: str = "UTC",
        source: str = SOURCE,
        firing_unit_of_work: Callable[[], UnitOfWork] | None = None,
        views: ViewFreshness | None = None,
    ) -> None:
        self._uow = unit_of_work
        # firing is time-critical: its transactions may jump the queue for the write lock
        self._firing_uow = firing_unit_of_work or unit_of_work
        self._clock = clock
        self._zone = zone(default_timezone, "DUEFLOW_TIMEZONE")
        self._source = source
        # the schedule is built by the reminders consumer: a user's read or change of it waits
        # for the user's own events to reach it (embedded mode)
        self._views = views or EventuallyConsistent()

    async def fire(self, reminder_id: str) -> ScheduledReminder | None:
        """Fire one reminder if its moment has come and it is still pending; None otherwise."""
        async with self._firing_uow() as uow:
            reminder = await uow.reminders.get(reminder_id)
            # read the clock after the first statement: on SQLite it waits for the write lock,
            # and the trigger's moment is when it is decided, not when it was asked for
            now = self._clock.now()
            if reminder is None or reminder.state is not _PENDING or reminder.fire_at > now:
                return None
            async with _put_back_unless_committed(uow, now) as moved:
                done = await self._fire(uow, reminder, now, moved)
                await uow.commit()
        return done

    async def fire_due(self, limit: int = 500) -> list[ScheduledReminder]:
        """Fire every pending reminder whose moment has come, earliest first, in one transaction
        (a backlog costs one commit, so a busy moment does not make the next ones late)."""
        async with self._firing_uow() as uow:
            due = await uow.reminders.due(self._clock.now(), limit)
            now = self._clock.now()
            async with _put_back_unless_committed(uow, now) as moved:
                fired = [await self._fire(uow, reminder, now, moved) for reminder in due]
                await uow.commit()
        return [reminder for reminder in fired if reminder is not None]

    async def _fire(
        self,
        uow: UnitOfWork,
        reminder: ScheduledReminder,
        now: dt.datetime,
        moved: list[tuple[ScheduledReminder, ScheduledReminder]],
    ) -> ScheduledReminder | None:
        task = await uow.tasks.get(reminder.user_id, reminder.task_id)
        snapshot = task.snapshot() if task is not None else None
        why = still_due(reminder, snapshot)
        if why is None:
            assert task is not None and snapshot is not None
            done = dataclasses.replace(
                reminder,
                state=ReminderState.FIRED,
                fired_at=now,
                late=is_late(reminder.fire_at, now),
                task_version=task.version,
            )
        else:
            done = dataclasses.replace(
                reminder, state=ReminderState.STALE, fired_at=now, reason=why
            )
        if not await uow.reminders.transition(done, _PENDING, now):
            return None  # another timer, job callback or sweep fired it first
        moved.append((reminder, done))
        if snapshot is not None and why is None:
            uow.record(_event(EventType.REMINDER_TRIGGERED, done, snapshot, now, None))
        else:
            log.info("reminder %s of task %s dropped as stale: %s", done.id, done.task_id, why)
        return done

    async def pending_moment(self, reminder_id: str) -> dt.datetime | None:
        """When a pending reminder fires; None if it is not pending."""
        async with self._uow(read_only=True) as uow:
            reminder = await uow.reminders.get(reminder_id)
        return reminder.fire_at if reminder and reminder.state is _PENDING else None

    async def next_moment(self) -> dt.datetime | None:
        """When the earliest pending reminder fires."""
        async with self._uow(read_only=True) as uow:
            return await uow.reminders.next_moment()

    async def upcoming(self, user_id: str, within: str | None, limit: int = 200) -> list[Upcoming]:
        """The user's pending reminders within `within` (an ISO duration, default P7D)."""
        span = DEFAULT_WITHIN if within is None else _span(within, "within", MAX_WITHIN)
        await self._views.caught_up(user_id)
        async with self._uow(read_only=True) as uow:
            found = await uow.reminders.upcoming(user_id, self._clock.now() + span, limit)
            listed: list[Upcoming] = []
            for reminder in found:
                task = await uow.tasks.get(user_id, reminder.task_id)
                if task is not None:
                    listed.append(Upcoming(reminder, task))
        return listed

    async def snooze(
        self,
        user_id: str,
        task_id: str,
        until: str | None,
        duration: str | None,
        correlation_id: str | None = None,
    ) -> tuple[ScheduledReminder, list[ScheduledReminder]]:
        """Remind again at `until` (or after `duration`); the task's reminders due before then
        stay quiet. Answers the snoozed reminder and the ones it silenced."""
        check_task_id(task_id)
        now = self._clock.now()
        moment = self._snooze_moment(until, duration, now)
        await self._views.caught_up(user_id)
        async with self._uow() as uow:
            task = await self._open_task(uow, user_id, task_id, "snooze")
            snapshot = task.snapshot()
            snoozed = ScheduledReminder(
                id=reminder_id(task.id, SNOOZE),
                user_id=user_id,
                task_id=task.id,
                spec=SNOOZE,
                fire_at=moment,
                task_version=task.version,
                state=_PENDING,
            )
            silenced = [
                dataclasses.replace(
                    r,
                    state=ReminderState.DISMISSED,
                    reason=f"snoozed until {iso_utc(moment)}",
                )
                for r in await uow.reminders.for_task(task.id)
                if r.state is _PENDING and not r.snoozed and r.fire_at < moment
            ]
            await self._store(
                uow, EventType.REMINDER_SCHEDULED, [snoozed], snapshot, now, correlation_id
            )
            await self._store(
                uow, EventType.REMINDER_CANCELLED, silenced, snapshot, now, correlation_id
            )
            await uow.commit()
        return snoozed, silenced

    async def dismiss(
        self, user_id: str, task_id: str, correlation_id: str | None = None
    ) -> list[ScheduledReminder]:
        """Dismiss every pending reminder of the task (a snoozed one too) until it is re-dated
        or given new reminders; answers the reminders dismissed."""
        check_task_id(task_id)
        now = self._clock.now()
        await self._views.caught_up(user_id)
        async with self._uow() as uow:
            task = await uow.tasks.get(user_id, task_id)
            if task is None:
                raise NotFound.task(task_id)
            snapshot = task.snapshot()
            dismissed = [
                dataclasses.replace(r, state=ReminderState.DISMISSED, reason="dismissed")
                for r in await uow.reminders.for_task(task.id)
                if r.state is _PENDING
            ]
            await self._store(
                uow, EventType.REMINDER_CANCELLED, dismissed, snapshot, now, correlation_id
            )
            await uow.commit()
        return dismissed

    async def _store(
        self,
        uow: UnitOfWork,
        kind: EventType,
        reminders: list[ScheduledReminder],
        snapshot: Mapping[str, Any],
        now: dt.datetime,
        correlation_id: str | None,
    ) -> None:
        """Write each reminder's new state and record its `kind` event, in the caller's unit."""
        await uow.reminders.put_many(reminders, now)
        for reminder in reminders:
            uow.record(_event(kind, reminder, snapshot, now, None, correlation_id, self._source))

    async def _open_task(self, uow: UnitOfWork, user_id: str, task_id: str, verb: str) -> Task:
        task = await uow.tasks.get(user_id, task_id)
        if task is None:
            raise NotFound.task(task_id)
        if task.status is not Status.OPEN:
            raise ValidationFailed(
                "task_id",
                f"the task is {task.status.value}; only an open task's reminders can {verb}",
                "reopen_task or restore_task first",
            )
        return task

    def _snooze_moment(
        self, until: str | None, duration: str | None, now: dt.datetime
    ) -> dt.datetime:
        if (until is None) == (duration is None):
            raise ValidationFailed(
                "until",
                "give exactly one of until and duration",
                "e.g. until='2026-11-24T09:00' or duration='PT30M'",
            )
        if duration is not None:
            return now + _span(duration, "duration", MAX_LEAD)
        assert until is not None
        moment = parse_moment(until, self._zone, "until")
        if moment <= now:
            raise ValidationFailed(
                "until",
                f"{echo(until)} is not in the future (now is {iso_utc(now)})",
                "give a later moment, or a duration such as PT30M",
            )
        if moment - now > MAX_LEAD:
            raise ValidationFailed("until", "is more than 365 days away", "give a nearer moment")
        return moment


@contextlib.asynccontextmanager
async def _put_back_unless_committed(
    uow: UnitOfWork, now: dt.datetime
) -> AsyncIterator[list[tuple[ScheduledReminder, ScheduledReminder]]]:
    """Collect (before, after) of each reminder moved out of pending; if the block fails and the
    schedule is not part of the transaction, move them back to pending so they are not lost."""
    moved: list[tuple[ScheduledReminder, ScheduledReminder]] = []
    try:
        yield moved
    except BaseException:
        if not uow.reminders.transactional:  # SQL: the rollback undoes the transitions already
            for before, after in moved:
                await _put_back(uow, before, after, now)
        raise


async def _put_back(
    uow: UnitOfWork, before: ScheduledReminder, after: ScheduledReminder, now: dt.datetime
) -> None:
    try:
        # conditional: only over our own write, never over a later change by someone else
        restored = await uow.reminders.transition(before, after.state, now)
    except Exception as exc:
        log.error(
            "reminder %s is %s in the schedule but its event was not committed, and putting it"
            " back to pending failed (%s): it will not fire",
            before.id,
            after.state.value,
            exc,
        )
        return
    if restored:
        log.warning("reminder %s put back to pending: its event was not committed", before.id)


def _span(text: str, field: str, longest: dt.timedelta) -> dt.timedelta:
    span = parse_duration(
        text.strip().upper(), field, "use weeks, days, hours or minutes, e.g. P30D, PT2H or PT30M"
    )
    if span <= dt.timedelta(0) or span > longest:
        raise ValidationFailed(
            field,
            f"{echo(text)} is out of range",
            f"use more than zero and at most {longest.days} days",
        )
    return span


def _event(
    kind: EventType,
    reminder: ScheduledReminder,
    snapshot: Mapping[str, Any],
    now: dt.datetime,
    causation_id: str | None,
    correlation_id: str | None = None,
    source: str = SOURCE,
) -> TaskEvent:
    return TaskEvent(
        event_type=kind,
        task_id=reminder.task_id,
        user_id=reminder.user_id,
        sequence=int(snapshot["version"]),
        timestamp=now,
        task=dict(snapshot),
        changes={},
        source=source,
        correlation_id=correlation_id,
        causation_id=causation_id,
        details={"reminder": reminder.as_json()},
    )
