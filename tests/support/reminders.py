"""The reminders worker's side of the tests: a task's events delivered to its Dapr app, and the
reminders that fired."""

from __future__ import annotations

from typing import Any

import httpx

from dueflow.bootstrap import Runtime
from tests.support.dapr_apps import deliver
from tests.support.database import envelopes


async def task_events(runtime: Runtime, task_id: str) -> list[Any]:
    """The task's TASK_* envelopes in the outbox, oldest first."""
    return await envelopes(runtime, "task_id = :t AND event_type LIKE 'TASK%'", t=task_id)


async def deliver_all(runtime: Runtime, app: httpx.AsyncClient, task_id: str) -> None:
    """Deliver each of the task's events to the reminders app, which must take every one."""
    for envelope in await task_events(runtime, task_id):
        assert await deliver(app, envelope) == "SUCCESS"


async def triggered(runtime: Runtime) -> list[str]:
    """The task ids of the REMINDER_TRIGGERED events in the outbox, oldest first."""
    found = await envelopes(runtime, "event_type = 'REMINDER_TRIGGERED'")
    return [str(envelope["task_id"]) for envelope in found]
