"""What a refused call must leave behind: the assertions the hardening tests share."""

from __future__ import annotations

import re
from typing import Any

from fastmcp import Client

from dueflow.bootstrap import Runtime
from tests.support.database import scalar
from tests.support.tools import call

# the one documented refusal style: `<field>: <problem>. Fix: <what to do>.` (an item of a
# batch: `tasks[3].due`)
REFUSAL = re.compile(r"^(?P<field>[a-z_][a-z0-9_.\[\]]*): .+\. Fix: .+\.$", re.DOTALL)


async def written(runtime: Runtime) -> tuple[int, int, int]:
    """How many tasks, outbox rows and scheduled reminders the database holds."""
    return (
        await scalar(runtime, "SELECT count(*) FROM tasks"),
        await scalar(runtime, "SELECT count(*) FROM outbox"),
        await scalar(runtime, "SELECT count(*) FROM reminder_schedule"),
    )


async def assert_refused(
    client: Client, runtime: Runtime, field: str, tool: str, **arguments: Any
) -> str:
    """The call answers isError in the documented style naming `field`, writes nothing, and the
    user's listings still work afterwards."""
    text = await assert_refused_alone(client, runtime, field, tool, **arguments)
    await listings_work(client)
    return text


async def assert_refused_alone(
    client: Client, runtime: Runtime, field: str, tool: str, **arguments: Any
) -> str:
    """As assert_refused, without the listings afterwards (for the many-case matrices that
    list in their own way)."""
    before = await written(runtime)
    result = await client.call_tool(tool, arguments, raise_on_error=False)
    text: str = result.content[0].text  # type: ignore[union-attr]
    assert result.is_error, text
    match = REFUSAL.match(text)
    assert match is not None, text
    assert match["field"] == field, text
    assert await written(runtime) == before
    return text


async def listings_work(client: Client) -> None:
    """Every listing of the user answers."""
    for status in ("open", "all"):
        await call(client, "list_tasks", status=status)
    for by in (["due"], ["urgency"], ["priority", "title:desc"]):
        await call(client, "list_tasks", sort=by, status="all")
    await call(client, "list_reminders")
    await call(client, "task_history")
