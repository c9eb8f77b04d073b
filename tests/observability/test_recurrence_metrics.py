"""The recurrence worker counts what each TASK_RECURRED says (#18): a series that ended, and the
occurrences a late completion stepped over. Through a real MCP client and the embedded workers,
on SQLite and PostgreSQL."""

from __future__ import annotations

from fastmcp import Client
from prometheus_client import REGISTRY

from dueflow.bootstrap import Runtime
from tests.support.tools import add, call

ENDED = "dueflow_recurrence_series_ended_total"
SKIPPED = "dueflow_recurrence_occurrences_skipped_total"


def value(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_a_late_completion_of_a_series_counts_the_occurrences_it_skips_and_its_end(
    runtime: Runtime, alice: Client
) -> None:
    ended, skipped = value(ENDED), value(SKIPPED)
    # three daily occurrences, all in the past of the runtime's clock (2026-11-23)
    task = await add(alice, "Stretch", due="2026-11-10T08:00", recurrence="FREQ=DAILY;COUNT=3")
    await call(alice, "complete_task", task_id=task["id"])
    await runtime.relay.drain()

    assert value(SKIPPED) - skipped == 2  # the 11th and the 12th passed unattended
    assert value(ENDED) - ended == 1  # and the series had no occurrence left
