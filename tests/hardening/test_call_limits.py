"""Defect 6 of issue 14: what one call may cost is bounded. A series keeps at most MAX_EXDATES
EXDATEs in at most MAX_RECURRENCE_TEXT characters, each within the supported years; no page
carries more than about PAGE_CHARACTERS, however large the tasks or history entries it lists:
history pages stop there and their cursors still walk every entry exactly once."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from fastmcp import Client

from domain.pages import PAGE_CHARACTERS
from domain.recurrence import MAX_EXDATES, MAX_RECURRENCE_TEXT
from dueflow.bootstrap import Runtime
from tests.support.refusals import assert_refused
from tests.support.tools import add, call, history_of

DUE = "2026-12-01T09:00"


def exdates(count: int) -> str:
    start = dt.date(2027, 1, 1)
    return ",".join((start + dt.timedelta(days=i)).strftime("%Y%m%dT090000") for i in range(count))


def largest_task(number: int) -> dict[str, Any]:
    """A task with every text at its limit and a full series: about 26,000 characters."""
    return {
        "title": f"{number:04d} " + "t" * 490,
        "description": "d" * 10_000,
        "tags": [f"tag-{i:02d}-" + "x" * 50 for i in range(50)],
        "due": DUE,
        "timezone": "Europe/Berlin",
        "recurrence": f"FREQ=DAILY\nEXDATE:{exdates(MAX_EXDATES)}",
    }


async def test_a_series_keeps_up_to_the_exdate_limit(alice: Client) -> None:
    task = await add(alice, "busy series", due=DUE, recurrence=f"FREQ=DAILY\nEXDATE:{exdates(500)}")
    assert len(task["recurrence"]["exdates"]) == MAX_EXDATES


@pytest.mark.parametrize("tool", ["add_task", "preview_recurrence"])
async def test_more_exdates_than_the_limit_are_refused(
    alice: Client, runtime: Runtime, tool: str
) -> None:
    rule = f"FREQ=DAILY\nEXDATE:{exdates(MAX_EXDATES + 1)}"
    text = await assert_refused(
        alice, runtime, "recurrence", tool, **_arguments(tool, rule=rule, due=DUE)
    )
    assert f"has {MAX_EXDATES + 1} EXDATEs" in text and f"keep at most {MAX_EXDATES}" in text


async def test_updating_a_series_past_the_exdate_limit_is_refused(
    alice: Client, runtime: Runtime
) -> None:
    task = await add(alice, "series", due=DUE, recurrence="FREQ=DAILY")
    rule = f"FREQ=DAILY\nEXDATE:{exdates(MAX_EXDATES + 1)}"
    await assert_refused(
        alice, runtime, "recurrence", "update_task", task_id=task["id"], recurrence=rule
    )


async def test_a_recurrence_text_over_its_limit_is_refused_before_it_is_read(
    alice: Client, runtime: Runtime
) -> None:
    rule = "FREQ=DAILY\nEXDATE:" + "20270101," * (MAX_RECURRENCE_TEXT // 9 + 1)
    text = await assert_refused(
        alice, runtime, "recurrence", "add_task", title="x", due=DUE, recurrence=rule
    )
    assert f"keep it to {MAX_RECURRENCE_TEXT}" in text


@pytest.mark.parametrize("exdate", ["30000101", "30000101T090000", "18991231T230000Z"])
async def test_an_exdate_outside_the_supported_years_is_refused(
    alice: Client, runtime: Runtime, exdate: str
) -> None:
    text = await assert_refused(
        alice,
        runtime,
        "recurrence",
        "add_task",
        title="x",
        due=DUE,
        recurrence=f"FREQ=DAILY\nEXDATE:{exdate}",
    )
    assert "outside the supported years" in text


def _arguments(tool: str, *, rule: str, due: str) -> dict[str, Any]:
    if tool == "add_task":
        return {"title": "x", "due": due, "recurrence": rule}
    return {"recurrence": rule, "due": due}


async def test_a_full_page_of_the_largest_tasks_stays_under_the_page_budget(
    alice: Client,
) -> None:
    """Listings carry a summary of each task (no description, no EXDATEs): with titles and tags
    at their limits, 200 tasks still answer less than PAGE_CHARACTERS."""
    for number in range(200):
        await call(alice, "add_task", **largest_task(number))
    for tool, arguments in [("list_tasks", {}), ("list_tasks", {"sort": ["urgency"]})]:
        result = await alice.call_tool(tool, {**arguments, "limit": 200})
        assert result.structured_content is not None
        assert len(result.structured_content["tasks"]) == 200
        size = len(json.dumps(result.structured_content)) + len(result.content[0].text)  # type: ignore[union-attr]
        assert size < PAGE_CHARACTERS, (tool, size)


async def test_history_pages_stop_at_the_page_budget_and_cursors_walk_them_all(
    alice: Client, runtime: Runtime
) -> None:
    task = await call(alice, "add_task", **largest_task(1))
    for number in range(60):
        description = f"{number:02d}" + "e" * 9_990
        await call(alice, "update_task", task_id=task["task"]["id"], description=description)
    await runtime.relay.drain()

    first = await call(alice, "task_history", limit=200)
    entries = await history_of(alice, limit=200)
    assert first["next_cursor"] is not None
    assert len(str(first["entries"])) <= PAGE_CHARACTERS * 1.1
    assert len(entries) == 61
    assert len({entry["event_id"] for entry in entries}) == 61
