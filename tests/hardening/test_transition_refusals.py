"""Found by the fuzzer (tests/fuzz): a change the task's status does not allow (completing,
reopening or changing a deleted task, skipping an occurrence that is not open) was refused in
prose, not in the documented `<field>: <problem>. Fix: <what to send>.` style."""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp import Client

from dueflow.bootstrap import Runtime
from tests.support.refusals import assert_refused
from tests.support.tools import add, call


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [("complete_task", {}), ("reopen_task", {}), ("update_task", {"title": "again"})],
)
async def test_a_change_to_a_deleted_task_is_refused_in_style(
    alice: Client, runtime: Runtime, tool: str, arguments: dict[str, Any]
) -> None:
    task = await add(alice)
    await call(alice, "delete_task", task_id=task["id"])
    text = await assert_refused(alice, runtime, "task_id", tool, task_id=task["id"], **arguments)
    assert "restore_task" in text


async def test_skipping_an_occurrence_that_is_not_open_is_refused_in_style(
    alice: Client, runtime: Runtime
) -> None:
    task = await add(alice, due="2026-12-01T09:00", recurrence="FREQ=DAILY")
    await call(alice, "complete_task", task_id=task["id"])
    await assert_refused(alice, runtime, "task_id", "skip_occurrence", task_id=task["id"])


async def test_skipping_past_the_last_occurrence_is_refused_in_style(
    alice: Client, runtime: Runtime
) -> None:
    task = await add(alice, due="2026-12-01T09:00", recurrence="FREQ=DAILY;COUNT=1")
    text = await assert_refused(alice, runtime, "task_id", "skip_occurrence", task_id=task["id"])
    assert "no later occurrence" in text
