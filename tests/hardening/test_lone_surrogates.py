"""Found by the fuzzer (tests/fuzz): a lone surrogate (half of a UTF-16 pair, which no UTF-8 text
can hold) in an argument answered an internal error: first from the database, then, once tool
arguments were checked strictly, from serializing them. The JSON transports refuse one while
parsing; an in-process client passes it on, so it is refused before the tool runs, naming the
argument (and the list item), whatever the argument's type; the domain refuses it in text too."""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp import Client

from dueflow.bootstrap import Runtime
from tests.support.refusals import assert_refused
from tests.support.tools import add

LONE = "\ud800"


@pytest.mark.parametrize(
    ("field", "arguments"),
    [
        ("title", {"title": f"pay{LONE}rent"}),
        ("description", {"title": "t", "description": "a\udfff"}),
        ("tags[1]", {"title": "t", "tags": ["home", f"ho{LONE}me"]}),
        ("idempotency_key", {"title": "t", "idempotency_key": f"key{LONE}"}),
        ("due", {"title": "t", "due": f"2026-12-01{LONE}"}),
    ],
)
async def test_a_lone_surrogate_in_a_new_task_is_refused(
    alice: Client, runtime: Runtime, field: str, arguments: dict[str, Any]
) -> None:
    await assert_refused(alice, runtime, field, "add_task", **arguments)


@pytest.mark.parametrize(
    "tool",
    ["get_task", "complete_task", "delete_task", "dismiss_reminder", "task_history"],
)
async def test_a_lone_surrogate_in_a_task_id_is_refused(
    alice: Client, runtime: Runtime, tool: str
) -> None:
    await add(alice)
    await assert_refused(alice, runtime, "task_id", tool, task_id=f"x{LONE}")


@pytest.mark.parametrize(
    ("field", "arguments"),
    [("query", {"query": f"milk{LONE}"}), ("tags[0]", {"tags": [LONE]})],
)
async def test_a_lone_surrogate_in_a_listing_filter_is_refused(
    alice: Client, runtime: Runtime, field: str, arguments: dict[str, Any]
) -> None:
    await add(alice)
    await assert_refused(alice, runtime, field, "list_tasks", **arguments)


@pytest.mark.parametrize(
    ("field", "arguments"),
    [
        ("expected_version", {"expected_version": LONE}),
        ("priority", {"priority": LONE}),
        ("reminders[0]", {"reminders": [[LONE]]}),
        ("tags", {"tags": {"a": LONE}}),
    ],
)
async def test_a_lone_surrogate_where_no_text_belongs_is_refused(
    alice: Client, runtime: Runtime, field: str, arguments: dict[str, Any]
) -> None:
    task = await add(alice)
    await assert_refused(alice, runtime, field, "update_task", task_id=task["id"], **arguments)


async def test_a_lone_surrogate_in_a_deeply_nested_value_is_refused(
    alice: Client, runtime: Runtime
) -> None:
    value: Any = LONE
    for _ in range(100):
        value = [value]
    await assert_refused(alice, runtime, "tags[0]", "add_task", title="t", tags=value)
