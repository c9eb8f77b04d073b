"""list_tasks and sort_tasks on the in-memory store: filters, orders and cursors (no SQL)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from domain.errors import ValidationFailed
from domain.service import ListArguments, NewTask
from tests.support.use_cases import OTHER, USER, Opened, World, world


async def _seed(w: World) -> dict[str, str]:
    """Five tasks a minute apart; answers title -> id."""
    ids = {}
    seeds: list[tuple[str, dict[str, Any]]] = [
        ("rent", {"due": "2026-03-01T09:00", "priority": "urgent", "tags": ["home", "money"]}),
        ("dentist", {"due": "2026-03-09", "priority": "medium", "tags": ["health"]}),
        ("taxes", {"due": "2026-04-30", "priority": "high", "tags": ["money"]}),
        ("read", {"description": "A novel about RENT"}),
        ("gym", {"due": "2026-03-02", "priority": "low", "tags": ["health"]}),
    ]
    for title, fields in seeds:
        ids[title] = (await w.service.add(USER, NewTask(title=title, **fields))).task.id
        w.clock.advance(dt.timedelta(minutes=1))
    await w.service.add(OTHER, NewTask(title="not mine"))
    return ids


async def _titles(w: World, **filters: object) -> list[str]:
    where = w.service.make_filter(ListArguments(**filters))  # type: ignore[arg-type]
    page = await w.service.list_tasks(USER, where, 50)
    return [t.title for t in page.tasks]


async def test_a_listing_pages_through_the_users_tasks_in_creation_order() -> None:
    w = world()
    await _seed(w)
    where = w.service.make_filter(ListArguments())
    w.store.opened.clear()

    first = await w.service.list_tasks(USER, where, 2)
    second = await w.service.list_tasks(USER, where, 2, first.next_cursor)
    last = await w.service.list_tasks(USER, where, 2, second.next_cursor)

    pages = [[t.title for t in page.tasks] for page in (first, second, last)]
    assert pages == [["rent", "dentist"], ["taxes", "read"], ["gym"]]
    assert last.next_cursor is None
    assert set(w.store.opened) == {Opened(read_only=True, inserts_only=False)}


@pytest.mark.parametrize(
    ("filters", "titles"),
    [
        pytest.param({"tags": ["money", "home"]}, ["rent"], id="all-tags"),
        pytest.param({"any_tags": ["health", "home"]}, ["rent", "dentist", "gym"], id="any-tags"),
        pytest.param({"priority": ["high", "urgent"]}, ["rent", "taxes"], id="priorities"),
        pytest.param({"query": "rent"}, ["rent", "read"], id="text-any-case"),
        pytest.param({"overdue": True}, ["rent"], id="overdue"),
        pytest.param({"overdue": False}, ["dentist", "taxes", "read", "gym"], id="not-overdue"),
        pytest.param({"due_before": "2026-03-09"}, ["rent", "gym"], id="due-before-a-day"),
        pytest.param({"due_after": "2026-03-09"}, ["dentist", "taxes"], id="due-after-a-day"),
    ],
)
async def test_every_filter_given_must_hold(filters: dict[str, object], titles: list[str]) -> None:
    w = world()
    await _seed(w)

    assert await _titles(w, **filters) == titles


async def test_completed_and_deleted_tasks_are_listed_only_when_asked_for() -> None:
    w = world()
    ids = await _seed(w)
    await w.service.complete(USER, ids["rent"])
    await w.service.delete(USER, ids["gym"])

    assert await _titles(w) == ["dentist", "taxes", "read"]
    assert await _titles(w, status="completed") == ["rent"]
    assert await _titles(w, status="deleted") == ["gym"]
    assert len(await _titles(w, status="all")) == 5


async def test_a_cursor_is_refused_under_other_filters() -> None:
    w = world()
    await _seed(w)
    first = await w.service.list_tasks(USER, w.service.make_filter(ListArguments()), 2)
    other = w.service.make_filter(ListArguments(tags=["money"]))

    with pytest.raises(ValidationFailed, match="cursor"):
        await w.service.list_tasks(USER, other, 2, first.next_cursor)
    with pytest.raises(ValidationFailed, match="cursor"):
        await w.service.sort_tasks(USER, other, ["due"], 2, first.next_cursor)


async def test_sorting_by_due_puts_undated_tasks_last_whichever_the_direction() -> None:
    w = world()
    await _seed(w)
    where = w.service.make_filter(ListArguments())

    ascending = await w.service.sort_tasks(USER, where, ["due"])
    descending = await w.service.sort_tasks(USER, where, ["due:desc"])

    assert [t.title for t in ascending.tasks] == ["rent", "gym", "dentist", "taxes", "read"]
    assert [t.title for t in descending.tasks] == ["taxes", "dentist", "gym", "rent", "read"]


async def test_a_sorted_listing_pages_with_its_cursor() -> None:
    w = world()
    await _seed(w)
    where = w.service.make_filter(ListArguments())

    first = await w.service.sort_tasks(USER, where, ["priority", "title"], 3)
    rest = await w.service.sort_tasks(USER, where, ["priority", "title"], 3, first.next_cursor)

    assert [t.title for t in first.tasks + rest.tasks] == [
        "rent",
        "taxes",
        "dentist",
        "gym",
        "read",
    ]
    assert rest.next_cursor is None


async def test_sorting_by_urgency_puts_the_overdue_urgent_task_first() -> None:
    w = world()
    await _seed(w)
    where = w.service.make_filter(ListArguments())

    page = await w.service.sort_tasks(USER, where, ["urgency"], 2)

    assert [t.title for t in page.tasks] == ["rent", "gym"]
    assert page.next_cursor is not None
