"""Defect 4 of issue 14: a NUL character is refused, naming its field, on SQLite and PostgreSQL
alike (SQLite stored it, PostgreSQL failed inside). Priorities and statuses are enums the
tool's schema refuses before the domain sees them."""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp import Client

from dueflow.bootstrap import Runtime
from tests.support.refusals import assert_refused
from tests.support.tools import add

NUL = "\x00"


@pytest.mark.parametrize(
    ("field", "arguments"),
    [
        ("title", {"title": f"pay{NUL}rent"}),
        ("description", {"title": "t", "description": f"a{NUL}"}),
        ("tags", {"title": "t", "tags": ["home", f"ho{NUL}me"]}),
        ("idempotency_key", {"title": "t", "idempotency_key": f"key{NUL}"}),
        ("timezone", {"title": "t", "due": "2026-12-01T09:00", "timezone": f"UTC{NUL}"}),
        ("due", {"title": "t", "due": f"2026-12-01{NUL}"}),
        ("reminders", {"title": "t", "reminders": [f"2026-12-01T09:00{NUL}"]}),
        ("recurrence", {"title": "t", "due": "2026-12-01T09:00", "recurrence": f"FREQ=DAILY{NUL}"}),
    ],
)
async def test_a_nul_in_a_new_task_is_refused(
    alice: Client, runtime: Runtime, field: str, arguments: dict[str, Any]
) -> None:
    await assert_refused(alice, runtime, field, "add_task", **arguments)


@pytest.mark.parametrize(
    ("field", "arguments"),
    [
        ("title", {"title": f"pay{NUL}rent"}),
        ("description", {"description": NUL}),
        ("tags", {"tags": [NUL]}),
    ],
)
async def test_a_nul_in_a_change_is_refused(
    alice: Client, runtime: Runtime, field: str, arguments: dict[str, Any]
) -> None:
    task = await add(alice)
    await assert_refused(alice, runtime, field, "update_task", task_id=task["id"], **arguments)


@pytest.mark.parametrize(
    "tool",
    [
        "get_task",
        "complete_task",
        "reopen_task",
        "delete_task",
        "restore_task",
        "skip_occurrence",
        "dismiss_reminder",
        "task_history",
    ],
)
async def test_a_nul_in_a_task_id_is_refused(alice: Client, runtime: Runtime, tool: str) -> None:
    await add(alice)
    await assert_refused(alice, runtime, "task_id", tool, task_id=f"abc{NUL}")


async def test_a_nul_in_a_task_id_to_update_or_snooze_is_refused(
    alice: Client, runtime: Runtime
) -> None:
    await assert_refused(alice, runtime, "task_id", "update_task", task_id=NUL, title="x")
    await assert_refused(alice, runtime, "task_id", "snooze_reminder", task_id=NUL, duration="PT1H")


@pytest.mark.parametrize(
    ("field", "arguments"),
    [
        ("query", {"query": f"milk{NUL}"}),
        ("tags", {"tags": [f"a{NUL}"]}),
        ("any_tags", {"any_tags": [f"a{NUL}"]}),
        ("due_before", {"due_before": f"2026-12-01{NUL}"}),
    ],
)
async def test_a_nul_in_a_listing_filter_is_refused(
    alice: Client, runtime: Runtime, field: str, arguments: dict[str, Any]
) -> None:
    await add(alice)
    await assert_refused(alice, runtime, field, "list_tasks", **arguments)
    await assert_refused(alice, runtime, field, "list_tasks", sort=["due"], **arguments)
