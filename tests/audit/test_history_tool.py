"""task_history through a real MCP client: every change a tool makes, in order, with its diffs;
scoped to the user; paged; filtered by time. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from fastmcp import Client

from domain.clock import FixedClock
from domain.ports import OutboundMessage
from dueflow.bootstrap import Runtime
from tests.support.database import envelopes, messages, rows
from tests.support.runtimes import NOW
from tests.support.tools import call, diffs, history_of, refused

MINUTE = dt.timedelta(minutes=1)


def at(minutes: int) -> str:
    return (NOW + minutes * MINUTE).isoformat().replace("+00:00", "Z")


async def add(client: Client, clock: FixedClock, title: str, **fields: Any) -> dict[str, Any]:
    clock.advance(MINUTE)
    task: dict[str, Any] = (await call(client, "add_task", title=title, **fields))["task"]
    return task


async def test_every_change_through_the_tools_is_in_the_history_in_order_with_its_diffs(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    task = await add(alice, clock, "Pay rent", due="2026-12-01", priority="low", tags=["home"])
    steps: list[tuple[str, dict[str, Any]]] = [
        ("update_task", {"title": "Pay the rent", "priority": "high"}),
        ("complete_task", {}),
        ("reopen_task", {}),
        ("delete_task", {}),
        ("restore_task", {}),
    ]
    for tool, arguments in steps:
        clock.advance(MINUTE)
        await call(alice, tool, task_id=task["id"], **arguments)
    await runtime.relay.drain()

    entries = await history_of(alice, task_id=task["id"])

    assert [(e["event_type"], e["sequence"], e["occurred_at"]) for e in entries] == [
        ("TASK_RESTORED", 6, at(6)),
        ("TASK_DELETED", 5, at(5)),
        ("TASK_REOPENED", 4, at(4)),
        ("TASK_COMPLETED", 3, at(3)),
        ("TASK_UPDATED", 2, at(2)),
        ("TASK_CREATED", 1, at(1)),
    ]
    restored, deleted, reopened, completed, updated, created = (diffs(e) for e in entries)
    assert updated == {
        "title": ["Pay rent", "Pay the rent"],
        "priority": ["low", "high"],
        "ical_priority": [9, 3],
    }
    assert completed == {"status": ["open", "completed"], "completed_at": [None, at(3)]}
    assert reopened == {"status": ["completed", "open"], "completed_at": [at(3), None]}
    assert deleted == {"status": ["open", "deleted"], "deleted_at": [None, at(5)]}
    assert restored == {"status": ["deleted", "open"], "deleted_at": [at(5), None]}
    assert created["title"] == [None, "Pay rent"]
    assert created["priority"] == [None, "low"]
    assert created["tags"] == [None, ["home"]]
    assert created["due"][1]["date"] == "2026-12-01"
    for entry in entries:
        assert entry["user"] == "alice"
        assert entry["source"] == "dueflow.mcp_server"
        assert entry["actor"] == "alice via MCP"
        assert entry["task_id"] == task["id"]
        assert entry["recorded_at"] == at(6)  # the relay delivered them all after the last step
    assert len({e["correlation_id"] for e in entries}) == 6  # one per tool call
    assert entries[4]["task_title"] == "Pay the rent"
    assert entries[4]["summary"] == (
        "title: 'Pay rent' -> 'Pay the rent'; priority: 'low' -> 'high'; ical_priority: 9 -> 3"
    )
    assert entries[3]["summary"] == (
        f"completed: status: 'open' -> 'completed'; completed_at: none -> '{at(3)}'"
    )
    assert entries[5]["summary"] == (
        "created 'Pay rent' (due 2026-12-01 Europe/Berlin, priority 'low', tags [\"home\"])"
    )


async def test_the_text_answer_says_who_when_and_what_changed(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    task = await add(alice, clock, "Call mum")
    clock.advance(MINUTE)
    await call(alice, "update_task", task_id=task["id"], priority="urgent")
    await runtime.relay.drain()

    result = await alice.call_tool("task_history", {"task_id": task["id"]})

    text = result.content[0].text  # type: ignore[union-attr]
    assert "\n" not in text
    assert text.startswith(f"2 change(s) to task {task['id']}, newest first: ")
    assert (
        f"{at(2)} TASK_UPDATED 'Call mum' (task {task['id']}, v2) by alice via MCP:"
        " priority: 'none' -> 'urgent'; ical_priority: 0 -> 1"
    ) in text
    assert f"{at(1)} TASK_CREATED 'Call mum'" in text


async def test_skipping_and_completing_a_recurring_task_shows_the_hand_off_to_the_next(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    task = await add(alice, clock, "Water plants", due="2026-11-23T18:00", recurrence="FREQ=DAILY")
    clock.advance(MINUTE)
    await call(alice, "skip_occurrence", task_id=task["id"])
    clock.advance(MINUTE)
    await call(alice, "complete_task", task_id=task["id"])
    await runtime.relay.drain()
    [following] = [
        t
        for t in (await call(alice, "list_tasks"))["tasks"]
        if t["id"] != task["id"] and t["title"] == "Water plants"
    ]

    entries = await history_of(alice)

    assert [(e["event_type"], e["task_id"]) for e in entries] == [
        ("TASK_RECURRED", task["id"]),
        ("TASK_CREATED", following["id"]),
        ("TASK_COMPLETED", task["id"]),
        ("TASK_UPDATED", task["id"]),
        ("TASK_CREATED", task["id"]),
    ]
    recurred, created_next, completed, skipped, _ = entries
    assert recurred["next_task_id"] == following["id"]
    assert diffs(recurred)["recurred_to"] == [None, following["id"]]
    assert recurred["summary"] == f"recurred: next occurrence is task {following['id']}"
    for made_by_worker in (recurred, created_next):
        assert made_by_worker["source"] == "dueflow.recurrence"
        assert made_by_worker["actor"] == "alice via the recurrence worker"
        assert made_by_worker["causation_id"] == completed["event_id"]
    assert f"next occurrence of task {task['id']}" in created_next["summary"]
    assert diffs(skipped)["due"][0]["datetime"] == "2026-11-23T18:00:00+01:00"
    assert diffs(skipped)["due"][1]["datetime"] == "2026-11-24T18:00:00+01:00"
    assert "recurrence.occurrence: 1 -> 2" in skipped["summary"]
    assert (
        "due: 2026-11-23T18:00:00+01:00 Europe/Berlin -> 2026-11-24T18:00:00+01:00"
        in (skipped["summary"])
    )


async def test_a_redelivered_event_adds_nothing_to_the_history(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    task = await add(alice, clock, "Once")
    await call(alice, "complete_task", task_id=task["id"])
    await runtime.relay.drain()
    before = await history_of(alice)

    await runtime.workers.bus.publish(messages(await envelopes(runtime)))
    await runtime.workers.bus.publish(messages(await envelopes(runtime)))

    assert await history_of(alice) == before
    assert len(before) == 2
    assert (await rows(runtime, "SELECT count(*) FROM audit_log"))[0][0] == 2


async def test_a_user_never_sees_another_users_history(
    alice: Client, bob: Client, runtime: Runtime, clock: FixedClock
) -> None:
    mine = await add(alice, clock, "Alice's secret")
    await call(alice, "delete_task", task_id=mine["id"])
    theirs = await add(bob, clock, "Bob's errand")
    await runtime.relay.drain()

    bobs = await history_of(bob)
    text = await refused(bob, "task_history", task_id=mine["id"])

    assert [(e["task_id"], e["user"]) for e in bobs] == [(theirs["id"], "bob")]
    assert "no task" in text and mine["id"] in text and "Alice" not in text
    # a deleted task keeps its history, for its owner
    assert [e["event_type"] for e in await history_of(alice, task_id=mine["id"])] == [
        "TASK_DELETED",
        "TASK_CREATED",
    ]


async def test_pages_follow_the_cursor_newest_first_without_gaps_or_repeats(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    titles = [f"Task {n}" for n in range(5)]
    for title in titles:
        await add(alice, clock, title)
    await runtime.relay.drain()

    first = await call(alice, "task_history", limit=2)
    second = await call(alice, "task_history", limit=2, cursor=first["next_cursor"])
    third = await call(alice, "task_history", limit=2, cursor=second["next_cursor"])

    pages = [first, second, third]
    assert [len(p["entries"]) for p in pages] == [2, 2, 1]
    assert third["next_cursor"] is None
    seen = [e["task_title"] for p in pages for e in p["entries"]]
    assert seen == list(reversed(titles))
    assert "more with next_cursor" in (
        (await alice.call_tool("task_history", {"limit": 2})).content[0].text  # type: ignore[union-attr]
    )


async def test_a_bad_or_foreign_cursor_is_refused_with_what_to_do(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    task = await add(alice, clock, "One")
    await add(alice, clock, "Two")
    await runtime.relay.drain()
    cursor = (await call(alice, "task_history", limit=1))["next_cursor"]

    garbage = await refused(alice, "task_history", cursor="not-a-cursor")
    other_filter = await refused(alice, "task_history", task_id=task["id"], cursor=cursor)
    list_cursor = (await call(alice, "list_tasks", limit=1))["next_cursor"]
    from_listing = await refused(alice, "task_history", cursor=list_cursor)

    for text in (garbage, other_filter, from_listing):
        assert text.startswith("cursor: is not a cursor this history issued. Fix: pass next_cursor")


async def test_since_and_until_bound_the_history_in_the_users_zone(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    for day in range(3):  # 2026-11-23, -24, -25, each 10:00 UTC = 11:00 Berlin
        clock.set(NOW + dt.timedelta(days=day))
        await call(alice, "add_task", title=f"Day {day}")
    await runtime.relay.drain()

    since = await history_of(alice, since="2026-11-24")
    until = await history_of(alice, until="2026-11-24")
    window = await history_of(alice, since="2026-11-24T11:00", until="2026-11-25T11:00:00+01:00")
    exact = await history_of(alice, since="2026-11-24T10:00:00Z", until="2026-11-24T10:00:01Z")

    assert [e["task_title"] for e in since] == ["Day 2", "Day 1"]
    assert [e["task_title"] for e in until] == ["Day 0"]
    assert [e["task_title"] for e in window] == ["Day 1"]  # since inclusive, until exclusive
    assert [e["task_title"] for e in exact] == ["Day 1"]
    assert (await call(alice, "task_history", since="2027-01-01"))["entries"] == []


async def test_bad_dates_and_limits_are_refused_naming_the_field(alice: Client) -> None:
    bad_since = await refused(alice, "task_history", since="last tuesday")
    backwards = await refused(alice, "task_history", since="2026-11-24", until="2026-11-23")
    too_many = await refused(alice, "task_history", limit=500)

    assert bad_since.startswith("since: 'last tuesday' is not an ISO 8601 date or date-time.")
    assert "Fix: write it as 2026-11-23" in bad_since
    assert backwards.startswith("until: (2026-11-22T23:00:00Z) is not after since")
    assert "limit" in too_many


async def test_reminder_events_and_unknown_event_types_are_kept_and_shown(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    task = await add(alice, clock, "Dentist", due="2026-11-24T09:00", reminders=["PT1H"])
    await runtime.relay.drain()
    scheduled, created = await history_of(alice)  # the reminders worker scheduled its reminder
    assert created["event_type"] == "TASK_CREATED"
    assert scheduled["event_type"] == "REMINDER_SCHEDULED"
    assert scheduled["details"]["reminder"]["fire_at"] == "2026-11-24T07:00:00Z"
    reminder = {
        "reminder_id": "r-1",
        "spec": "PT1H",
        "fire_at": "2026-11-24T07:00:00Z",
        "late": False,
    }

    def envelope(kind: str, **extra: Any) -> dict[str, Any]:
        return {
            "event_id": str(uuid.uuid4()),
            "event_type": kind,
            "task_id": task["id"],
            "user_id": "alice",
            "sequence": 1,
            "timestamp": "2026-11-24T07:00:00Z",
            "payload": {"task": {"title": "Dentist"}, "changes": {}, **extra},
            "metadata": {
                "source": "dueflow.reminders",
                "version": "v1",
                "correlation_id": None,
                "causation_id": created["event_id"],
            },
        }

    triggered = envelope("REMINDER_TRIGGERED", reminder=reminder)
    delivered = envelope(
        "REMINDER_DELIVERED", reminder=reminder, delivery={"channel": "email", "attempt": 1}
    )
    await runtime.workers.bus.publish(
        [
            OutboundMessage("reminders", e["event_id"], e["event_type"], e["task_id"], e)
            for e in (triggered, delivered)
        ]
    )

    newest, older, *_ = await history_of(alice, task_id=task["id"])

    assert newest["event_type"] == "REMINDER_DELIVERED"
    assert older["event_type"] == "REMINDER_TRIGGERED"
    assert older["details"] == {"reminder": reminder}
    assert newest["details"] == {
        "reminder": reminder,
        "delivery": {"channel": "email", "attempt": 1},
    }
    assert newest["changes"] == []
    assert newest["actor"] == "alice via the reminders worker"
    assert older["summary"] == (
        "reminder triggered: reminder (reminder_id 'r-1', spec 'PT1H',"
        " fire_at '2026-11-24T07:00:00Z', late false)"
    )
    assert "delivery (channel 'email', attempt 1)" in newest["summary"]


async def test_task_history_is_a_read_only_tool_with_an_output_schema(alice: Client) -> None:
    tools = {tool.name: tool for tool in await alice.list_tools()}
    tool = tools["task_history"]
    assert tool.annotations is not None and tool.annotations.read_only_hint is True
    assert tool.output_schema is not None
    assert set(tool.output_schema["properties"]) == {"entries", "next_cursor"}
    assert set(tool.input_schema["properties"]) == {"task_id", "since", "until", "limit", "cursor"}
