"""The write use cases: each change is one transaction that also records its event.

Arguments are read first, outside any unit of work. A change that must read the task to know
what it means (a new due, reminders or rule; a skip; the next occurrence) reads it in a read-only
unit, works the change out, and writes it in a second unit only if the task is still at the
version it read. A change that needs nothing of the task to read (a status change, a patch of
plain fields) loads, changes and saves in one writing unit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.arguments import ArgumentReader, NewTask, check_idempotency_key, check_patch_fields
from domain.errors import (
    ConcurrentChange,
    IdempotencyConflict,
    IdempotencyRace,
    InvalidTransition,
    NotFound,
    ValidationFailed,
    echo,
)
from domain.events import EventType, created_event, task_event
from domain.model import Status, Task, check_task_id
from domain.patch import PLAIN_FIELDS, expands_rule, patched_values, plain_values
from domain.ports import Clock, IdempotencyRecord, UnitOfWorkFactory
from domain.queries import load
from domain.recurrence import NextOccurrence, RecurrenceAnchor, next_occurrence

CONCURRENT_ATTEMPTS = 10
_STEPS: dict[EventType, Callable[[Task, dt.datetime], dict[str, list[Any]]]] = {
    EventType.TASK_COMPLETED: Task.complete,
    EventType.TASK_REOPENED: Task.reopen,
    EventType.TASK_DELETED: Task.delete,
    EventType.TASK_RESTORED: Task.restore,
}


@dataclass(frozen=True, slots=True)
class Added:
    task: Task
    created: bool


class TaskCommands:
    """The changes to one user's tasks; every call names the user it acts for."""

    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        clock: Clock,
        read: ArgumentReader,
        source: str,
    ) -> None:
        self._uow = unit_of_work
        self._clock = clock
        self._read = read
        self._source = source

    async def add(
        self,
        user_id: str,
        new: NewTask,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
    ) -> Added:
        """Create a task; a repeated idempotency key answers the task it created first."""
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
        now = self._clock.now()
        if new.recurrence is None:
            task = self._read.new_task(user_id, new, now)
        else:
            # dateutil may walk a rule for a while (recurrence bounds it): not on the event loop
            task = await asyncio.to_thread(self._read.new_task, user_id, new, now)
        try:
            return await self._add(task, new, idempotency_key, correlation_id)
        except IdempotencyRace:
            return await self._add(task, new, idempotency_key, correlation_id)

    async def _add(
        self, task: Task, new: NewTask, key: str | None, correlation_id: str | None
    ) -> Added:
        now = task.created_at
        # without a key the unit only inserts, which a store may write in one piece at commit
        async with self._uow(inserts_only=key is None) as uow:
            if key is not None:
                seen = await uow.tasks.find_idempotency(task.user_id, key)
                if seen is not None:
                    if seen.request_hash != new.fingerprint():
                        raise IdempotencyConflict(
                            f"idempotency_key: {echo(key)} was already used with different"
                            " arguments."
                            " Fix: use a new key for a new task, or repeat the first call exactly."
                        )
                    existing = await uow.tasks.get(task.user_id, seen.task_id)
                    if existing is None:
                        raise NotFound(
                            f"idempotency_key: the task created with {echo(key)} is no longer"
                            " there. Fix: use a new key to create it again."
                        )
                    return Added(existing, created=False)
            await uow.tasks.add(task)
            if key is not None:
                record = IdempotencyRecord(new.fingerprint(), task.id)
                await uow.tasks.remember_idempotency(task.user_id, key, record, now)
            uow.record(created_event(task, now, source=self._source, correlation_id=correlation_id))
            await uow.commit()
            return Added(task, created=True)

    async def update(
        self,
        user_id: str,
        task_id: str,
        patch: Mapping[str, Any],
        expected_version: int | None = None,
        correlation_id: str | None = None,
    ) -> Task:
        """Change the fields present in `patch`; None clears a field."""
        check_task_id(task_id)
        check_patch_fields(patch)
        if PLAIN_FIELDS.issuperset(patch):
            # read up front, so one writing unit loads, changes and saves, as a status change does
            values = plain_values(patch)
            return await self._change(
                user_id,
                task_id,
                EventType.TASK_UPDATED,
                lambda t, now: t.change(now, **values),
                correlation_id,
                expected_version,
            )

        async def attempt() -> Task:
            task = await self._read_task(user_id, task_id, expected_version)
            if expands_rule(task, patch):
                values = await asyncio.to_thread(patched_values, task, patch, self._read)
            else:
                values = patched_values(task, patch, self._read)
            return await self._write(task, lambda t, now: t.change(now, **values), correlation_id)

        return await _retrying(attempt, retry=expected_version is None)

    async def complete(self, user_id: str, task_id: str, correlation_id: str | None = None) -> Task:
        return await self._transition(user_id, task_id, EventType.TASK_COMPLETED, correlation_id)

    async def reopen(self, user_id: str, task_id: str, correlation_id: str | None = None) -> Task:
        return await self._transition(user_id, task_id, EventType.TASK_REOPENED, correlation_id)

    async def delete(self, user_id: str, task_id: str, correlation_id: str | None = None) -> Task:
        return await self._transition(user_id, task_id, EventType.TASK_DELETED, correlation_id)

    async def restore(self, user_id: str, task_id: str, correlation_id: str | None = None) -> Task:
        return await self._transition(user_id, task_id, EventType.TASK_RESTORED, correlation_id)

    async def _transition(
        self, user_id: str, task_id: str, kind: EventType, correlation_id: str | None
    ) -> Task:
        return await self._change(user_id, task_id, kind, _STEPS[kind], correlation_id)

    async def _change(
        self,
        user_id: str,
        task_id: str,
        kind: EventType,
        step: Callable[[Task, dt.datetime], dict[str, list[Any]]],
        correlation_id: str | None,
        expected_version: int | None = None,
    ) -> Task:
        """Load, `step` and save the task in one writing unit: for changes that parse nothing."""
        check_task_id(task_id)

        async def attempt() -> Task:
            now = self._clock.now()
            async with self._uow() as uow:
                task = await load(uow, user_id, task_id, expected_version)
                version = task.version
                changes = step(task, now)
                if changes:
                    await uow.tasks.save(task, expected_version=version)
                    event = task_event(
                        kind, task, changes, now, source=self._source, correlation_id=correlation_id
                    )
                    uow.record(event)
                    await uow.commit()
                return task

        return await _retrying(attempt, retry=expected_version is None)

    async def recur(
        self,
        user_id: str,
        task_id: str,
        causation_id: str | None = None,
        source: str | None = None,
    ) -> Task | None:
        """Create the next occurrence of a completed recurring task, once: a repeated or late
        call finds the link already made (or the task reopened) and does nothing. `source` names
        the caller in the events when it is not this service's own (the recurrence worker)."""
        async with self._uow(read_only=True) as uow:
            task = await uow.tasks.get(user_id, task_id)
        if task is None or not _waiting_to_recur(task):
            return None
        now = self._clock.now()
        following = await asyncio.to_thread(_after_completion, task, now)
        version = task.version
        created = None
        if following.due is None:
            changes = task.end_series(now, following.skipped)
        else:
            created = task.following(str(uuid.uuid4()), following.due, following.number, now)
            changes = task.recurred(created.id, now, following.skipped)
        source = source or self._source
        async with self._uow() as uow:
            # the version check first: a call that lost a race leaves nothing written, even in
            # a unit of work joined to its caller's transaction
            await uow.tasks.save(task, expected_version=version)
            if created is not None:
                await uow.tasks.add(created)
                uow.record(created_event(created, now, source=source, causation_id=causation_id))
            kind = EventType.TASK_RECURRED
            uow.record(
                task_event(kind, task, changes, now, source=source, causation_id=causation_id)
            )
            await uow.commit()
        return created

    async def skip_occurrence(
        self, user_id: str, task_id: str, correlation_id: str | None = None
    ) -> Task:
        """Move an open recurring task to its next occurrence without completing it."""
        check_task_id(task_id)

        async def attempt() -> Task:
            task = await self._read_task(user_id, task_id)
            now = self._clock.now()
            following = await asyncio.to_thread(_next_slot, task, now)
            if following.due is None:
                raise InvalidTransition(
                    "task_id: the series has no later occurrence to skip to. Fix: complete or"
                    " delete the task, or extend its recurrence (COUNT/UNTIL)."
                )
            due, number = following.due, following.number
            return await self._write(
                task, lambda t, now: t.skip_to(due, number, now), correlation_id
            )

        return await _retrying(attempt, retry=True)

    async def _read_task(
        self, user_id: str, task_id: str, expected_version: int | None = None
    ) -> Task:
        async with self._uow(read_only=True) as uow:
            return await load(uow, user_id, task_id, expected_version)

    async def _write(
        self,
        task: Task,
        change: Callable[[Task, dt.datetime], dict[str, list[Any]]],
        correlation_id: str | None,
    ) -> Task:
        """Apply `change` to `task` as it was read and write it, unless it changed since
        (ConcurrentChange); no change writes nothing."""
        now = self._clock.now()
        version = task.version
        changes = change(task, now)
        if not changes:
            return task
        kind = EventType.TASK_UPDATED
        event = task_event(
            kind, task, changes, now, source=self._source, correlation_id=correlation_id
        )
        async with self._uow() as uow:
            await uow.tasks.save(task, expected_version=version)
            uow.record(event)
            await uow.commit()
        return task


def _waiting_to_recur(task: Task) -> bool:
    """A completed occurrence of a live series whose next occurrence is not made yet."""
    return (
        task.recurrence is not None
        and task.due is not None
        and task.status is Status.COMPLETED
        and task.recurred_to is None
        and not task.series_ended
    )


def _after_completion(task: Task, now: dt.datetime) -> NextOccurrence:
    assert task.recurrence is not None and task.due is not None
    done = task.completed_at or now
    return next_occurrence(task.recurrence, task.due, task.occurrence, done, now)


def _next_slot(task: Task, now: dt.datetime) -> NextOccurrence:
    """The occurrence an open recurring task skips to: the schedule's next slot from now."""
    if task.recurrence is None or task.due is None:
        raise ValidationFailed(
            "task_id",
            "is not a recurring task",
            "use update_task to move its due, or set recurrence first",
        )
    if task.status is not Status.OPEN:
        raise InvalidTransition(
            f"task_id: the task is {task.status}; only an open occurrence can be skipped."
            " Fix: reopen_task it first, or skip an open occurrence."
        )
    series = dataclasses.replace(task.recurrence, anchor=RecurrenceAnchor.SCHEDULE)
    return next_occurrence(series, task.due, task.occurrence, now, now)


async def _retrying(attempt: Callable[[], Awaitable[Task]], retry: bool) -> Task:
    """Run a read-modify-write; a caller that named no version gets it re-applied on a race."""
    for n in range(CONCURRENT_ATTEMPTS - 1):
        try:
            return await attempt()
        except ConcurrentChange:
            if not retry:
                raise
            # jitter, so writers that collided do not collide again in lockstep
            await asyncio.sleep(random.uniform(0, 0.002 * (n + 1)))
    return await attempt()
