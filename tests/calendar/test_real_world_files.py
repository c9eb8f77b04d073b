"""Calendar files in the shapes Thunderbird, Apple Reminders, Outlook and Google Calendar write
(tests/calendar/fixtures, see its README) import through a real MCP client on both databases:
every property is mapped or reported for its item, VEVENTs are refused unless asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import icalendar
from fastmcp import Client

from tests.support.tools import call

FIXTURES = Path(__file__).parent / "fixtures"
# what Dueflow maps (docs/icalendar.md); anything else an item carries must be in its notes
MAPPED = {
    "UID",
    "SUMMARY",
    "DESCRIPTION",
    "DUE",
    "PRIORITY",
    "CATEGORIES",
    "STATUS",
    "COMPLETED",
    "CREATED",
    "LAST-MODIFIED",
    "DTSTAMP",
    "SEQUENCE",
    "RRULE",
    "EXDATE",
    "RELATED-TO",
}


def _text(name: str) -> str:
    return (FIXTURES / name).read_text()


def _unmapped(name: str, kind: str = "VTODO") -> dict[str, set[str]]:
    """Per UID, the properties of the file's items that Dueflow does not map."""
    found = {}
    for item in icalendar.Calendar.from_ical(_text(name)).walk(kind):
        names = {str(key).upper() for key in item} - MAPPED
        if kind == "VEVENT" or "RRULE" in item:
            names.discard("DTSTART")  # the due of an event, the start of a series
        names |= {f"VALARM {key}" for alarm in item.walk("VALARM") for key in alarm} - {
            f"VALARM {k}" for k in ("ACTION", "TRIGGER", "DESCRIPTION", "UID", "X-WR-ALARMUID")
        }
        found[str(item["UID"])] = names
    return found


def _assert_reported(answer: dict[str, Any], unmapped: dict[str, set[str]]) -> None:
    items = {item["uid"]: item for item in answer["items"]}
    for uid, names in unmapped.items():
        notes = " | ".join(items[uid]["notes"])
        for name in names:
            assert f"{name}: not imported" in notes, (uid, name, notes)


async def _task(client: Client, answer: dict[str, Any], title: str) -> dict[str, Any]:
    task_id = next(item["task_id"] for item in answer["items"] if item["title"] == title)
    task: dict[str, Any] = (await call(client, "get_task", task_id=task_id))["task"]
    return task


async def test_a_thunderbird_file_imports_with_every_property_mapped_or_reported(
    alice: Client,
) -> None:
    answer = await call(alice, "import_tasks_ics", ics=_text("thunderbird.ics"))
    assert (answer["created"], answer["skipped"]) == (3, 0)
    _assert_reported(answer, _unmapped("thunderbird.ics"))
    insurance = await _task(alice, answer, "Renew the car insurance")
    assert insurance["due"]["datetime"] == "2026-12-05T17:00:00+01:00"
    assert insurance["due"]["timezone"] == "Europe/Berlin"
    assert (insurance["priority"], insurance["tags"]) == ("urgent", ["finance"])
    assert [r["spec"] for r in insurance["reminders"]] == ["PT1H"]
    plants = await _task(alice, answer, "Water the plants")
    assert plants["recurrence"]["rule"] == "FREQ=DAILY;INTERVAL=3"
    assert plants["recurrence"]["start"] == "2026-11-21T18:00:00"
    assert plants["recurrence"]["exdates"] == ["2026-11-27T18:00:00"]
    assert [r["spec"] for r in plants["reminders"]] == ["PT15M"]
    taxes = await _task(alice, answer, "File the tax return")
    assert (taxes["status"], taxes["completed_at"]) == ("completed", "2026-10-05T07:15:00Z")


async def test_an_apple_reminders_file_imports_its_absolute_alarms_and_all_day_series(
    alice: Client,
) -> None:
    answer = await call(alice, "import_tasks_ics", ics=_text("apple_reminders.ics"))
    assert (answer["created"], answer["skipped"]) == (3, 0)
    _assert_reported(answer, _unmapped("apple_reminders.ics"))
    cleaning = await _task(alice, answer, "Pick up the dry cleaning")
    assert cleaning["due"]["timezone"] == "America/Los_Angeles"
    assert cleaning["due"]["utc"] == "2026-11-26T00:00:00Z"
    assert [r["spec"] for r in cleaning["reminders"]] == ["2026-11-26T00:00:00Z"]
    assert cleaning["priority"] == "medium"
    recycling = await _task(alice, answer, "Take out the recycling")
    assert recycling["due"]["date"] == "2026-11-24" and recycling["priority"] == "low"
    assert recycling["recurrence"]["rule"] == "FREQ=WEEKLY;INTERVAL=1"
    flights = await _task(alice, answer, "Book flights")
    assert flights["status"] == "completed"


async def test_an_outlook_file_maps_windows_zones_and_refuses_its_event_unless_asked(
    alice: Client, bob: Client
) -> None:
    answer = await call(alice, "import_tasks_ics", ics=_text("outlook.ics"))
    assert (answer["created"], answer["skipped"]) == (1, 1)
    _assert_reported(answer, _unmapped("outlook.ics"))
    assert "calendar property X-MS-OLK-FORCEINSPECTOROPEN: not imported" in answer["notes"]
    event = next(item for item in answer["items"] if item["outcome"] == "skipped")
    assert event["title"] == "Team meeting" and event["task_id"] is None
    assert "VEVENT" in event["notes"][0] and "events_as_tasks" in event["notes"][0]
    report = await _task(alice, answer, "Send the quarterly report")
    assert report["due"]["timezone"] == "Europe/Berlin"
    assert report["due"]["datetime"] == "2026-12-10T14:00:00+01:00"
    assert [r["spec"] for r in report["reminders"]] == ["P1D"]

    both = await call(bob, "import_tasks_ics", ics=_text("outlook.ics"), events_as_tasks=True)
    assert (both["created"], both["skipped"]) == (2, 0)
    _assert_reported(both, _unmapped("outlook.ics", "VEVENT"))
    meeting = await _task(bob, both, "Team meeting")
    assert meeting["due"]["datetime"] == "2026-12-02T10:00:00+01:00"
    assert [r["spec"] for r in meeting["reminders"]] == ["PT15M"]


async def test_a_google_calendar_export_holds_events_only_read_in_its_calendar_zone(
    alice: Client,
) -> None:
    refused = await call(alice, "import_tasks_ics", ics=_text("google_calendar.ics"))
    assert (refused["created"], refused["skipped"]) == (0, 2)
    assert "calendar property X-WR-CALNAME: not imported" in refused["notes"]
    assert (await call(alice, "list_tasks", status="all"))["tasks"] == []

    answer = await call(
        alice, "import_tasks_ics", ics=_text("google_calendar.ics"), events_as_tasks=True
    )
    assert answer["created"] == 2
    _assert_reported(answer, _unmapped("google_calendar.ics", "VEVENT"))
    sweep = await _task(alice, answer, "Chimney sweep")
    assert sweep["due"]["date"] == "2026-12-03"
    choir = await _task(alice, answer, "Choir practice")
    assert choir["due"]["timezone"] == "Europe/Berlin"  # X-WR-TIMEZONE
    assert choir["due"]["datetime"] == "2026-12-07T18:00:00+01:00"
    assert choir["recurrence"]["rule"] == "FREQ=WEEKLY;BYDAY=MO"
