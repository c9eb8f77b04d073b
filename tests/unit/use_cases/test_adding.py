"""add: what it stores and records, idempotency, and that arguments are read before any unit of
work opens (on the in-memory store: no SQL)."""

from __future__ import annotations

import asyncio

import pytest

from domain.errors import IdempotencyConflict, ValidationFailed
from domain.events import EventType
from domain.service import NewTask
from tests.support.use_cases import USER, Opened, world


async def test_adding_a_task_stores_it_and_records_its_creation_with_every_field_set() -> None:
    w = world()

    added = await w.service.add(
        USER, NewTask(title=" Pay rent ", due="2026-03-05T10:00", priority="high", tags=["Home"])
    )

    assert added.created
    stored = w.store.tasks[added.task.id]
    assert (stored.title, stored.priority.value, stored.tags) == ("Pay rent", "high", ("home",))
    assert stored.version == 1
    (event,) = w.store.events
    assert event.event_type is EventType.TASK_CREATED
    assert event.sequence == 1
    assert event.changes["title"] == [None, "Pay rent"]
    assert "description" not in event.changes  # empty fields are not a change from nothing
    assert event.task == stored.snapshot()


async def test_an_add_without_a_key_opens_one_inserts_only_unit() -> None:
    w = world()

    await w.service.add(USER, NewTask(title="Call mum"))

    assert w.store.opened == [Opened(read_only=False, inserts_only=True)]


async def test_a_repeated_idempotency_key_answers_the_first_task_and_writes_nothing_more() -> None:
    w = world()
    first = await w.service.add(USER, NewTask(title="Call mum"), idempotency_key="k1")

    again = await w.service.add(USER, NewTask(title="Call mum"), idempotency_key="k1")

    assert not again.created
    assert again.task.id == first.task.id
    assert len(w.store.tasks) == 1
    assert w.store.kinds() == [EventType.TASK_CREATED]
    assert Opened(read_only=False, inserts_only=True) not in w.store.opened


async def test_an_idempotency_key_reused_with_other_arguments_is_refused() -> None:
    w = world()
    await w.service.add(USER, NewTask(title="Call mum"), idempotency_key="k1")

    with pytest.raises(IdempotencyConflict, match="idempotency_key"):
        await w.service.add(USER, NewTask(title="Call dad"), idempotency_key="k1")

    assert len(w.store.tasks) == 1


async def test_the_same_key_of_another_user_is_another_task() -> None:
    w = world()
    await w.service.add(USER, NewTask(title="Call mum"), idempotency_key="k1")

    other = await w.service.add("bob", NewTask(title="Call mum"), idempotency_key="k1")

    assert other.created
    assert len(w.store.tasks) == 2


@pytest.mark.parametrize(
    ("new", "field"),
    [
        pytest.param(NewTask(title="  "), "title", id="empty-title"),
        pytest.param(NewTask(title="x", due="someday maybe"), "due", id="unreadable-due"),
        pytest.param(NewTask(title="x", recurrence="FREQ=DAILY"), "recurrence", id="rule-no-due"),
        pytest.param(
            NewTask(title="x", due="2026-03-05", recurrence="FREQ=SOMETIMES"),
            "recurrence",
            id="bad-rule",
        ),
        pytest.param(NewTask(title="x", reminders=["PT15M"]), "reminders", id="reminder-no-due"),
        pytest.param(NewTask(title="x", timezone="Mars/Olympus"), "timezone", id="bad-zone"),
    ],
)
async def test_an_invalid_argument_is_refused_before_any_unit_of_work_opens(
    new: NewTask, field: str
) -> None:
    w = world()

    with pytest.raises(ValidationFailed) as refused:
        await w.service.add(USER, new)

    assert refused.value.field == field
    assert "Fix:" in refused.value.message
    assert w.store.opened == []
    assert w.store.tasks == {} and w.store.events == []


async def test_an_invalid_idempotency_key_is_refused_before_any_unit_of_work_opens() -> None:
    w = world()

    with pytest.raises(ValidationFailed, match="idempotency_key"):
        await w.service.add(USER, NewTask(title="x"), idempotency_key=" ")

    assert w.store.opened == []


async def test_phrases_and_rules_are_read_before_the_writing_unit_opens() -> None:
    w = world("Europe/Berlin")

    added = await w.service.add(
        USER, NewTask(title="Stand-up", due="tomorrow 9am", recurrence="every weekday")
    )

    assert added.task.recurrence is not None
    assert added.task.recurrence.rule == "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"
    assert added.task.due is not None and added.task.due.local.isoformat().startswith(
        "2026-03-03T09:00"
    )
    assert w.clock.read_while_writing and not any(w.clock.read_while_writing)


async def test_a_rule_that_is_slow_to_expand_does_not_hold_up_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("domain.recurrence._SEARCH_SECONDS", 0.3)
    w = world()
    # every seventh day from a Tuesday is never a Monday: dateutil walks until the bound
    never = NewTask(title="x", due="2026-03-03T09:00", recurrence="FREQ=DAILY;INTERVAL=7;BYDAY=MO")
    adding = asyncio.create_task(w.service.add(USER, never))

    await asyncio.sleep(0)  # the add runs up to its first wait; a search on the loop would end it

    assert not adding.done()
    with pytest.raises(ValidationFailed, match="recurrence: yields no occurrence"):
        await adding
    assert w.store.opened == []
