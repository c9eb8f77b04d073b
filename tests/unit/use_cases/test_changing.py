"""update, the status changes, recur and skip_occurrence on the in-memory store (no SQL)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from domain.errors import ConcurrentChange, Conflict, InvalidTransition, NotFound, ValidationFailed
from domain.events import EventType
from domain.memory import MemoryUnitOfWork
from domain.model import Status, Task
from domain.service import NewTask
from tests.support.use_cases import OTHER, USER, Opened, WatchedStore, World, world


async def _task(w: World, **fields: Any) -> Task:
    return (await w.service.add(USER, NewTask(**{"title": "Water plants", **fields}))).task


async def test_update_changes_only_the_patched_fields_and_records_the_diff() -> None:
    w = world()
    task = await _task(w, priority="low", tags=["home"])

    updated = await w.service.update(USER, task.id, {"title": "Water the plants", "tags": None})

    assert (updated.title, updated.tags, updated.priority.value) == ("Water the plants", (), "low")
    assert updated.version == 2
    event = w.store.events[-1]
    assert event.event_type is EventType.TASK_UPDATED
    assert event.changes == {"title": ["Water plants", "Water the plants"], "tags": [["home"], []]}
    assert w.store.tasks[task.id].version == 2


async def test_update_reads_the_task_in_a_read_only_unit_and_writes_in_another() -> None:
    w = world()
    task = await _task(w)
    w.store.opened.clear()

    await w.service.update(USER, task.id, {"due": "next friday 5pm"})

    assert w.store.opened == [Opened(True, False), Opened(False, False)]
    assert not any(w.clock.read_while_writing)


async def test_a_patch_of_plain_fields_is_read_up_front_and_written_in_one_unit() -> None:
    w = world()
    task = await _task(w)
    w.store.opened.clear()

    await w.service.update(USER, task.id, {"title": "Water the ferns", "priority": "high"})

    assert w.store.opened == [Opened(False, False)]


async def test_an_update_that_changes_nothing_records_nothing() -> None:
    w = world()
    task = await _task(w, due="2026-03-05")
    w.store.opened.clear()

    same = await w.service.update(USER, task.id, {"title": "Water plants"})
    again = await w.service.update(USER, task.id, {"due": "2026-03-05"})

    assert same.version == again.version == 1
    # the due needs the task read first; with nothing changed no writing unit opens
    assert w.store.opened == [Opened(False, False), Opened(True, False)]
    assert w.store.kinds() == [EventType.TASK_CREATED]


@pytest.mark.parametrize(
    ("fields", "patch", "field"),
    [
        pytest.param({}, {"colour": "red"}, "colour", id="unknown-field"),
        pytest.param({}, {"title": None}, "title", id="clear-title"),
        pytest.param({"due": "2026-03-05"}, {"due": "31/02"}, "due", id="bad-due"),
        pytest.param(
            {"due": "2026-03-05T10:00", "recurrence": "FREQ=DAILY"},
            {"due": None},
            "due",
            id="clear-due-of-series",
        ),
        pytest.param(
            {"due": "2026-03-05T10:00", "reminders": ["PT1H"]},
            {"due": None},
            "due",
            id="clear-due-under-relative-reminder",
        ),
        pytest.param({}, {"recurrence_anchor": "completion"}, "recurrence_anchor", id="anchor"),
    ],
)
async def test_a_patch_the_rules_refuse_writes_nothing(
    fields: dict[str, Any], patch: dict[str, Any], field: str
) -> None:
    w = world()
    task = await _task(w, **fields)

    with pytest.raises(ValidationFailed) as refused:
        await w.service.update(USER, task.id, patch)

    assert refused.value.field == field
    assert w.store.tasks[task.id].version == 1
    assert w.store.kinds() == [EventType.TASK_CREATED]


async def test_moving_the_due_of_a_series_re_anchors_it_and_keeps_its_rule() -> None:
    w = world()
    task = await _task(w, due="2026-03-05T10:00", recurrence="FREQ=WEEKLY")

    moved = await w.service.update(USER, task.id, {"due": "2026-03-06T10:00"})

    assert moved.recurrence is not None and task.recurrence is not None
    assert moved.recurrence.rule == "FREQ=WEEKLY"
    assert moved.recurrence.series_id == task.recurrence.series_id
    assert moved.recurrence.start == dt.datetime(2026, 3, 6, 10, 0)


async def test_an_update_at_a_stale_expected_version_is_a_conflict_and_writes_nothing() -> None:
    w = world()
    task = await _task(w)
    await w.service.update(USER, task.id, {"priority": "high"})

    with pytest.raises(Conflict, match="expected_version: the task is at version 2"):
        await w.service.update(USER, task.id, {"title": "New"}, expected_version=1)

    assert w.store.tasks[task.id].title == "Water plants"


@dataclass
class RacingStore(WatchedStore):
    """Another writer changes every task just before each of the next `races` writing units."""

    races: int = 0

    def __call__(self, *, read_only: bool = False, inserts_only: bool = False) -> MemoryUnitOfWork:
        if not read_only and not inserts_only and self.races > 0:
            self.races -= 1
            for task in self.tasks.values():
                task.version += 1
        return super().__call__(read_only=read_only, inserts_only=inserts_only)


async def test_an_update_without_a_version_is_re_applied_after_a_concurrent_change() -> None:
    store = RacingStore()
    w = world(store=store)
    task = await _task(w)
    store.races = 2

    updated = await w.service.update(USER, task.id, {"title": "Repotted", "due": "2026-03-09"})

    assert updated.title == "Repotted"
    assert w.store.tasks[task.id].title == "Repotted"
    assert w.store.kinds() == [EventType.TASK_CREATED, EventType.TASK_UPDATED]


async def test_an_update_at_a_named_version_that_races_is_refused() -> None:
    store = RacingStore()
    w = world(store=store)
    task = await _task(w)
    store.races = 1

    with pytest.raises(ConcurrentChange):
        await w.service.update(USER, task.id, {"due": "2026-03-09"}, expected_version=1)

    assert w.store.tasks[task.id].due is None


async def test_a_task_goes_through_complete_reopen_delete_restore_with_one_event_each() -> None:
    w = world()
    task = await _task(w)

    done = await w.service.complete(USER, task.id, correlation_id="c1")
    assert (done.status, done.completed_at) == (Status.COMPLETED, w.clock.now())
    assert (await w.service.complete(USER, task.id)).version == 2  # again: no change
    await w.service.reopen(USER, task.id)
    await w.service.delete(USER, task.id)
    back = await w.service.restore(USER, task.id)

    assert back.status is Status.OPEN and back.version == 5
    assert w.store.kinds() == [
        EventType.TASK_CREATED,
        EventType.TASK_COMPLETED,
        EventType.TASK_REOPENED,
        EventType.TASK_DELETED,
        EventType.TASK_RESTORED,
    ]
    assert w.store.events[1].correlation_id == "c1"
    assert [e.sequence for e in w.store.events] == [1, 2, 3, 4, 5]


async def test_a_deleted_task_cannot_be_completed_or_changed() -> None:
    w = world()
    task = await _task(w)
    await w.service.delete(USER, task.id)

    with pytest.raises(InvalidTransition):
        await w.service.complete(USER, task.id)
    with pytest.raises(InvalidTransition):
        await w.service.update(USER, task.id, {"title": "x"})


async def test_another_users_task_is_not_found() -> None:
    w = world()
    task = await _task(w)

    with pytest.raises(NotFound):
        await w.service.get(OTHER, task.id)
    with pytest.raises(NotFound):
        await w.service.complete(OTHER, task.id)


async def test_recur_creates_the_next_occurrence_once_and_links_the_two() -> None:
    w = world()
    task = await _task(w, due="2026-03-02T17:00", recurrence="FREQ=DAILY", reminders=["PT1H"])
    await w.service.complete(USER, task.id)

    created = await w.service.recur(USER, task.id, causation_id="e1")
    again = await w.service.recur(USER, task.id, causation_id="e1")

    assert created is not None and again is None
    assert created.due is not None and created.due.at == dt.datetime(2026, 3, 3, 17, tzinfo=dt.UTC)
    assert (created.occurrence, created.recurred_from) == (2, task.id)
    assert created.reminders == task.reminders
    done = w.store.tasks[task.id]
    assert (done.recurred_to, done.version) == (created.id, 3)
    created_event, recurred = w.store.events[-2:]
    assert created_event.event_type is EventType.TASK_CREATED
    assert created_event.causation_id == "e1"
    assert recurred.event_type is EventType.TASK_RECURRED
    assert recurred.changes == {"recurred_to": [None, created.id]}
    assert recurred.sequence == 3


async def test_recur_after_the_last_occurrence_ends_the_series() -> None:
    w = world()
    task = await _task(w, due="2026-03-02T17:00", recurrence="FREQ=DAILY;COUNT=1")
    await w.service.complete(USER, task.id)

    assert await w.service.recur(USER, task.id) is None

    done = w.store.tasks[task.id]
    assert done.series_ended and done.version == 3
    assert w.store.events[-1].changes == {"series_ended": [False, True]}
    assert await w.service.recur(USER, task.id) is None
    assert len(w.store.tasks) == 1


async def test_recur_leaves_an_open_or_plain_task_alone() -> None:
    w = world()
    series = await _task(w, due="2026-03-02T17:00", recurrence="FREQ=DAILY")
    plain = await _task(w)
    await w.service.complete(USER, plain.id)

    assert await w.service.recur(USER, series.id) is None
    assert await w.service.recur(USER, plain.id) is None
    assert len(w.store.tasks) == 2


async def test_skipping_moves_an_open_occurrence_to_the_next_slot_with_its_reminders() -> None:
    w = world()
    task = await _task(
        w, due="2026-03-02T17:00", recurrence="FREQ=WEEKLY", reminders=["2026-03-02T12:00Z"]
    )

    skipped = await w.service.skip_occurrence(USER, task.id)

    assert skipped.due is not None and skipped.due.at == dt.datetime(2026, 3, 9, 17, tzinfo=dt.UTC)
    assert skipped.occurrence == 2
    assert skipped.reminders[0].at == dt.datetime(2026, 3, 9, 12, tzinfo=dt.UTC)
    event = w.store.events[-1]
    assert event.event_type is EventType.TASK_UPDATED
    assert set(event.changes) == {"due", "reminders", "recurrence"}


async def test_skipping_a_task_that_does_not_repeat_is_refused() -> None:
    w = world()
    task = await _task(w, due="2026-03-02T17:00")

    with pytest.raises(ValidationFailed, match="task_id: is not a recurring task"):
        await w.service.skip_occurrence(USER, task.id)


async def test_skipping_past_the_last_occurrence_is_refused() -> None:
    w = world()
    task = await _task(w, due="2026-03-02T17:00", recurrence="FREQ=DAILY;COUNT=1")

    with pytest.raises(InvalidTransition, match="no later occurrence"):
        await w.service.skip_occurrence(USER, task.id)
