"""Many tasks in one call: add, change, or change the status of up to MAX_BATCH tasks.

All or nothing: every item is read and checked first, then one transaction writes them all,
one event per task, in the order given. A refused item refuses the call, naming its index and
field (`tasks[3].due: ...`, `task_ids[0]: ...`), and nothing is written.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from domain.arguments import ArgumentReader, NewTask, check_idempotency_key, check_patch_fields
from domain.commands import Added
from domain.errors import (
    ConcurrentChange,
    DueflowError,
    IdempotencyConflict,
    IdempotencyRace,
    ValidationFailed,
    echo,
)
from domain.events import EventType, created_event, task_event
from domain.model import Task, check_task_id
from domain.patch import expands_rule, patched_values
from domain.ports import Clock, IdempotencyRecord, UnitOfWorkFactory
from domain.queries import load

MAX_BATCH = 100
STEPS: dict[EventType, Callable[[Task, dt.datetime], dict[str, list[Any]]]] = {
    EventType.TASK_COMPLETED: Task.complete,
    EventType.TASK_REOPENED: Task.reopen,
    EventType.TASK_DELETED: Task.delete,
    EventType.TASK_RESTORED: Task.restore,
}
ATTEMPTS = 5  # a batch that met a concurrent change of one of its tasks is read again
# `(done, total)`: how far a batch is; awaited by the caller's progress reporting
Progress = Callable[[int, int], Awaitable[None]]
_FIELD = re.compile(r"^([a-z_]+): ")


class ItemRefused(DueflowError):
    """An item of a batch was refused; the message names its index and field."""


@dataclass(frozen=True, slots=True)
class Change:
    """One item of an update batch: the task, the fields to change, the version it must be at."""

    task_id: str
    patch: Mapping[str, Any]
    expected_version: int | None = None


@contextmanager
def item(name: str, index: int, keyed: bool = True) -> Iterator[None]:
    """Name the item `name[index]` in a refusal raised inside: `tasks[2].due: ...` for an item
    that is an object (`keyed`), `task_ids[2]: ...` for one that is a task id."""
    try:
        yield
    except DueflowError as exc:
        raise ItemRefused(_reindexed(exc.message, f"{name}[{index}]", keyed)) from None


def _reindexed(message: str, where: str, keyed: bool) -> str:
    found = _FIELD.match(message)
    if found is None:
        return f"{where}: {message[:1].lower()}{message[1:]}"
    if not keyed:
        return f"{where}: {message[found.end() :]}"
    return f"{where}.{message}"


def check_batch(size: int, name: str) -> None:
    if not 1 <= size <= MAX_BATCH:
        raise ValidationFailed(
            name,
            "is empty" if size == 0 else f"has {size} items",
            f"send 1 to {MAX_BATCH} per call; split a longer list into several calls",
        )


def _once(ids: Sequence[str], name: str, keyed: bool) -> None:
    """Refuse a task named twice in one batch (the second change would not see the first)."""
    seen: dict[str, int] = {}
    for index, task_id in enumerate(ids):
        if task_id in seen:
            where = f"{name}[{index}]" + (".task_id" if keyed else "")
            raise ItemRefused(
                f"{where}: names the task of {name}[{seen[task_id]}] again. Fix: give each task"
                " once per call (merge the changes into one item)."
            )
        seen[task_id] = index


async def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        await progress(done, total)


class BatchCommands:
    """The batch forms of add, update and the status changes, for any user."""

    def __init__(
        self, unit_of_work: UnitOfWorkFactory, clock: Clock, read: ArgumentReader, source: str
    ) -> None:
        self._uow = unit_of_work
        self._clock = clock
        self._read = read
        self._source = source

    async def add_many(
        self,
        user_id: str,
        items: Sequence[tuple[NewTask, str | None]],
        correlation_id: str | None = None,
        progress: Progress | None = None,
    ) -> list[Added]:
        """Create the tasks `items` describe (each with its idempotency key or None), in order;
        a key used before with the same arguments answers the task it created."""
        check_batch(len(items), "tasks")
        now = self._clock.now()
        total = len(items) + 1
        tasks: list[Task] = []
        keys: dict[str, int] = {}
        for index, (new, key) in enumerate(items):
            with item("tasks", index):
                if key is not None:
                    check_idempotency_key(key)
                    if key in keys:
                        raise ValidationFailed(
                            "idempotency_key",
                            f"is the key of tasks[{keys[key]}] too",
                            "give each task its own key",
                        )
                    keys[key] = index
                # a microsecond apart: listings in creation order show them in the order given
                at = now + dt.timedelta(microseconds=index)
                if new.recurrence is None:
                    tasks.append(self._read.new_task(user_id, new, at))
                else:
                    tasks.append(await asyncio.to_thread(self._read.new_task, user_id, new, at))
            await _report(progress, index + 1, total)
        try:
            added = await self._add(tasks, items, correlation_id)
        except IdempotencyRace:
            added = await self._add(tasks, items, correlation_id)
        await _report(progress, total, total)
        return added

    async def _add(
        self,
        tasks: list[Task],
        items: Sequence[tuple[NewTask, str | None]],
        correlation_id: str | None,
    ) -> list[Added]:
        added: list[Added] = []
        # a writing unit, not an inserts-only one: PostgreSQL writes the latter as one statement
        # whose parts run in no set order, and a batch's events keep the order of its items
        async with self._uow() as uow:
            for index, (task, (new, key)) in enumerate(zip(tasks, items, strict=True)):
                if key is not None:
                    seen = await uow.tasks.find_idempotency(task.user_id, key)
                    if seen is not None:
                        if seen.request_hash != new.fingerprint():
                            raise ItemRefused(
                                f"tasks[{index}].idempotency_key: {echo(key)} was already used"
                                " with different arguments. Fix: use a new key for a new task,"
                                " or repeat the first call exactly."
                            )
                        existing = await uow.tasks.get(task.user_id, seen.task_id)
                        if existing is None:
                            raise IdempotencyConflict(
                                f"tasks[{index}].idempotency_key: the task created with"
                                f" {echo(key)} is gone. Fix: use a new key."
                            )
                        added.append(Added(existing, created=False))
                        continue
                await uow.tasks.add(task)
                if key is not None:
                    record = IdempotencyRecord(new.fingerprint(), task.id)
                    await uow.tasks.remember_idempotency(task.user_id, key, record, task.created_at)
                uow.record(
                    created_event(
                        task, task.created_at, source=self._source, correlation_id=correlation_id
                    )
                )
                added.append(Added(task, created=True))
            await uow.commit()
        return added

    async def update_many(
        self,
        user_id: str,
        changes: Sequence[Change],
        correlation_id: str | None = None,
        progress: Progress | None = None,
    ) -> list[Task]:
        """Change the tasks as `changes` say, in order (see TaskCommands.update)."""
        check_batch(len(changes), "tasks")
        for index, change in enumerate(changes):
            with item("tasks", index):
                check_task_id(change.task_id)
                check_patch_fields(change.patch)
        _once([change.task_id for change in changes], "tasks", keyed=True)
        named = any(change.expected_version is not None for change in changes)
        for attempt in range(ATTEMPTS):
            try:
                return await self._update(user_id, changes, correlation_id, progress)
            except _Raced as raced:
                if named or attempt == ATTEMPTS - 1:
                    raise ItemRefused(
                        f"tasks[{raced.index}].task_id: the task changed while this call wrote"
                        " it. Fix: get_task again and retry with its current version."
                    ) from None
        raise AssertionError("unreachable")

    async def _update(
        self,
        user_id: str,
        changes: Sequence[Change],
        correlation_id: str | None,
        progress: Progress | None,
    ) -> list[Task]:
        total = len(changes) + 1
        async with self._uow(read_only=True) as uow:
            tasks = []
            for index, change in enumerate(changes):
                with item("tasks", index):
                    tasks.append(await load(uow, user_id, change.task_id, change.expected_version))
        values = []
        for index, (task, change) in enumerate(zip(tasks, changes, strict=True)):
            with item("tasks", index):
                if expands_rule(task, change.patch):
                    read = await asyncio.to_thread(patched_values, task, change.patch, self._read)
                else:
                    read = patched_values(task, change.patch, self._read)
                values.append(read)
            await _report(progress, index + 1, total)
        now = self._clock.now()
        async with self._uow() as uow:
            for index, (task, read) in enumerate(zip(tasks, values, strict=True)):
                version = task.version
                with item("tasks", index):
                    diff = task.change(now, **read)
                if not diff:
                    continue
                try:
                    await uow.tasks.save(task, expected_version=version)
                except ConcurrentChange:
                    raise _Raced(index) from None
                kind = EventType.TASK_UPDATED
                uow.record(
                    task_event(
                        kind, task, diff, now, source=self._source, correlation_id=correlation_id
                    )
                )
            await uow.commit()
        await _report(progress, total, total)
        return tasks

    async def transition_many(
        self,
        user_id: str,
        task_ids: Sequence[str],
        kind: EventType,
        correlation_id: str | None = None,
        progress: Progress | None = None,
    ) -> list[Task]:
        """Apply the status change `kind` names to every task, in order; a task already in that
        status is left as it is."""
        step = STEPS[kind]
        check_batch(len(task_ids), "task_ids")
        for index, task_id in enumerate(task_ids):
            with item("task_ids", index, keyed=False):
                check_task_id(task_id)
        _once(task_ids, "task_ids", keyed=False)
        await _report(progress, 0, len(task_ids))
        for attempt in range(ATTEMPTS):
            try:
                tasks = await self._transition(user_id, task_ids, kind, step, correlation_id)
            except _Raced as raced:
                if attempt == ATTEMPTS - 1:
                    raise ItemRefused(
                        f"task_ids[{raced.index}]: the task kept changing while this call wrote"
                        " it. Fix: retry the call."
                    ) from None
                continue
            await _report(progress, len(task_ids), len(task_ids))
            return tasks
        raise AssertionError("unreachable")

    async def _transition(
        self,
        user_id: str,
        task_ids: Sequence[str],
        kind: EventType,
        step: Callable[[Task, dt.datetime], dict[str, list[Any]]],
        correlation_id: str | None,
    ) -> list[Task]:
        now = self._clock.now()
        tasks = []
        async with self._uow() as uow:
            for index, task_id in enumerate(task_ids):
                with item("task_ids", index, keyed=False):
                    task = await load(uow, user_id, task_id)
                    version = task.version
                    diff = step(task, now)
                if diff:
                    try:
                        await uow.tasks.save(task, expected_version=version)
                    except ConcurrentChange:
                        raise _Raced(index) from None
                    uow.record(
                        task_event(
                            kind,
                            task,
                            diff,
                            now,
                            source=self._source,
                            correlation_id=correlation_id,
                        )
                    )
                tasks.append(task)
            await uow.commit()
        return tasks


class _Raced(ConcurrentChange):
    """A task of the batch changed between its read and its write."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index
