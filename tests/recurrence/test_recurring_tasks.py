"""Recurring tasks end to end: MCP tools, the relay, the recurrence worker. SQLite and PostgreSQL.

The fixed clock stands at Monday 2026-11-23 10:00 UTC (11:00 in Europe/Berlin, the user's zone).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from fastmcp import Client
from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.adapters.outbox import OutboxRelay
from domain.clock import FixedClock
from dueflow.bootstrap import Runtime
from tests.fakes.dapr_sidecar import FakeDaprSidecar
from tests.support.dapr_apps import PUBSUB, connect_publisher, deliver_published
from tests.support.database import decoded, rows
from tests.support.tools import add, call, refused
from workers.consumer import Consumer, ConsumerRunner, Received
from workers.dapr_app import build_app
from workers.registry import build_consumers


async def open_titles(client: Client, **filters: Any) -> list[tuple[str, str | None]]:
    page = await call(client, "list_tasks", **filters)
    return [(t["title"], t["due"]) for t in page["tasks"]]


async def test_completing_a_recurring_task_creates_the_next_occurrence(
    alice: Client, runtime: Runtime
) -> None:
    task = await add(
        alice,
        "Stand-up",
        due="2026-11-24T09:00",
        recurrence="FREQ=DAILY",
        tags=["team"],
        priority="high",
        reminders=["PT10M", "2026-11-24T07:00:00Z"],
        description="notes",
    )
    await call(alice, "complete_task", task_id=task["id"])
    await runtime.relay.drain()

    page = await call(alice, "list_tasks")
    assert [(t["title"], t["due"]) for t in page["tasks"]] == [
        ("Stand-up", "2026-11-25T09:00:00+01:00")
    ]
    following = (await call(alice, "get_task", task_id=page["tasks"][0]["id"]))["task"]
    assert following["priority"] == "high" and following["tags"] == ["team"]
    assert following["description"] == "notes"
    assert following["recurrence"]["rule"] == "FREQ=DAILY"
    assert following["recurrence"]["series_id"] == task["recurrence"]["series_id"]
    assert following["recurrence"]["occurrence"] == 2
    assert following["recurrence"]["recurred_from"] == task["id"]
    # the relative reminder follows the due; the absolute one moves by the same day
    assert [r["fires_at"] for r in following["reminders"]] == [
        "2026-11-25T07:00:00Z",
        "2026-11-25T07:50:00Z",
    ]
    done = (await call(alice, "get_task", task_id=task["id"]))["task"]
    assert done["recurrence"]["recurred_to"] == following["id"]
    linked = await rows(
        runtime,
        "SELECT event_type, payload FROM outbox WHERE task_id = :t AND event_type LIKE 'TASK%'"
        " ORDER BY id",
        t=task["id"],
    )
    assert [r[0] for r in linked] == ["TASK_CREATED", "TASK_COMPLETED", "TASK_RECURRED"]
    payload = decoded(linked[-1][1])
    assert payload["payload"]["changes"]["recurred_to"] == [None, following["id"]]
    assert payload["metadata"]["causation_id"]


async def test_a_daily_task_keeps_its_wall_clock_time_across_the_dst_switch(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    clock.set(dt.datetime(2026, 3, 28, 6, 0, tzinfo=dt.UTC))
    task = await add(alice, "Water plants", due="2026-03-28T09:00", recurrence="every day")
    assert task["recurrence"]["rule"] == "FREQ=DAILY"
    await call(alice, "complete_task", task_id=task["id"])
    await runtime.relay.drain()
    assert await open_titles(alice) == [("Water plants", "2026-03-29T09:00:00+02:00")]


async def test_missed_occurrences_are_skipped_and_recorded(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    clock.set(dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC))
    task = await add(alice, "Timesheet", due="2026-11-02", recurrence="FREQ=DAILY")
    clock.set(dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC))  # three weeks late
    await call(alice, "complete_task", task_id=task["id"])
    await runtime.relay.drain()
    page = await call(alice, "list_tasks")
    assert [(t["due"], t["overdue"]) for t in page["tasks"]] == [("2026-11-23", False)]
    recurred = await rows(
        runtime,
        "SELECT payload FROM outbox WHERE event_type = 'TASK_RECURRED' AND task_id = :t",
        t=task["id"],
    )
    payload = decoded(recurred[0][0])
    skipped = payload["payload"]["changes"]["skipped_occurrences"][1]
    assert [s["date"] for s in skipped][:2] == ["2026-11-03", "2026-11-04"]
    assert len(skipped) == 20


async def test_a_completion_anchored_task_counts_from_when_it_was_done(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    clock.set(dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC))
    task = await add(
        alice,
        "Change filter",
        due="2026-11-02T09:00",
        recurrence="FREQ=DAILY;INTERVAL=3",
        recurrence_anchor="completion",
    )
    clock.set(dt.datetime(2026, 11, 10, 14, 0, tzinfo=dt.UTC))  # done on the 10th
    await call(alice, "complete_task", task_id=task["id"])
    await runtime.relay.drain()
    assert await open_titles(alice) == [("Change filter", "2026-11-13T09:00:00+01:00")]


async def test_a_series_with_count_ends_without_a_new_task(alice: Client, runtime: Runtime) -> None:
    task = await add(alice, "Course", due="2026-11-24", recurrence="FREQ=WEEKLY;COUNT=2")
    await call(alice, "complete_task", task_id=task["id"])
    await runtime.relay.drain()
    second = (await call(alice, "list_tasks"))["tasks"][0]
    assert second["due"] == "2026-12-01"
    await call(alice, "complete_task", task_id=second["id"])
    await runtime.relay.drain()
    assert (await call(alice, "list_tasks"))["tasks"] == []
    ended = (await call(alice, "get_task", task_id=second["id"]))["task"]
    assert ended["recurrence"]["series_ended"] is True
    assert ended["recurrence"]["recurred_to"] is None


async def test_complete_reopen_complete_creates_one_next_occurrence(
    alice: Client, runtime: Runtime
) -> None:
    task = await add(alice, "Backup", due="2026-11-24", recurrence="FREQ=WEEKLY")
    await call(alice, "complete_task", task_id=task["id"])
    await runtime.relay.drain()
    await call(alice, "reopen_task", task_id=task["id"])
    await call(alice, "complete_task", task_id=task["id"])
    await runtime.relay.drain()
    series = await rows(
        runtime,
        "SELECT count(*) FROM tasks WHERE series_id = :s",
        s=task["recurrence"]["series_id"],
    )
    assert series[0][0] == 2


async def test_a_redelivered_completion_creates_one_task(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    task = await add(alice, "Report", due="2026-11-24", recurrence="FREQ=MONTHLY;BYMONTHDAY=-1")
    await call(alice, "complete_task", task_id=task["id"])
    await runtime.relay.drain()
    completed = await rows(
        runtime,
        "SELECT payload FROM outbox WHERE event_type = 'TASK_COMPLETED' AND task_id = :t",
        t=task["id"],
    )
    envelope = decoded(completed[0][0])
    # a second consumer group, as if the broker delivered the completion again
    consumers = build_consumers(FixedClock(dt.datetime.now(dt.UTC)), "Europe/Berlin")
    runner = ConsumerRunner(
        async_sessionmaker(runtime.engine, expire_on_commit=False),
        FixedClock(dt.datetime.now(dt.UTC)),
    )

    again = Consumer("recurrence-replay", consumers["recurrence"].handlers)
    for _ in range(2):
        await runner.process(again, Received.parse("task-events", envelope))
    assert await open_titles(alice) == [("Report", "2026-11-30")]


async def test_the_recurrence_worker_app_creates_the_next_occurrence_from_dapr_deliveries(
    alice: Client, runtime: Runtime, clock: FixedClock, sidecar: FakeDaprSidecar
) -> None:
    task = await add(alice, "Invoice", due="2026-11-30", recurrence="FREQ=MONTHLY;BYMONTHDAY=-1")
    await call(alice, "complete_task", task_id=task["id"])
    async with connect_publisher(sidecar) as publisher:
        await OutboxRelay(runtime.engine, publisher, clock).drain()
    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)
    worker = build_consumers(clock, "Europe/Berlin")["recurrence"]
    app = build_app([worker], ConsumerRunner(sessions, clock), PUBSUB, sessions=sessions)
    answers = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://recurrence") as client:
        for _ in range(2):  # delivered twice
            for request in sidecar.published:
                if request.topic == "task-events":
                    answers.append(await deliver_published(client, request))
    assert set(answers) == {"SUCCESS"}
    assert await open_titles(alice) == [("Invoice", "2026-12-31")]


async def test_monthly_on_the_31st_skips_short_months_without_drifting(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    clock.set(dt.datetime(2027, 1, 31, 8, 0, tzinfo=dt.UTC))
    task = await add(alice, "Rent", due="2027-01-31", recurrence="FREQ=MONTHLY;BYMONTHDAY=31")
    await call(alice, "complete_task", task_id=task["id"])
    await runtime.relay.drain()
    following = (await call(alice, "list_tasks"))["tasks"][0]
    assert following["due"] == "2027-03-31"


async def test_skip_occurrence_moves_to_the_next_slot_without_completing(
    alice: Client, runtime: Runtime
) -> None:
    task = await add(alice, "Gym", due="2026-11-24T18:00", recurrence="FREQ=WEEKLY;BYDAY=TU,TH")
    skipped = (await call(alice, "skip_occurrence", task_id=task["id"]))["task"]
    assert skipped["id"] == task["id"] and skipped["status"] == "open"
    assert skipped["due"]["datetime"] == "2026-11-26T18:00:00+01:00"
    assert skipped["recurrence"]["occurrence"] == 2
    await runtime.relay.drain()
    assert len((await call(alice, "list_tasks"))["tasks"]) == 1
    plain = await add(alice, "Once", due="2026-11-24")
    assert (await refused(alice, "skip_occurrence", task_id=plain["id"])).startswith("task_id:")


async def test_preview_shows_occurrences_with_their_utc_offsets(alice: Client) -> None:
    result = await call(
        alice,
        "preview_recurrence",
        recurrence="FREQ=WEEKLY;BYDAY=SU",
        due="2027-03-21T09:00",
        count=3,
    )
    assert result["recurrence"] == "FREQ=WEEKLY;BYDAY=SU"
    assert [(o["datetime"], o["utc_offset"]) for o in result["occurrences"]] == [
        ("2027-03-21T09:00:00+01:00", "+01:00"),
        ("2027-03-28T09:00:00+02:00", "+02:00"),
        ("2027-04-04T09:00:00+02:00", "+02:00"),
    ]
    phrase = await call(
        alice, "preview_recurrence", recurrence="last day of every month", due="2027-01-31"
    )
    assert phrase["recurrence"] == "FREQ=MONTHLY;BYMONTHDAY=-1"
    assert [o["date"] for o in phrase["occurrences"]][:3] == [
        "2027-01-31",
        "2027-02-28",
        "2027-03-31",
    ]


async def test_update_changes_the_rule_or_the_date_without_losing_the_other(
    alice: Client,
) -> None:
    task = await add(alice, "Review", due="2026-11-24T10:00", recurrence="FREQ=WEEKLY;BYDAY=TU")
    ruled = (
        await call(alice, "update_task", task_id=task["id"], recurrence="FREQ=WEEKLY;BYDAY=TU,FR")
    )["task"]
    assert ruled["due"] == task["due"] and ruled["recurrence"]["rule"] == "FREQ=WEEKLY;BYDAY=TU,FR"
    moved = (await call(alice, "update_task", task_id=task["id"], due="2026-11-27T11:00"))["task"]
    assert moved["recurrence"]["rule"] == "FREQ=WEEKLY;BYDAY=TU,FR"
    assert moved["recurrence"]["series_id"] == task["recurrence"]["series_id"]
    assert moved["due"]["datetime"] == "2026-11-27T11:00:00+01:00"


async def test_phrases_are_echoed_as_what_they_resolved_to(alice: Client) -> None:
    result = await alice.call_tool(
        "add_task", {"title": "Call", "due": "tomorrow 5pm", "recurrence": "every weekday"}
    )
    task = result.structured_content["task"]  # type: ignore[index]
    assert task["due"]["datetime"] == "2026-11-24T17:00:00+01:00"
    assert task["recurrence"]["rule"] == "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"
    assert "2026-11-24 17:00" in result.content[0].text  # type: ignore[union-attr]
    assert "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR" in result.content[0].text  # type: ignore[union-attr]


async def test_an_ambiguous_phrase_is_refused_with_the_exact_form_to_use(
    alice: Client, runtime: Runtime
) -> None:
    due = await refused(alice, "add_task", title="t", due="at 5")
    assert due.startswith("due:") and "Fix:" in due
    rule = await refused(alice, "add_task", title="t", due="2026-12-01", recurrence="biweekly")
    assert rule.startswith("recurrence:") and "FREQ=" in rule
    assert (await rows(runtime, "SELECT count(*) FROM tasks"))[0][0] == 0
