"""Read-your-writes in embedded mode: a user's change shows in the very next read of every view
the in-process consumers build (list_reminders, task_history, snoozing), through the MCP tools.
SQLite and PostgreSQL.

In-process, the runtime's relay is not running: only the read itself can bring the user's events
to the consumers, so a view that answered before they arrived would fail here every time. As its
own process (`dueflow serve` over HTTP), the relay runs as in production and each read follows
the write at once.
"""

from __future__ import annotations

from pathlib import Path

from fastmcp import Client

from domain.clock import FixedClock
from domain.service import NewTask
from dueflow.bootstrap import Runtime
from tests.support.database import rows
from tests.support.servers import dueflow_http, free_port
from tests.support.tools import add, call, history_of, server_for

NOON = "2026-11-23T12:00:00Z"
NEXT_JUNE = "2027-06-01T12:00:00Z"  # ahead of the real clock the served process reads


async def undelivered(runtime: Runtime) -> int:
    found = await rows(runtime, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
    return int(found[0][0])


async def test_a_reminder_just_added_is_listed_by_the_next_call(
    alice: Client, runtime: Runtime
) -> None:
    task = await add(alice, "Call Bob", due=NOON, reminders=["PT15M", "PT1H"])
    assert await undelivered(runtime) == 1  # nothing but the read delivers it here

    listed = (await call(alice, "list_reminders"))["reminders"]

    assert [(r["task_id"], r["spec"]) for r in listed] == [
        (task["id"], "PT1H"),
        (task["id"], "PT15M"),
    ]


async def test_the_history_shows_a_change_and_what_it_caused_at_the_next_call(
    alice: Client, runtime: Runtime
) -> None:
    task = await add(alice, "Call Bob", due=NOON, reminders=["PT15M"])
    await call(alice, "complete_task", task_id=task["id"])

    entries = await history_of(alice, task_id=task["id"])

    # the changes, the reminder the add scheduled and the one the completion withdrew (one
    # moment on the fixed clock, so in no particular order)
    assert sorted(e["event_type"] for e in entries) == [
        "REMINDER_CANCELLED",
        "REMINDER_SCHEDULED",
        "TASK_COMPLETED",
        "TASK_CREATED",
    ]
    assert await undelivered(runtime) == 0


async def test_a_reminder_just_added_can_be_snoozed_at_once(
    alice: Client, runtime: Runtime
) -> None:
    task = await add(alice, "Call Bob", due=NOON, reminders=["PT15M"])

    snoozed = await call(alice, "snooze_reminder", task_id=task["id"], duration="PT2H")

    # the PT15M reminder existed when the snooze read the schedule, so it was silenced
    assert [r["spec"] for r in snoozed["silenced"]] == ["PT15M"]


async def test_a_read_waits_for_its_own_user_only(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    await runtime.service.add("bob", NewTask(title="Bob's", due=NOON, reminders=["PT15M"]))

    listed = (await call(alice, "list_reminders"))["reminders"]

    assert listed == []
    assert await undelivered(runtime) == 1  # Bob's event is left to the relay
    async with Client(server_for(runtime, "bob")) as bob:
        assert len((await call(bob, "list_reminders"))["reminders"]) == 1


async def test_a_served_process_shows_each_change_in_the_next_read(
    database_url: str, tmp_path: Path
) -> None:
    token = "read-your-writes-token-0123456789"
    env = {"DUEFLOW_DATABASE_URL": database_url, "DUEFLOW_TOKENS": f"{token}=alice"}
    if database_url.startswith("sqlite"):
        env = {"DUEFLOW_DATA_DIR": str(tmp_path / "data"), "DUEFLOW_TOKENS": f"{token}=alice"}
    async with (
        dueflow_http(tmp_path, free_port(), **env) as url,
        Client(url, auth=token) as alice,
    ):
        for n in range(3):
            task = await add(alice, f"Call Bob {n}", due=NEXT_JUNE, reminders=["PT15M"])
            listed = (await call(alice, "list_reminders", within="P366D"))["reminders"]
            assert task["id"] in {r["task_id"] for r in listed}
            await call(alice, "complete_task", task_id=task["id"])
            newest = (await call(alice, "task_history", task_id=task["id"], limit=5))["entries"]
            assert "TASK_COMPLETED" in {e["event_type"] for e in newest}
            listed = (await call(alice, "list_reminders", within="P366D"))["reminders"]
            assert task["id"] not in {r["task_id"] for r in listed}
