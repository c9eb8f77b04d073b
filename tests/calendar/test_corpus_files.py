"""Calendar files from other projects' public test corpora (tests/calendar/corpus, each file's
repository, commit and licence in its SOURCES.md) import through a real MCP client on both
databases: every VTODO is created or skipped with the reason, every property it carries is
mapped or named in its notes, every other component is reported, and nothing is dropped in
silence; a file the parser cannot read is refused whole, writing nothing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import icalendar
import pytest
from fastmcp import Client

from dueflow.bootstrap import Runtime
from tests.calendar.test_real_world_files import MAPPED
from tests.support.refusals import assert_refused_alone
from tests.support.tools import call

CORPUS = Path(__file__).parent / "corpus"
READABLE = ["ical4j/3.ics", "ical4j/sunbird_sample.ics", "libical/2446.ics"]
ALARM_MAPPED = {"ACTION", "TRIGGER", "DESCRIPTION", "SUMMARY", "UID", "X-WR-ALARMUID"}


def _unmapped(todo: icalendar.Component) -> set[str]:
    """The properties of `todo` Dueflow does not map (docs/icalendar.md)."""
    names = {str(key).upper() for key in todo} - MAPPED
    if "RRULE" in todo:
        names.discard("DTSTART")  # the start of a series
    for alarm in todo.walk("VALARM"):
        names |= {f"VALARM {str(key).upper()}" for key in alarm} - {
            f"VALARM {name}" for name in ALARM_MAPPED
        }
    return names


def _components(text: str) -> list[icalendar.Component]:
    return [
        component
        for calendar in icalendar.Calendar.from_ical(text, multiple=True)
        for component in calendar.subcomponents
    ]


def test_every_corpus_file_is_listed_in_sources_with_its_licence() -> None:
    sources = (CORPUS / "SOURCES.md").read_text()
    files = sorted(str(path.relative_to(CORPUS)) for path in CORPUS.rglob("*.ics"))
    assert files == sorted([*READABLE, "ical4j/twinkle.ics"])
    for name in files:
        row = next(line for line in sources.splitlines() if f"`{name}`" in line)
        assert "BSD-3-Clause" in row or "MPL-2.0" in row, row
        assert any(len(word) == 40 for word in row.replace("`", " ").split()), row


@pytest.mark.parametrize("name", READABLE)
async def test_a_corpus_file_imports_with_every_item_and_property_mapped_or_reported(
    alice: Client, name: str
) -> None:
    text = (CORPUS / name).read_text()
    components = _components(text)
    todos = [c for c in components if c.name == "VTODO"]
    assert todos, name  # each file was chosen for its VTODOs
    answer = await call(alice, "import_tasks_ics", ics=text)
    reports: dict[str, list[dict[str, Any]]] = {}
    for report in answer["items"]:
        reports.setdefault(report["uid"], []).append(report)

    for changed in (todo for todo in todos if "RECURRENCE-ID" in todo):
        (skipped,) = [r for r in reports[str(changed["UID"])] if r["outcome"] == "skipped"]
        assert "RECURRENCE-ID" in skipped["notes"][0] and skipped["task_id"] is None
    whole = [todo for todo in todos if "RECURRENCE-ID" not in todo]
    copies = Counter(str(todo["UID"]) for todo in whole)
    for uid, count in copies.items():
        (item,) = [r for r in reports[uid] if "RECURRENCE-ID" not in " ".join(r["notes"])]
        notes = " | ".join(item["notes"])
        assert item["outcome"] in ("created", "skipped"), item
        if item["outcome"] == "skipped":
            assert item["notes"] and item["task_id"] is None, item
            continue
        if count > 1:  # an iTIP exchange carries one UID many times: the newest is kept, said so
            assert f"{count - 1} older cop" in notes, notes
        carried = [todo for todo in whole if str(todo["UID"]) == uid]
        assert any(all(f"{p}: not imported" in notes for p in _unmapped(t)) for t in carried), (
            uid,
            notes,
        )
        task = (await call(alice, "get_task", task_id=item["task_id"]))["task"]
        titles = {str(todo.get("SUMMARY", "")).strip() or "Untitled" for todo in carried}
        assert task["title"] in titles
    for event in (c for c in components if c.name == "VEVENT"):
        refusals = reports[str(event["UID"])]
        assert all(r["outcome"] == "skipped" and "VEVENT" in r["notes"][0] for r in refusals)
    others = Counter(c.name for c in components if c.name not in ("VTODO", "VEVENT", "VTIMEZONE"))
    for kind, count in others.items():
        assert answer["notes"].count(f"{kind}: not imported (Dueflow imports VTODOs)") == count

    tasks = (await call(alice, "list_tasks", status="all"))["tasks"]
    assert len(tasks) == answer["created"] == sum(1 for r in answer["items"] if r["task_id"])
    again = await call(alice, "import_tasks_ics", ics=text)
    assert (again["created"], again["updated"]) == (0, 0)


async def test_a_corpus_file_the_parser_cannot_read_is_refused_whole_naming_the_value(
    alice: Client, runtime: Runtime
) -> None:
    # ical4j keeps it among its invalid samples: one VTODO is due in the year -1
    text = (CORPUS / "ical4j" / "twinkle.ics").read_text()
    refusal = await assert_refused_alone(alice, runtime, "ics", "import_tasks_ics", ics=text)
    assert "-0011130T100000" in refusal
