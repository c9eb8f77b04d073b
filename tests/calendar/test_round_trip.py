"""Every task shape Dueflow holds goes out as iCalendar and comes back equal, field by field,
through a real MCP client on SQLite and PostgreSQL; the export of the import is the same text
apart from DTSTAMP; importing again changes nothing; a newer SEQUENCE updates."""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any

import icalendar
import vobject
from fastmcp import Client

from domain.clock import FixedClock
from dueflow.bootstrap import Runtime
from tests.support.database import scalar
from tests.support.tools import add, call, history_of

# every shape: all-day and timed (DST days in two zones), each recurrence kind the recurrence
# tests cover with EXDATE, COUNT and UNTIL, both anchors, relative and absolute reminders, tags,
# every priority
SHAPES: list[dict[str, Any]] = [
    {
        "title": "Rent",
        "due": "2026-12-01",
        "tags": ["home", "bills, due"],
        "priority": "high",
        "reminders": ["P1D", "PT2H"],
    },
    {
        "title": "Dentist",
        "due": "2027-03-28T09:30",
        "timezone": "Europe/Berlin",
        "reminders": ["PT30M", "2027-03-27T18:00:00Z"],
        "priority": "urgent",
        "description": "Bring the card;\nsecond line, with commas: and colons\\",
    },
    {
        "title": "Call at the repeated hour",
        "due": "2026-11-01T01:30:00-05:00",
        "timezone": "America/New_York",
        "priority": "low",
    },
    {"title": "Someday", "description": "no due", "priority": "medium", "tags": ["ideas"]},
    {
        "title": "Stand-up",
        "due": "2026-11-24T09:00",
        "reminders": ["PT10M"],
        "recurrence": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
    },
    {
        "title": "Pills",
        "due": "2026-11-23T20:00",
        "recurrence": "FREQ=DAILY;COUNT=3\nEXDATE:20261124T200000",
    },
    {"title": "Backup", "due": "2026-11-30", "recurrence": "FREQ=MONTHLY;BYMONTHDAY=-1"},
    {
        "title": "Payroll",
        "due": "2026-11-30T12:00",
        "recurrence": "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
    },
    {
        "title": "Birthday",
        "due": "2027-03-03",
        "reminders": ["P7D"],
        "recurrence": "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=3",
    },
    {
        "title": "Water plants",
        "due": "2026-11-23T18:00",
        "recurrence": "FREQ=DAILY;INTERVAL=3",
        "recurrence_anchor": "completion",
        "reminders": ["PT1H"],
    },
    {
        "title": "Sprint review",
        "due": "2026-11-27T15:00",
        "recurrence": "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR;UNTIL=20271231T235959Z",
    },
    {
        "title": "Check mail",
        "due": "2026-11-23T16:00",
        "timezone": "Asia/Kolkata",
        "recurrence": "FREQ=HOURLY;INTERVAL=4;COUNT=10",
    },
    {
        "title": "Thanksgiving",
        "due": "2026-11-26",
        "recurrence": "FREQ=YEARLY;BYMONTH=11;BYDAY=4TH\nEXDATE:20271125",
    },
    {
        "title": "Laundry",
        "due": "2026-11-23",
        "recurrence": "FREQ=WEEKLY;UNTIL=20270115\nEXDATE:20261130",
    },
    {"title": "Done already", "tags": ["old"]},
]
IGNORED = {"id", "version", "updated_at", "overdue", "urgency"}


async def _every_shape(alice: Client, runtime: Runtime, clock: FixedClock) -> None:
    made = {}
    for shape in SHAPES:
        made[shape["title"]] = await add(alice, clock=clock, **shape)
    await call(alice, "complete_task", task_id=made["Done already"]["id"])
    await call(alice, "skip_occurrence", task_id=made["Stand-up"]["id"])  # its start stays put
    # a series with occurrences: Pills ends after two (COUNT=3, one EXDATE), Water plants goes on
    for title in ("Pills", "Water plants"):
        await call(alice, "complete_task", task_id=made[title]["id"])
    await runtime.relay.drain()
    pills = await call(alice, "list_tasks", status="open", query="Pills")
    await call(alice, "complete_task", task_id=pills["tasks"][0]["id"])
    await runtime.relay.drain()


def _comparable(task: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """A task's fields as get_task shows them, ids replaced by their UIDs, to the second."""
    shown = {key: value for key, value in task.items() if key not in IGNORED}
    for moment in ("created_at", "completed_at"):
        if shown[moment]:
            shown[moment] = shown[moment][:19]
    if shown["recurrence"]:
        rec = dict(shown["recurrence"])
        for link in ("recurred_from", "recurred_to"):
            rec[link] = names.get(rec[link], rec[link])
        shown["recurrence"] = rec
    for reminder in shown["reminders"]:
        reminder.pop("fires_at", None)
    return shown


def _without_dtstamp(text: str) -> str:
    return re.sub(r"DTSTAMP:[0-9TZ]+\r\n", "", text)


async def _all(client: Client) -> list[dict[str, Any]]:
    return (await call(client, "list_tasks", status="all", limit=200))["tasks"]


async def test_every_task_shape_comes_back_equal_and_exports_the_same_text(
    alice: Client, bob: Client, runtime: Runtime, clock: FixedClock
) -> None:
    await _every_shape(alice, runtime, clock)
    exported = await call(alice, "export_tasks_ics")
    text = exported["ics"]
    assert exported["tasks"] == len(await _all(alice)) == len(SHAPES) + 2

    clock.advance(dt.timedelta(hours=1))
    imported = await call(bob, "import_tasks_ics", ics=text)
    assert imported["created"] == exported["tasks"]
    assert [item["notes"] for item in imported["items"]] == [[]] * exported["tasks"]

    alice_by_uid = {task["id"]: task for task in await _all(alice)}  # her UIDs are her ids
    bob_uid = {item["task_id"]: item["uid"] for item in imported["items"]}
    bob_tasks = {bob_uid[task["id"]]: task for task in await _all(bob)}
    assert set(bob_tasks) == set(alice_by_uid)
    for uid, theirs in alice_by_uid.items():
        mine = bob_tasks[uid]
        expected = _comparable(await _get(alice, theirs["id"]), {})
        assert _comparable(await _get(bob, mine["id"]), bob_uid) == expected, theirs["title"]

    again = await call(bob, "export_tasks_ics")
    assert _without_dtstamp(again["ics"]) == _without_dtstamp(text)


async def _get(client: Client, task_id: str) -> dict[str, Any]:
    return (await call(client, "get_task", task_id=task_id))["task"]


async def test_importing_the_same_calendar_again_writes_nothing_and_a_newer_sequence_updates(
    alice: Client, bob: Client, runtime: Runtime, clock: FixedClock
) -> None:
    await _every_shape(alice, runtime, clock)
    text = (await call(alice, "export_tasks_ics"))["ics"]
    await call(bob, "import_tasks_ics", ics=text)
    await runtime.relay.drain()
    outbox = await scalar(runtime, "SELECT count(*) FROM outbox")

    for client, again in (
        (bob, text),
        (alice, text),
        (bob, (await call(bob, "export_tasks_ics"))["ics"]),
    ):
        answer = await call(client, "import_tasks_ics", ics=again)
        assert answer["unchanged"] == len(answer["items"]) == len(SHAPES) + 2
    assert await scalar(runtime, "SELECT count(*) FROM outbox") == outbox

    rent = next(t for t in await _all(alice) if t["title"] == "Rent")
    block = text.split(f"UID:{rent['id']}")[0].rsplit("BEGIN:VTODO", 1)[1]
    changed = text.replace(
        block,
        block.replace("SEQUENCE:0", "SEQUENCE:4").replace(
            "SUMMARY:Rent", "SUMMARY:Rent for December"
        ),
    )
    answer = await call(bob, "import_tasks_ics", ics=changed)
    assert answer["updated"] == 1 and answer["unchanged"] == len(SHAPES) + 1
    await runtime.relay.drain()
    mine = next(t for t in await _all(bob) if t["title"] == "Rent for December")
    entries = await history_of(bob, task_id=mine["id"])
    kinds = [entry["event_type"] for entry in entries]  # newest first
    assert [k for k in kinds if k.startswith("TASK_")] == ["TASK_UPDATED", "TASK_CREATED"]
    assert "REMINDER_SCHEDULED" in kinds  # the reminders worker planned the imported reminders
    exported = (await call(bob, "export_tasks_ics"))["ics"]
    assert "SEQUENCE:4\r\nSTATUS:NEEDS-ACTION\r\nSUMMARY:Rent for December" in exported
    # the reminders of the imported tasks are scheduled like any others
    reminders = await call(bob, "list_reminders", within="P366D")
    assert {r["title"] for r in reminders["reminders"]} >= {"Rent for December", "Dentist"}


async def test_the_export_validates_with_the_librarys_strict_parse_and_with_vobject(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    await _every_shape(alice, runtime, clock)
    text = (await call(alice, "export_tasks_ics"))["ics"]
    calendar = icalendar.Calendar.from_ical(text)
    todos = calendar.walk("VTODO")
    assert len(todos) == len(SHAPES) + 2
    for todo in todos:
        assert todo.errors == [] and {"UID", "DTSTAMP", "SUMMARY"} <= set(todo)
    assert {tz["TZID"] for tz in calendar.walk("VTIMEZONE")} == {"Europe/Berlin", "Asia/Kolkata"}
    # 01:30 happens twice in New York that night: a TZID cannot say which, so UTC and the zone
    repeated = next(todo for todo in todos if todo["SUMMARY"] == "Call at the repeated hour")
    assert repeated["DUE"].to_ical() == b"20261101T063000Z"
    assert repeated["X-DUEFLOW-TIMEZONE"] == "America/New_York"
    parsed = vobject.readOne(io.StringIO(text), validate=True)
    assert len(parsed.vtodo_list) == len(SHAPES) + 2
    dentist = next(todo for todo in parsed.vtodo_list if todo.summary.value == "Dentist")
    assert dentist.due.value == dt.datetime(2027, 3, 28, 9, 30, tzinfo=dentist.due.value.tzinfo)
    assert dentist.due.value.utcoffset() == dt.timedelta(hours=2)  # CEST: the day DST starts
