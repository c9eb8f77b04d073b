"""The agenda and completed-task filters through a real MCP client, on SQLite and PostgreSQL:
overdue, today and the next 7 days in the user's zone (Europe/Berlin; the clock is at
2026-11-23 11:00 there), with counts, and tasks found by when they were done."""

from __future__ import annotations

import datetime as dt

from fastmcp import Client

from domain.clock import FixedClock
from tests.support.tools import add, call, refused


async def test_the_agenda_groups_open_tasks_by_day_in_the_users_zone(
    alice: Client, bob: Client, clock: FixedClock
) -> None:
    await add(alice, "late", clock, due="2026-11-20")
    await add(alice, "this morning", clock, due="2026-11-23T08:00")  # passed: overdue
    await add(alice, "tonight", clock, due="2026-11-23T23:30")
    await add(alice, "all day today", clock, due="2026-11-23")
    await add(alice, "tomorrow", clock, due="2026-11-24T00:30")  # 23:30 UTC today
    await add(alice, "in a week", clock, due="2026-11-30")
    await add(alice, "in eight days", clock, due="2026-12-01")
    await add(alice, "someday", clock)
    done = await add(alice, "done today", clock, due="2026-11-23")
    await call(alice, "complete_task", task_id=done["id"])
    await add(bob, "bob's overdue", clock, due="2026-11-01")

    agenda = await call(alice, "agenda")
    assert agenda["date"] == "2026-11-23" and agenda["timezone"] == "Europe/Berlin"
    assert agenda["counts"] == {"overdue": 2, "today": 2, "next_7_days": 2, "completed_today": 1}
    sections = [(t["section"], t["title"]) for t in agenda["tasks"]]
    assert sections == [
        ("overdue", "late"),
        ("overdue", "this morning"),
        ("today", "all day today"),
        ("today", "tonight"),
        ("next_7_days", "tomorrow"),
        ("next_7_days", "in a week"),
    ]
    result = await alice.call_tool("agenda", {"limit": 1})
    text = result.content[0].text  # type: ignore[union-attr]
    assert text.startswith("Agenda for Monday 2026-11-23 (Europe/Berlin): 2 overdue, 2 today")
    assert "'late'" in text and "… 1 more" in text
    assert [t["title"] for t in result.structured_content["tasks"]] == [  # type: ignore[index]
        "late",
        "all day today",
        "tomorrow",
    ]
    assert (await call(bob, "agenda"))["counts"]["overdue"] == 1


async def test_an_empty_agenda_says_so(alice: Client) -> None:
    agenda = await call(alice, "agenda")
    assert agenda["tasks"] == [] and set(agenda["counts"].values()) == {0}
    assert (await refused(alice, "agenda", limit=101)).startswith("limit:")


async def test_done_tasks_are_found_by_when_they_were_done(
    alice: Client, clock: FixedClock
) -> None:
    first = await add(alice, "first", clock)
    second = await add(alice, "second", clock)
    await add(alice, "still open", clock)
    await call(alice, "complete_task", task_id=first["id"])  # 2026-11-23 11:00:03 Berlin
    clock.advance(dt.timedelta(days=2))
    await call(alice, "complete_task", task_id=second["id"])  # 2026-11-25

    async def done(**bounds: str) -> list[str]:
        page = await call(alice, "list_tasks", status="completed", **bounds)
        return [t["title"] for t in page["tasks"]]

    assert await done(completed_after="2026-11-24") == ["second"]
    assert await done(completed_before="2026-11-24") == ["first"]
    assert await done(completed_after="2026-11-23T11:00:00+01:00") == ["first", "second"]
    assert await done(completed_after="2026-11-23T11:00:04+01:00") == ["second"]
    assert await done(completed_after="2026-11-26") == []
    assert (await refused(alice, "list_tasks", completed_after="last week")).startswith(
        "completed_after:"
    )
