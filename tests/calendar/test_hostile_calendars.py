"""Hostile or broken calendar text gets the one refusal style and writes nothing, or is imported
with what could not be read reported per item; never an internal error. The library's own test
corpus (as installed with the pinned icalendar) is imported file by file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from importlib.resources import files
from pathlib import Path

import pytest
from fastmcp import Client

from domain.calendar import MAX_ICS_CHARS, MAX_ITEMS
from domain.clock import FixedClock
from dueflow.bootstrap import Runtime
from tests.support.refusals import REFUSAL, assert_refused_alone, written
from tests.support.runtimes import NOW, embedded_runtime
from tests.support.tools import call, server_for


def calendar(*todos: str) -> str:
    return "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//t//EN\n" + "".join(todos) + "END:VCALENDAR\n"


def todo(uid: str, *lines: str) -> str:
    return (
        f"BEGIN:VTODO\nUID:{uid}\nSUMMARY:Task {uid}\n"
        + "".join(f"{x}\n" for x in lines)
        + "END:VTODO\n"
    )


REFUSED = {
    "too long": calendar(todo("a", "DESCRIPTION:" + "x" * MAX_ICS_CHARS)),
    "a NUL": calendar(todo("a", "DESCRIPTION:a\x00b")),
    "no calendar": "hello, world",
    "nested deep": "BEGIN:VCALENDAR\n" + "BEGIN:X\n" * 10 + "END:X\n" * 10 + "END:VCALENDAR\n",
    "too many components": calendar(*("BEGIN:VTODO\nEND:VTODO\n" for _ in range(20_001))),
    "too many tasks": calendar(*(todo(str(n)) for n in range(MAX_ITEMS + 1))),
    "an unreadable value": calendar(todo("a", "SEQUENCE:abc")),
    "an unreadable date": calendar(todo("a", "DUE:2026-13-45")),
}


async def test_a_calendar_that_cannot_be_imported_is_refused_naming_ics_and_writes_nothing(
    alice: Client, runtime: Runtime
) -> None:
    for case, text in REFUSED.items():
        refusal = await assert_refused_alone(alice, runtime, "ics", "import_tasks_ics", ics=text)
        assert len(refusal) < 400, case


async def test_items_the_domain_refuses_are_skipped_or_trimmed_with_the_reason(
    alice: Client, runtime: Runtime
) -> None:
    alarms = "".join(
        f"BEGIN:VALARM\nACTION:DISPLAY\nTRIGGER;RELATED=END:-PT{n + 1}M\nEND:VALARM\n"
        for n in range(25)
    )
    text = calendar(
        todo("far", "DUE;VALUE=DATE:99991231"),
        "BEGIN:VTODO\nUID:long\nSUMMARY:" + "t" * 600 + "\nEND:VTODO\n",
        todo("rule", "DUE:20261201T090000Z", "RRULE:FREQ=SECONDLY"),
        todo("seq", "SEQUENCE:2147483647", "PRIORITY:42", "X-DUEFLOW-OCCURRENCE:-3"),
        todo("after", "DUE:20261201T090000Z", "BEGIN:VALARM\nTRIGGER;RELATED=END:PT1H\nEND:VALARM"),
        todo("alarms", "DUE:20261201T090000Z", alarms.rstrip("\n")),
        todo("gone", "STATUS:CANCELLED"),
        todo("next", "RELATED-TO;RELTYPE=NEXT:nowhere", "RELATED-TO:parent"),
        "BEGIN:VTODO\nSUMMARY:no uid\nEND:VTODO\n",
        "BEGIN:VJOURNAL\nUID:j\nEND:VJOURNAL\n",
    )
    answer = await call(alice, "import_tasks_ics", ics=text)
    notes = {item["uid"]: " | ".join(item["notes"]) for item in answer["items"]}
    outcomes = {item["uid"]: item["outcome"] for item in answer["items"]}
    assert outcomes["far"] == outcomes["long"] == outcomes["gone"] == "skipped"
    assert "due:" in notes["far"] and "title:" in notes["long"] and "CANCELLED" in notes["gone"]
    assert outcomes["rule"] == "created" and "recurrence not imported" in notes["rule"]
    assert "SEQUENCE 2147483647" in notes["seq"] and "PRIORITY 42" in notes["seq"]
    assert "after DUE" in notes["after"]
    assert "5 VALARM beyond 20" in notes["alarms"]
    assert "nowhere" in notes["next"] and "RELTYPE=PARENT" in notes["next"]
    assert any(uid.startswith("dueflow-") and "no UID" in note for uid, note in notes.items())
    assert "VJOURNAL: not imported (Dueflow imports VTODOs)" in answer["notes"]
    alarmed = next(item for item in answer["items"] if item["uid"] == "alarms")
    task = (await call(alice, "get_task", task_id=alarmed["task_id"]))["task"]
    assert len(task["reminders"]) == 20
    again = await call(alice, "import_tasks_ics", ics=text)  # the UID made up is stable
    assert again["created"] == 0


@pytest.fixture
async def sqlite_alice(tmp_path: Path) -> AsyncIterator[tuple[Client, Runtime]]:
    runtime = await embedded_runtime(
        f"sqlite+aiosqlite:///{tmp_path / 'corpus.db'}", tmp_path, FixedClock(NOW)
    )
    try:
        async with Client(server_for(runtime, "alice")) as client:
            yield client, runtime
    finally:
        await runtime.close()


async def test_every_file_of_the_librarys_test_corpus_answers_a_report_or_a_refusal(
    sqlite_alice: tuple[Client, Runtime],
) -> None:
    alice, runtime = sqlite_alice
    corpus = files("icalendar") / "tests"
    paths = sorted(
        path
        for folder in ("calendars", "todos", "alarms", "events", "timezones")
        if (corpus / folder).is_dir()
        for path in (corpus / folder).iterdir()
        if path.name.endswith(".ics")
    )
    assert len(paths) > 100
    imported = refused = 0
    for path in paths:
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError:
            continue
        before = await written(runtime)
        result = await alice.call_tool("import_tasks_ics", {"ics": text}, raise_on_error=False)
        answer: str = result.content[0].text  # type: ignore[union-attr]
        if result.is_error:
            assert REFUSAL.match(answer) and answer.startswith("ics: "), (path.name, answer)
            assert await written(runtime) == before, path.name
            refused += 1
        else:
            imported += 1
    assert imported > 50 and refused > 0
