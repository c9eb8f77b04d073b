"""The export read by ical.js (Mozilla's parser, the one Thunderbird's calendar uses), a parser
independent of the icalendar library that wrote it: every task shape's VTODO reads back with its
key properties, each zoned time resolved through the file's own VTIMEZONEs to the task's instant.
ical.js comes from the npm registry (scripts/install-icaljs, run by scripts/test); under CI a
missing ical.js or Node fails the test."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client

from domain.clock import FixedClock
from domain.reminder_specs import parse_duration
from dueflow.bootstrap import Runtime
from tests.calendar.test_round_trip import SHAPES, _every_shape, _get
from tests.support.tools import call

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / ".venv/node-tools/icaljs/node_modules/ical.js/dist/ical.js"
READER = Path(__file__).with_name("icaljs_read.mjs")
PRIORITY = {"urgent": 1, "high": 3, "medium": 5, "low": 9}


def icaljs() -> tuple[str, Path]:
    """Node and the ical.js module; without them the test fails under CI, else is skipped."""
    node = shutil.which("node")
    if node is None or not MODULE.exists():
        missing = "node" if node is None else str(MODULE.relative_to(ROOT))
        if os.environ.get("CI"):
            pytest.fail(f"ical.js must be installed under CI ({missing}): scripts/install-icaljs")
        pytest.skip(f"ical.js is not installed ({missing}): run scripts/install-icaljs")
    return node, MODULE


def read_with_icaljs(text: str) -> dict[str, Any]:
    node, module = icaljs()
    done = subprocess.run(
        [node, str(READER), str(module)],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    read: dict[str, Any] = json.loads(done.stdout)
    return read


def _unix(utc: str) -> int:
    return int(dt.datetime.fromisoformat(utc.replace("Z", "+00:00")).timestamp())


def _rule(rule: str) -> set[str]:
    """A rule's parts, UNTIL written without separators (ical.js writes it either way)."""
    parts = set()
    for part in rule.split(";"):
        name, _, value = part.partition("=")
        parts.add(f"{name}={value.replace('-', '').replace(':', '')}" if name == "UNTIL" else part)
    return parts


async def test_icaljs_reads_every_task_shape_of_the_export_back(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    await _every_shape(alice, runtime, clock)
    text = (await call(alice, "export_tasks_ics"))["ics"]
    read = read_with_icaljs(text)
    assert len(read["todos"]) == len(SHAPES) + 2 and read["zones"] == 2
    for todo in read["todos"]:
        task = await _get(alice, todo["uid"])  # her UIDs are her task ids
        title = task["title"]
        assert todo["summary"] == title
        assert todo["description"] == (task["description"] or None), title
        assert todo["sequence"] == task["version"] - 1
        assert todo["status"] == ("COMPLETED" if task["status"] == "completed" else "NEEDS-ACTION")
        assert sorted(todo["categories"]) == sorted(task["tags"]), title
        assert todo["priority"] == PRIORITY.get(task["priority"]), title
        due = task["due"]
        if due is None:
            assert todo["due"] is None, title
        elif due.get("date"):
            assert todo["due"]["date"] and todo["due"]["text"] == due["date"], title
        else:
            assert todo["due"]["unix"] == _unix(due["utc"]), (title, todo["due"], due)
        if task["completed_at"]:
            assert todo["completed"]["unix"] == _unix(task["completed_at"]), title
        rec = task["recurrence"]
        if rec is None:
            assert todo["rrule"] is None and todo["dtstart"] is None, title
        else:
            assert _rule(todo["rrule"]) == _rule(rec["rule"]), title
            assert len(todo["exdates"]) == len(rec["exdates"]), title
            assert todo["anchor"] == rec["anchor"], title
        assert len(todo["alarms"]) == len(task["reminders"]), title
        for alarm, reminder in zip(todo["alarms"], task["reminders"], strict=True):
            assert alarm["action"] == "DISPLAY"
            if reminder["spec"].startswith("P"):
                # before the due; an all-day task's count from 09:00, a calendar's from midnight
                before = parse_duration(reminder["spec"]).total_seconds()
                shift = 9 * 3600 if due is not None and due.get("date") else 0
                assert alarm["related"] == "END", title
                assert alarm["duration"] == shift - before, title
            else:
                assert alarm["at"] == _unix(reminder["spec"]), title
    # the DST switch: 09:30 in Berlin on the day summer time starts is 07:30 UTC
    dentist = next(todo for todo in read["todos"] if todo["summary"] == "Dentist")
    assert dentist["due"]["zone"] == "Europe/Berlin"
    assert dentist["due"]["unix"] == _unix("2027-03-28T07:30:00Z")
    linked = [todo for todo in read["todos"] if todo["related"]]
    assert linked and all(r["reltype"] == "NEXT" for todo in linked for r in todo["related"])
