"""The OpenDues port (what the turn schedule reads): the SQL adapter on SQLite and PostgreSQL
answers as the in-memory adapter does, over the same tasks."""

from __future__ import annotations

import datetime as dt

from domain.adapters.open_dues_sql import SqlOpenDues
from domain.clock import FixedClock
from domain.memory import MemoryOpenDues, MemoryStore
from domain.ports import OpenDues
from domain.service import NewTask, TaskService
from dueflow.bootstrap import Runtime

UTC = dt.UTC
TODAY, TOMORROW = dt.date(2026, 11, 23), dt.date(2026, 11, 24)


async def same_tasks(service: TaskService) -> dict[str, str]:
    """Alice's and bob's tasks (Europe/Berlin; the clock at 11:00 there): titles -> ids."""
    ids: dict[str, str] = {}
    for user, title, due in [
        ("alice", "noon", "2026-11-23T12:00"),
        ("alice", "one", "2026-11-23T13:00"),
        ("alice", "today", "2026-11-23"),
        ("alice", "tomorrow", "2026-11-24"),
        ("alice", "in Tokyo", None),
        ("alice", "done", "2026-11-23T11:30"),
        ("alice", "undated", None),
        ("bob", "bob's", "2026-11-23T11:15"),
    ]:
        zone = "Asia/Tokyo" if title == "in Tokyo" else None
        task_due = "2026-11-23T20:30" if zone else due
        added = await service.add(user, NewTask(title=title, due=task_due, timezone=zone))
        ids[title] = added.task.id
    await service.complete("alice", ids["done"])
    return ids


async def answers(dues: OpenDues, ids: dict[str, str]) -> list[object]:
    names = {task_id: title for title, task_id in ids.items()}

    def titled(found: list[str]) -> list[str]:
        return [names[task_id] for task_id in found]

    return [
        await dues.next_due("alice", dt.datetime(2026, 11, 23, 10, tzinfo=UTC)),
        await dues.next_due("alice", dt.datetime(2026, 11, 23, 11, tzinfo=UTC)),  # at: included
        await dues.next_due("alice", dt.datetime(2026, 11, 23, 12, 0, 1, tzinfo=UTC)),
        await dues.next_due("carol", dt.datetime(2026, 11, 23, 10, tzinfo=UTC)),
        titled(
            await dues.fell_due(
                "alice",
                dt.datetime(2026, 11, 23, 10, tzinfo=UTC),
                dt.datetime(2026, 11, 23, 12, tzinfo=UTC),  # before: 13:00 Berlin not yet
                (TODAY, TODAY),
                10,
            )
        ),
        titled(
            await dues.fell_due(
                "alice",
                dt.datetime(2026, 11, 23, 10, tzinfo=UTC),
                dt.datetime(2026, 11, 23, 23, tzinfo=UTC),
                (TODAY, TOMORROW),  # the day turned: today's all-day task fell due too
                10,
            )
        ),
        titled(
            await dues.fell_due(
                "alice",
                dt.datetime(2026, 11, 23, 10, tzinfo=UTC),
                dt.datetime(2026, 11, 23, 23, tzinfo=UTC),
                (TODAY, TOMORROW),
                2,
            )
        ),
    ]


async def test_the_sql_adapter_answers_as_the_memory_adapter_does(
    runtime: Runtime, clock: FixedClock
) -> None:
    store = MemoryStore()
    in_memory = TaskService(store, clock, default_timezone="Europe/Berlin")
    memory_ids = await same_tasks(in_memory)
    sql_ids = await same_tasks(runtime.service)

    expected = [
        dt.datetime(2026, 11, 23, 11, tzinfo=UTC),  # noon in Berlin
        dt.datetime(2026, 11, 23, 11, tzinfo=UTC),
        None,  # the last one (13:00 Berlin) is 12:00 UTC
        None,
        ["noon", "in Tokyo"],
        ["today", "noon", "in Tokyo", "one"],
        ["today", "noon"],
    ]
    assert await answers(MemoryOpenDues(store), memory_ids) == expected
    assert await answers(SqlOpenDues(runtime.engine), sql_ids) == expected
