"""The task tools through a real MCP client, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp import Client

from domain.clock import FixedClock
from dueflow.bootstrap import Runtime
from tests.support.database import decoded, rows
from tests.support.tools import add, call, refused

TOOLS = {
    "add_task",
    "update_task",
    "complete_task",
    "reopen_task",
    "delete_task",
    "restore_task",
    "get_task",
    "list_tasks",
    "agenda",
    "skip_occurrence",
    "preview_recurrence",
    "list_reminders",
    "snooze_reminder",
    "dismiss_reminder",
    "task_history",
    "export_tasks_ics",
    "import_tasks_ics",
    "calendar_feeds",
}


async def count(runtime: Runtime, table: str) -> int:
    return int((await rows(runtime, f"SELECT count(*) FROM {table}"))[0][0])


async def test_every_tool_declares_an_output_schema_and_hints(alice: Client) -> None:
    tools = {tool.name: tool for tool in await alice.list_tools()}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.output_schema and tool.output_schema["type"] == "object"
        assert tool.description
        assert tool.annotations is not None
    assert tools["list_tasks"].annotations.read_only_hint is True  # type: ignore[union-attr]
    assert tools["delete_task"].annotations.destructive_hint is True  # type: ignore[union-attr]
    assert not tools["add_task"].annotations.read_only_hint  # type: ignore[union-attr]
    assert tools["add_task"].annotations.destructive_hint is False  # type: ignore[union-attr]
    assert tools["export_tasks_ics"].annotations.read_only_hint is True  # type: ignore[union-attr]
    assert tools["import_tasks_ics"].annotations.idempotent_hint is True  # type: ignore[union-attr]


async def test_instructions_tell_the_agent_today_and_the_users_zone(alice: Client) -> None:
    assert alice.instructions is not None
    assert "Today is" in alice.instructions and "Europe/Berlin" in alice.instructions


async def test_add_task_stores_every_field_and_answers_it(alice: Client, runtime: Runtime) -> None:
    result = await alice.call_tool(
        "add_task",
        {
            "title": "  Pay rent ",
            "description": "to the landlord",
            "due": "2026-12-01T09:00",
            "timezone": "America/New_York",
            "priority": "urgent",
            "tags": ["Home", "money", "home"],
            "reminders": ["PT1H", "2026-11-30T12:00:00Z"],
            "recurrence": "rrule:freq=monthly;bymonthday=1",
        },
    )
    assert "Pay rent" in result.content[0].text  # type: ignore[union-attr]
    task = result.structured_content["task"]  # type: ignore[index]
    assert task["title"] == "Pay rent"
    assert task["priority"] == "urgent" and task["ical_priority"] == 1
    assert task["tags"] == ["home", "money"]
    assert task["due"] == {
        "all_day": False,
        "timezone": "America/New_York",
        "date": None,
        "datetime": "2026-12-01T09:00:00-05:00",
        "utc": "2026-12-01T14:00:00Z",
    }
    assert task["reminders"] == [
        {"spec": "2026-11-30T12:00:00Z", "fires_at": "2026-11-30T12:00:00Z"},
        {"spec": "PT1H", "fires_at": "2026-12-01T13:00:00Z"},
    ]
    assert task["recurrence"]["rule"] == "FREQ=MONTHLY;BYMONTHDAY=1"
    assert task["status"] == "open" and task["version"] == 1

    again = await call(alice, "get_task", task_id=task["id"])
    assert again["task"] == task


async def test_an_all_day_due_stays_a_date(alice: Client) -> None:
    task = await add(alice, due="2026-12-24", reminders=["P1D"])
    assert task["due"]["all_day"] is True and task["due"]["date"] == "2026-12-24"
    # all-day reminders count back from 09:00 local (Europe/Berlin, UTC+1 in December)
    assert task["reminders"][0]["fires_at"] == "2026-12-23T08:00:00Z"


async def test_each_change_writes_one_complete_v1_event_to_the_outbox(
    alice: Client, runtime: Runtime
) -> None:
    task = await add(alice, tags=["x"])
    await call(alice, "update_task", task_id=task["id"], title="Buy oat milk")
    await call(alice, "complete_task", task_id=task["id"])
    await call(alice, "reopen_task", task_id=task["id"])
    await call(alice, "delete_task", task_id=task["id"])
    await call(alice, "restore_task", task_id=task["id"])
    events = await rows(
        runtime,
        "SELECT event_type, sequence, payload, published_at, user_id FROM outbox"
        " WHERE task_id = :t ORDER BY id",
        t=task["id"],
    )
    assert [(e[0], e[1]) for e in events] == [
        ("TASK_CREATED", 1),
        ("TASK_UPDATED", 2),
        ("TASK_COMPLETED", 3),
        ("TASK_REOPENED", 4),
        ("TASK_DELETED", 5),
        ("TASK_RESTORED", 6),
    ]
    payloads = [decoded(e[2]) for e in events]
    updated = payloads[1]
    assert updated["payload"]["changes"] == {"title": ["Buy milk", "Buy oat milk"]}
    assert updated["payload"]["task"]["title"] == "Buy oat milk"
    assert updated["metadata"]["version"] == "v1" and updated["metadata"]["correlation_id"]
    assert set(updated) == {
        "event_id",
        "event_type",
        "task_id",
        "user_id",
        "sequence",
        "timestamp",
        "payload",
        "metadata",
    }
    assert updated["timestamp"].endswith("Z")
    assert all(e[3] is None and e[4] == "alice" for e in events)
    assert len({p["event_id"] for p in payloads}) == 6


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"title": "   "}, "title"),
        ({"title": "x" * 501}, "title"),
        ({"title": "t", "description": "d" * 10_001}, "description"),
        ({"title": "t", "due": "next tuesday-ish"}, "due"),
        ({"title": "t", "due": "2026-12-01T09:00", "timezone": "Mars/Olympus"}, "timezone"),
        ({"title": "t", "tags": [f"t{i}" for i in range(51)]}, "tags"),
        ({"title": "t", "tags": ["x" * 65]}, "tags"),
        ({"title": "t", "reminders": ["PT15M"]}, "reminders"),
        ({"title": "t", "due": "2026-12-01", "reminders": ["P1M"]}, "reminders"),
        ({"title": "t", "due": "2026-12-01", "recurrence": "FREQ=MINUTELY"}, "recurrence"),
        ({"title": "t", "due": "2026-12-01", "recurrence": "FREQ=DAILY;BYDAY=XX"}, "recurrence"),
        ({"title": "t", "recurrence": "FREQ=DAILY"}, "recurrence"),
        (
            {"title": "t", "due": "2026-12-01", "recurrence": "FREQ=DAILY;UNTIL=20251231T000000Z"},
            "recurrence",
        ),
        ({"title": "t", "idempotency_key": "k" * 201}, "idempotency_key"),
    ],
)
async def test_bad_input_names_the_field_and_writes_nothing(
    alice: Client, runtime: Runtime, arguments: dict[str, Any], field: str
) -> None:
    message = await refused(alice, "add_task", **arguments)
    assert message.startswith(f"{field}:") and "Fix:" in message
    assert await count(runtime, "tasks") == 0
    assert await count(runtime, "outbox") == 0
    assert await count(runtime, "idempotency_keys") == 0


async def test_an_unknown_priority_is_refused_by_the_schema(alice: Client) -> None:
    message = await refused(alice, "add_task", title="t", priority="critical")
    assert "priority" in message


async def test_a_repeated_idempotency_key_creates_nothing_new(
    alice: Client, runtime: Runtime
) -> None:
    first = await call(alice, "add_task", title="Call mum", idempotency_key="k-1")
    second = await call(alice, "add_task", title="Call mum", idempotency_key="k-1")
    assert first["created"] is True and second["created"] is False
    assert second["task"]["id"] == first["task"]["id"]
    assert await count(runtime, "tasks") == 1
    assert await count(runtime, "outbox") == 1


async def test_an_idempotency_key_reused_with_other_arguments_is_refused(
    alice: Client, runtime: Runtime
) -> None:
    await call(alice, "add_task", title="Call mum", idempotency_key="k-1")
    message = await refused(alice, "add_task", title="Call dad", idempotency_key="k-1")
    assert message.startswith("idempotency_key:")
    assert await count(runtime, "tasks") == 1


async def test_idempotency_keys_belong_to_one_user(alice: Client, bob: Client) -> None:
    mine = await call(alice, "add_task", title="Call mum", idempotency_key="same")
    theirs = await call(bob, "add_task", title="Call mum", idempotency_key="same")
    assert theirs["created"] is True and theirs["task"]["id"] != mine["task"]["id"]


async def test_update_changes_only_the_fields_given(alice: Client) -> None:
    task = await add(alice, description="2 litres", due="2026-12-01", tags=["shop"], priority="low")
    updated = (await call(alice, "update_task", task_id=task["id"], priority="high"))["task"]
    assert updated["priority"] == "high"
    assert updated["description"] == "2 litres" and updated["tags"] == ["shop"]
    assert updated["due"] == task["due"] and updated["version"] == 2


async def test_an_explicit_null_clears_a_field(alice: Client) -> None:
    task = await add(alice, description="2 litres", due="2026-12-01", tags=["shop"], priority="low")
    updated = (
        await call(
            alice,
            "update_task",
            task_id=task["id"],
            description=None,
            due=None,
            tags=None,
            priority=None,
        )
    )["task"]
    assert updated["description"] == "" and updated["due"] is None
    assert updated["tags"] == [] and updated["priority"] == "none"


async def test_an_update_that_changes_nothing_records_nothing(
    alice: Client, runtime: Runtime
) -> None:
    task = await add(alice, priority="low")
    same = (await call(alice, "update_task", task_id=task["id"], priority="low"))["task"]
    assert same["version"] == 1
    assert await count(runtime, "outbox") == 1


async def test_moving_the_due_of_a_recurring_task_keeps_its_rule(alice: Client) -> None:
    task = await add(alice, due="2026-12-01T09:00", recurrence="FREQ=WEEKLY;BYDAY=TU")
    moved = (await call(alice, "update_task", task_id=task["id"], due="2026-12-08T10:00"))["task"]
    assert moved["recurrence"]["rule"] == task["recurrence"]["rule"]
    assert moved["recurrence"]["series_id"] == task["recurrence"]["series_id"]
    assert moved["recurrence"]["start"] == "2026-12-08T10:00:00"  # the series follows the move
    assert moved["due"]["datetime"] == "2026-12-08T10:00:00+01:00"


async def test_clearing_the_due_of_a_recurring_task_alone_is_refused(
    alice: Client, runtime: Runtime
) -> None:
    task = await add(alice, due="2026-12-01T09:00", recurrence="FREQ=DAILY")
    message = await refused(alice, "update_task", task_id=task["id"], due=None, title="changed")
    assert message.startswith("due:") and "recurrence" in message
    stored = (await call(alice, "get_task", task_id=task["id"]))["task"]
    assert stored == task
    assert await count(runtime, "outbox") == 1


async def test_a_stale_expected_version_is_a_conflict_that_changes_nothing(
    alice: Client, runtime: Runtime
) -> None:
    task = await add(alice)
    await call(alice, "update_task", task_id=task["id"], title="v2", expected_version=1)
    message = await refused(
        alice, "update_task", task_id=task["id"], title="v3", expected_version=1
    )
    assert message.startswith("expected_version:") and "version 2" in message
    assert (await call(alice, "get_task", task_id=task["id"]))["task"]["title"] == "v2"
    assert await count(runtime, "outbox") == 2


async def test_status_changes_follow_the_lifecycle(alice: Client) -> None:
    task = await add(alice)
    done = (await call(alice, "complete_task", task_id=task["id"]))["task"]
    assert done["status"] == "completed" and done["completed_at"] == "2026-11-23T10:00:00Z"
    again = (await call(alice, "complete_task", task_id=task["id"]))["task"]
    assert again["version"] == done["version"]
    deleted = (await call(alice, "delete_task", task_id=task["id"]))["task"]
    assert deleted["status"] == "deleted"
    message = await refused(alice, "complete_task", task_id=task["id"])
    assert "restore_task" in message
    restored = (await call(alice, "restore_task", task_id=task["id"]))["task"]
    assert restored["status"] == "completed"
    reopened = (await call(alice, "reopen_task", task_id=task["id"]))["task"]
    assert reopened["status"] == "open" and reopened["completed_at"] is None


async def test_deleted_tasks_leave_the_default_listing_but_are_kept(alice: Client) -> None:
    task = await add(alice)
    await call(alice, "delete_task", task_id=task["id"])
    assert (await call(alice, "list_tasks"))["tasks"] == []
    deleted = (await call(alice, "list_tasks", status="deleted"))["tasks"]
    assert [t["id"] for t in deleted] == [task["id"]]
    assert (await call(alice, "get_task", task_id=task["id"]))["task"]["status"] == "deleted"


async def test_an_unknown_id_is_not_found(alice: Client) -> None:
    message = await refused(alice, "get_task", task_id="no-such-task")
    assert message.startswith("task_id:") and "list_tasks" in message


async def test_another_users_task_is_not_found_and_untouched(
    alice: Client, bob: Client, runtime: Runtime
) -> None:
    task = await add(alice, tags=["private"])
    for tool, extra in [
        ("get_task", {}),
        ("update_task", {"title": "mine now"}),
        ("complete_task", {}),
        ("delete_task", {}),
        ("reopen_task", {}),
        ("restore_task", {}),
    ]:
        message = await refused(bob, tool, task_id=task["id"], **extra)
        assert "no task" in message
    assert (await call(bob, "list_tasks", status="all"))["tasks"] == []
    assert (await call(bob, "list_tasks", sort=["due"], status="all", tags=["private"]))[
        "tasks"
    ] == []
    assert (await call(alice, "get_task", task_id=task["id"]))["task"] == task
    assert await count(runtime, "outbox") == 1


async def test_list_filters_combine(alice: Client, clock: FixedClock) -> None:
    a = await add(alice, "a", clock, priority="high", tags=["work", "q4"], due="2026-11-20T09:00")
    b = await add(alice, "b", clock, priority="high", tags=["work"], due="2026-11-25")
    c = await add(
        alice, "c water plants", clock, priority="low", tags=["home"], description="ficus"
    )
    d = await add(alice, "d", clock, tags=["q4"], due="2026-11-23")

    async def ids(**filters: Any) -> list[str]:
        return [t["title"] for t in (await call(alice, "list_tasks", **filters))["tasks"]]

    assert await ids(priority="high") == ["a", "b"]
    assert await ids(priority=["low", "none"]) == [c["title"], d["title"]]
    assert await ids(tags=["work", "q4"]) == ["a"]
    assert await ids(any_tags=["home", "q4"]) == ["a", c["title"], "d"]
    assert await ids(due_before="2026-11-23") == ["a"]
    assert await ids(due_after="2026-11-23", due_before="2026-11-26") == ["b", "d"]
    assert await ids(overdue=True) == ["a"]
    assert await ids(overdue=False) == ["b", c["title"], "d"]
    assert await ids(query="FICUS") == [c["title"]]
    assert await ids(query="water") == [c["title"]]
    assert await ids(query="%") == []
    await call(alice, "complete_task", task_id=b["id"])
    assert await ids(status="completed") == ["b"]
    assert await ids(status="all", priority="high") == ["a", "b"]
    listed = (await call(alice, "list_tasks", overdue=True))["tasks"]
    assert listed[0]["overdue"] is True and listed[0]["id"] == a["id"]


async def test_list_pages_cover_every_task_once(alice: Client, clock: FixedClock) -> None:
    for i in range(23):
        await add(alice, f"t{i:02}", clock)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        args: dict[str, Any] = {"limit": 10}
        if cursor:
            args["cursor"] = cursor
        page = await call(alice, "list_tasks", **args)
        seen += [t["title"] for t in page["tasks"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"t{i:02}" for i in range(23)]


async def test_a_cursor_only_works_with_the_filters_it_came_from(alice: Client) -> None:
    for i in range(3):
        await add(alice, f"t{i}", tags=["x"])
    page = await call(alice, "list_tasks", limit=1, tags=["x"])
    message = await refused(alice, "list_tasks", limit=1, cursor=page["next_cursor"])
    assert message.startswith("cursor:")
    assert (await refused(alice, "list_tasks", cursor="garbage!")).startswith("cursor:")


async def test_limit_outside_1_to_200_is_refused(alice: Client) -> None:
    assert "limit" in await refused(alice, "list_tasks", limit=201)
    assert "limit" in await refused(alice, "list_tasks", limit=0)


async def test_sort_by_due_puts_undated_tasks_last(alice: Client) -> None:
    await add(alice, "late", due="2026-12-10")
    await add(alice, "none")
    await add(alice, "soon", due="2026-11-24T08:00")
    await add(alice, "zoned", due="2026-11-24T06:30:00Z")
    ascending = await call(alice, "list_tasks", sort=["due"])
    assert [t["title"] for t in ascending["tasks"]] == ["zoned", "soon", "late", "none"]
    assert ascending["order"] == ["due:asc"]
    descending = await call(alice, "list_tasks", sort=["due:desc"])
    assert [t["title"] for t in descending["tasks"]] == ["late", "soon", "zoned", "none"]


async def test_sort_by_several_keys(alice: Client) -> None:
    await add(alice, "b", priority="high")
    await add(alice, "a", priority="high")
    await add(alice, "C", priority="urgent")
    await add(alice, "d", priority="low")
    result = await call(alice, "list_tasks", sort=["priority", "title:asc"])
    assert [t["title"] for t in result["tasks"]] == ["C", "a", "b", "d"]
    assert result["order"] == ["priority:desc", "title:asc"]


async def test_sort_by_urgency_puts_the_most_pressing_first(alice: Client) -> None:
    await add(alice, "someday", priority="low")
    await add(alice, "overdue", priority="medium", due="2026-11-20")
    await add(alice, "today", priority="high", due="2026-11-23T18:00")
    await add(alice, "next week", priority="urgent", due="2026-12-20")
    result = await call(alice, "list_tasks", sort=["urgency"])
    titles = [t["title"] for t in result["tasks"]]
    assert titles == ["overdue", "today", "next week", "someday"]
    scores = [t["urgency"] for t in result["tasks"]]
    assert scores == sorted(scores, reverse=True)


async def test_sorted_pages_cover_every_task_once(alice: Client) -> None:
    for i in range(7):
        await add(alice, f"t{i}", priority=["low", "high"][i % 2])
    for by in (["priority", "title"], ["urgency", "title"]):
        first = await call(alice, "list_tasks", sort=by, limit=4)
        second = await call(alice, "list_tasks", sort=by, limit=4, cursor=first["next_cursor"])
        titles = [t["title"] for t in first["tasks"] + second["tasks"]]
        assert sorted(titles) == [f"t{i}" for i in range(7)] and second["next_cursor"] is None
        assert titles[:3] == ["t1", "t3", "t5"]


async def test_a_bad_sort_key_is_refused(alice: Client) -> None:
    message = await refused(alice, "list_tasks", sort=["size"])
    assert message.startswith("sort:") and "urgency" in message
    assert (await refused(alice, "list_tasks", sort=["due:sideways"])).startswith("sort:")


async def test_a_listing_s_text_names_its_tasks_for_clients_that_pass_on_the_text_only(
    alice: Client, clock: FixedClock
) -> None:
    first = await add(alice, "Pay rent", clock, due="2026-11-20", priority="high")
    for n in range(21):
        await add(alice, f"Chore {n}", clock)
    result = await alice.call_tool("list_tasks", {"limit": 22})
    text = result.content[0].text  # type: ignore[union-attr]
    lines = text.splitlines()
    assert lines[0] == "22 task(s) by created:asc"
    assert lines[1] == (
        f"- 'Pay rent' id={first['id']} v1, due 2026-11-20 (overdue), priority high"
    )
    assert len(lines) == 1 + 20 + 1 and lines[-1] == "- and 2 more in the structured answer"
    assert len(result.structured_content["tasks"]) == 22
