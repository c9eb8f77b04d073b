"""Defect 2 of issue 14: dates, rules and durations at or past the calendar's edges are refused
in the documented style, not answered with an internal error."""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp import Client

from dueflow.bootstrap import Runtime
from tests.support.refusals import assert_refused, assert_refused_alone
from tests.support.tools import add

EDGE_MOMENTS = [
    "0001-01-01",
    "0001-01-01T00:00:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31",
    "9999-12-31T23:59:59",
    "9999-12-31T23:59:59+14:00",
    "9999-12-31T23:59:59-14:00",
    "1899-12-31T23:00:00Z",
    "3000-01-01T00:00:00Z",
]
HUGE_DURATIONS = ["PT99999999999H", "P2147483648D", "PT9223372036854775807S", "P99999999999W"]


@pytest.mark.parametrize("due", EDGE_MOMENTS)
@pytest.mark.parametrize("zone", ["Etc/GMT+12", "Etc/GMT-14"])
async def test_a_due_outside_the_supported_years_is_refused(
    alice: Client, runtime: Runtime, due: str, zone: str
) -> None:
    await assert_refused(alice, runtime, "due", "add_task", title="edge", due=due, timezone=zone)


@pytest.mark.parametrize("due", ["0001-01-01", "9999-12-31T23:59:59+14:00"])
async def test_moving_a_due_outside_the_supported_years_is_refused(
    alice: Client, runtime: Runtime, due: str
) -> None:
    task = await add(alice, "movable", due="2026-12-01T09:00")
    await assert_refused(alice, runtime, "due", "update_task", task_id=task["id"], due=due)


@pytest.mark.parametrize("field", ["due_before", "due_after"])
@pytest.mark.parametrize("bound", EDGE_MOMENTS)
async def test_a_listing_bound_outside_the_supported_years_is_refused(
    alice: Client, runtime: Runtime, field: str, bound: str
) -> None:
    await assert_refused_alone(alice, runtime, field, "list_tasks", **{field: bound})
    await assert_refused_alone(alice, runtime, field, "list_tasks", sort=["due"], **{field: bound})


@pytest.mark.parametrize("field", ["since", "until"])
@pytest.mark.parametrize("bound", EDGE_MOMENTS)
async def test_a_history_bound_outside_the_supported_years_is_refused(
    alice: Client, runtime: Runtime, field: str, bound: str
) -> None:
    await assert_refused_alone(alice, runtime, field, "task_history", **{field: bound})


@pytest.mark.parametrize("until", EDGE_MOMENTS)
async def test_a_snooze_until_the_edge_of_the_calendar_is_refused(
    alice: Client, runtime: Runtime, until: str
) -> None:
    task = await add(alice, "snoozable", due="2026-12-01T09:00", reminders=["PT1H"])
    await assert_refused(
        alice, runtime, "until", "snooze_reminder", task_id=task["id"], until=until
    )


@pytest.mark.parametrize(
    "recurrence",
    [
        "FREQ=DAILY;UNTIL=99991231T235959Z",
        "FREQ=DAILY;UNTIL=99991231",
        "FREQ=DAILY;UNTIL=00010101T000000Z",
        "FREQ=MONTHLY;BYDAY=-99FR",
        "FREQ=MONTHLY;BYDAY=6FR",
        "FREQ=YEARLY;BYDAY=54MO",
        "FREQ=WEEKLY;BYDAY=XX",
    ],
)
async def test_a_rule_with_out_of_range_parts_is_refused(
    alice: Client, runtime: Runtime, recurrence: str
) -> None:
    arguments: dict[str, Any] = {"due": "2026-12-01T09:00", "recurrence": recurrence}
    await assert_refused(alice, runtime, "recurrence", "add_task", title="rule", **arguments)
    await assert_refused(alice, runtime, "recurrence", "preview_recurrence", count=3, **arguments)


@pytest.mark.parametrize("duration", HUGE_DURATIONS)
async def test_a_huge_reminder_duration_is_refused(
    alice: Client, runtime: Runtime, duration: str
) -> None:
    await assert_refused(
        alice,
        runtime,
        "reminders",
        "add_task",
        title="huge",
        due="2026-12-01T09:00",
        reminders=[duration],
    )


@pytest.mark.parametrize("moment", EDGE_MOMENTS)
async def test_an_absolute_reminder_outside_the_supported_years_is_refused(
    alice: Client, runtime: Runtime, moment: str
) -> None:
    await assert_refused(alice, runtime, "reminders", "add_task", title="far", reminders=[moment])


@pytest.mark.parametrize("duration", HUGE_DURATIONS)
async def test_a_huge_within_or_snooze_duration_is_refused(
    alice: Client, runtime: Runtime, duration: str
) -> None:
    await assert_refused(alice, runtime, "within", "list_reminders", within=duration)
    task = await add(alice, "snoozable", due="2026-12-01T09:00", reminders=["PT1H"])
    await assert_refused(
        alice, runtime, "duration", "snooze_reminder", task_id=task["id"], duration=duration
    )
