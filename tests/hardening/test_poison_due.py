"""Defect 1 of issue 14: a due at the edge of the calendar was committed, answered as a failure,
and then broke every listing of its user."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from fastmcp import Client

from domain.adapters.tables import TaskRow
from dueflow.bootstrap import Runtime
from tests.support.refusals import assert_refused, listings_work
from tests.support.tools import add, call


async def test_a_due_at_the_end_of_the_calendar_is_refused_and_nothing_is_written(
    alice: Client, runtime: Runtime
) -> None:
    text = await assert_refused(
        alice,
        runtime,
        "due",
        "add_task",
        title="poison",
        due="9999-12-31T23:59:59+00:00",
        timezone="Etc/GMT+12",
    )
    assert "2999" in text


async def test_a_retry_of_the_refused_add_still_writes_nothing(
    alice: Client, runtime: Runtime
) -> None:
    for _ in range(2):
        await assert_refused(
            alice, runtime, "due", "add_task", title="poison", due="9999-12-31T23:59:59+00:00"
        )
    assert (await call(alice, "list_tasks"))["tasks"] == []


@pytest.mark.parametrize("zone", ["Etc/GMT+12", "Etc/GMT-14", "UTC"])
@pytest.mark.parametrize(
    "moment",
    [
        dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
        dt.datetime(1, 1, 1, 0, 0, 1, tzinfo=dt.UTC),
    ],
)
async def test_a_task_stored_at_the_edge_of_the_calendar_does_not_break_listings(
    alice: Client, runtime: Runtime, zone: str, moment: dt.datetime
) -> None:
    """A task an older version wrote: every listing, sort and get_task still answers."""
    task = await add(alice, "poison", due="2026-12-01T09:00")
    async with runtime.engine.begin() as conn:
        await conn.execute(
            sa.update(TaskRow).where(TaskRow.id == task["id"]).values(due_at=moment, timezone=zone)  # type: ignore[arg-type]
        )
    await listings_work(alice)
    listed = (await call(alice, "list_tasks", sort=["urgency"]))["tasks"]
    assert [t["id"] for t in listed] == [task["id"]]
    assert (await call(alice, "get_task", task_id=task["id"]))["task"]["id"] == task["id"]
    await call(alice, "list_tasks", overdue=True)


async def test_a_relative_reminder_on_a_task_stored_at_the_start_of_the_calendar_never_fires(
    alice: Client, runtime: Runtime
) -> None:
    """A reminder counted back from a due an older version stored near year 1 would fall
    before the calendar: it is kept, and nothing is scheduled for it, instead of an internal
    error."""
    task = await add(alice, "ancient", due="2026-12-01T09:00")
    async with runtime.engine.begin() as conn:
        await conn.execute(
            sa.update(TaskRow)  # type: ignore[arg-type]
            .where(TaskRow.id == task["id"])
            .values(due_at=dt.datetime(1, 1, 2, tzinfo=dt.UTC), timezone="UTC")
        )
    changed = await call(alice, "update_task", task_id=task["id"], reminders=["P2D"])
    assert changed["task"]["reminders"] == [{"spec": "P2D", "fires_at": None}]
    upcoming = await call(alice, "list_reminders", within="P366D")
    assert upcoming["reminders"] == []
    await listings_work(alice)
