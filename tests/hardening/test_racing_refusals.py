"""Writers that race answer in the one documented refusal style too (#14): racing changes of one
task at the same version, and racing creations under one idempotency key. Through a real MCP
client, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from fastmcp import Client

from domain.errors import ConcurrentChange, IdempotencyRace
from dueflow.bootstrap import Runtime
from tests.support.refusals import REFUSAL
from tests.support.tools import add, call, server_for

RACERS = 8


async def test_racing_changes_at_one_version_leave_one_winner_and_refuse_the_rest_in_style(
    runtime: Runtime,
) -> None:
    clients = [Client(server_for(runtime, "alice")) for _ in range(RACERS)]
    for client in clients:
        await client.__aenter__()
    try:
        task = await add(clients[0], "race")
        results = await asyncio.gather(
            *(
                client.call_tool(
                    "update_task",
                    {"task_id": task["id"], "title": f"t{n}", "expected_version": task["version"]},
                    raise_on_error=False,
                )
                for n, client in enumerate(clients)
            )
        )
        winners = [result for result in results if not result.is_error]
        assert len(winners) == 1, [result.content for result in results]
        for result in results:
            if result.is_error:
                text = result.content[0].text  # type: ignore[union-attr]
                match = REFUSAL.match(text)
                assert match is not None, text
                assert match["field"] in {"expected_version", "task_id"}, text
        final = (await call(clients[0], "get_task", task_id=task["id"]))["task"]
        assert final["version"] == task["version"] + 1
    finally:
        for client in clients:
            await client.__aexit__(None, None, None)


async def test_racing_creations_under_one_key_answer_one_task(alice: Client) -> None:
    answers = await asyncio.gather(
        *(call(alice, "add_task", title="once", idempotency_key="race-1") for _ in range(RACERS))
    )
    assert len({answer["task"]["id"] for answer in answers}) == 1
    assert sum(answer["created"] for answer in answers) == 1
    listed = await call(alice, "list_tasks")
    assert [task["title"] for task in listed["tasks"]] == ["once"]


def test_the_race_refusals_a_caller_can_meet_are_in_the_documented_style() -> None:
    """The messages a lost race answers when the retry is spent (not reachable on demand)."""
    for error in (ConcurrentChange(), IdempotencyRace()):
        assert REFUSAL.match(error.message), error.message
