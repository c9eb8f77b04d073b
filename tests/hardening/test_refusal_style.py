"""Every refusal, whatever layer produces it, answers isError in the one documented style,
`<field>: <problem>. Fix: <what to send>.`, and writes nothing (#14, defect 10). Through a real
MCP client, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from fastmcp import Client, FastMCP
from fastmcp.tools import ToolResult

from dueflow.bootstrap import Runtime
from mcp_server.tooling import Refusals, answer
from tests.support.database import TABLES, rows, scalar
from tests.support.tools import add, refused

NOON = "2026-11-23T12:00:00Z"
TASK = "0123456789abcdef"  # any id: these calls are refused before a task is looked up
PYDANTIC = ("validation error", "errors.pydantic.dev", "type=", "input_value", "Input should")

# the typical type and enum mistakes of each tool: (arguments, the field the refusal names, a
# phrase its fix must hold)
MISTAKES: dict[str, list[tuple[dict[str, Any], str, str]]] = {
    "add_task": [
        ({}, "title", "send title as a string"),
        ({"title": 5}, "title", "send a string"),
        ({"title": None}, "title", "send title as a string"),
        ({"title": "t", "tags": "home"}, "tags", 'e.g. ["home"]'),
        ({"title": "t", "tags": ["home", 5]}, "tags[1]", "send a string"),
        ({"title": "t", "priority": "critical"}, "priority", "none, low, medium, high, urgent"),
        ({"title": "t", "priority": 3}, "priority", "none, low, medium, high, urgent"),
        ({"title": "t", "recurrence_anchor": "end"}, "recurrence_anchor", "schedule, completion"),
        ({"title": "t", "reminders": "PT15M"}, "reminders", 'e.g. ["PT15M"]'),
        ({"title": "t", "description": {"text": "x"}}, "description", "send a string"),
        ({"title": "t", "colour": "red"}, "colour", "leave it out"),
        ({"titel": "t"}, "titel", "did you mean title?"),
        ({"tasks": []}, "tasks", "send 1 to 100 per call"),
        ({"tasks": "buy milk"}, "tasks", "send a list of objects"),
        ({"tasks": [{"title": "a"}, {"title": 5}]}, "tasks[1].title", "send a string"),
        ({"tasks": [{"title": "a"}, {"due": "today"}]}, "tasks[1].title", "send tasks[1].title"),
        ({"tasks": [{"title": "a", "colour": "red"}]}, "tasks[0]", "leave it out"),
        ({"tasks": [{"title": "a"}], "due": "today"}, "due", "move due into each item"),
    ],
    "update_task": [
        ({"title": "t"}, "task_id", "send task_id as a string"),
        ({"task_id": TASK, "expected_version": "one"}, "expected_version", "a whole number"),
        ({"task_id": TASK, "priority": "critical"}, "priority", "none, low, medium"),
        ({"task_id": TASK, "tags": "home"}, "tags", 'e.g. ["home"]'),
        ({"task_id": TASK, "due": 20261201}, "due", "send a string"),
        ({"tasks": [{"title": "t"}]}, "tasks[0].task_id", "send tasks[0].task_id as a string"),
        ({"tasks": [{"task_id": TASK, "tags": "x"}]}, "tasks[0].tags", 'e.g. ["x"]'),
    ],
    "complete_task": [
        ({"task_id": 5}, "task_id", "send a string"),
        ({"task_ids": TASK}, "task_ids", "e.g. ["),
        ({"task_ids": [TASK, 5]}, "task_ids[1]", "send a string"),
        ({"task_ids": [TASK], "task_id": TASK}, "task_id", "leave task_ids out"),
    ],
    "reopen_task": [({"task_id": [TASK]}, "task_id", "send a string")],
    "delete_task": [({}, "task_id", "send task_id as a string")],
    "restore_task": [({"task_id": None}, "task_id", "send task_id as a string")],
    "get_task": [({"task_id": {"id": TASK}}, "task_id", "send a string")],
    "skip_occurrence": [({"task_id": True}, "task_id", "send a string")],
    "preview_recurrence": [
        ({"recurrence": "FREQ=DAILY"}, "due", "send due as a string"),
        ({"recurrence": "FREQ=DAILY", "due": "2026-12-01", "count": 0}, "count", "1 to 100"),
        ({"recurrence": "FREQ=DAILY", "due": "2026-12-01", "count": 101}, "count", "1 to 100"),
        ({"recurrence": ["FREQ=DAILY"], "due": "2026-12-01"}, "recurrence", "send a string"),
    ],
    "list_tasks": [
        ({"limit": 0}, "limit", "a whole number from 1 to 200"),
        ({"limit": 1000}, "limit", "a whole number from 1 to 200"),
        ({"limit": 1.5}, "limit", "a whole number from 1 to 200"),
        ({"status": "done"}, "status", "open, completed, deleted, all"),
        ({"priority": "critical"}, "priority", "or a list of them"),
        ({"priority": ["low", "critical"]}, "priority[1]", "none, low, medium, high, urgent"),
        ({"tags": "home"}, "tags", 'e.g. ["home"]'),
        ({"overdue": "maybe"}, "overdue", "true or false"),
        # strict: text that looks like a number or a boolean is not taken for one
        ({"limit": "10"}, "limit", "a whole number from 1 to 200"),
        ({"overdue": "yes"}, "overdue", "true or false"),
        ({"overdue": "true"}, "overdue", "true or false"),
        ({"overdue": 1}, "overdue", "true or false"),
        ({"page": 2}, "page", "leave it out"),
        ({"sort": "due"}, "sort", 'send a list of strings, e.g. ["due"]'),
        ({"sort": ["due", 5]}, "sort[1]", "send a string"),
        ({"sort": ["due"], "limit": 1000}, "limit", "a whole number from 1 to 200"),
        ({"sort": ["due"], "any_tags": "home"}, "any_tags", 'e.g. ["home"]'),
        ({"completed_after": 5}, "completed_after", "send a string"),
    ],
    "agenda": [
        ({"limit": 0}, "limit", "a whole number from 1 to 100"),
        ({"limit": "5"}, "limit", "a whole number from 1 to 100"),
    ],
    "list_reminders": [
        ({"within": "P1M"}, "within", "weeks, days, hours or minutes"),
        ({"within": 7}, "within", "send a string"),
    ],
    "snooze_reminder": [
        ({"task_id": TASK, "duration": 30}, "duration", "send a string"),
        ({"task_id": TASK, "until": ["2026-12-01"]}, "until", "send a string"),
        ({"duration": "PT30M"}, "task_id", "send task_id as a string"),
    ],
    "dismiss_reminder": [({"task": TASK}, "task_id", "send task_id as a string")],
    "export_tasks_ics": [({"status": "done"}, "status", "open, completed, all")],
    "import_tasks_ics": [
        ({}, "ics", "send ics as a string"),
        ({"ics": 5}, "ics", "send a string"),
        ({"ics": "BEGIN:VCALENDAR", "events_as_tasks": "yes"}, "events_as_tasks", "true or false"),
    ],
    "calendar_feeds": [
        ({}, "action", "send action as one of create, list, revoke"),
        ({"action": "delete"}, "action", "create, list, revoke"),
        ({"action": "create", "events": 1}, "events", "true or false"),
        ({"action": "revoke"}, "feed_id", "give the id of the feed to revoke"),
    ],
    "task_history": [
        ({"limit": 0}, "limit", "a whole number from 1 to 200"),
        ({"limit": 1000}, "limit", "a whole number from 1 to 200"),
        ({"limit": "50"}, "limit", "a whole number from 1 to 200"),
        ({"since": 20261201}, "since", "send a string"),
        ({"task_id": 5}, "task_id", "send a string"),
    ],
}


def assert_in_style(text: str, field: str) -> None:
    """One documented refusal that names `field` first and none of pydantic's own wording."""
    assert re.match(rf"^{re.escape(field)}: .+\. Fix: .+\.$", text), text
    assert not any(phrase in text for phrase in PYDANTIC), text


async def written(runtime: Runtime) -> int:
    """The rows of every table together: a refused call on an empty database leaves it empty."""
    return sum([await scalar(runtime, f"SELECT count(*) FROM {table}") for table in TABLES])


async def test_every_tool_is_covered(alice: Client) -> None:
    assert {tool.name for tool in await alice.list_tools()} == set(MISTAKES)


@pytest.mark.parametrize("tool", sorted(MISTAKES))
async def test_a_tools_type_and_enum_mistakes_are_refused_in_the_one_style_writing_nothing(
    alice: Client, runtime: Runtime, tool: str
) -> None:
    for arguments, field, fix in MISTAKES[tool]:
        text = await refused(alice, tool, **arguments)
        assert_in_style(text, field)
        assert fix in text.split(". Fix: ", 1)[1], (arguments, text)
    assert await written(runtime) == 0


async def test_months_are_named_as_what_is_refused_and_nothing_is_snoozed(
    alice: Client, runtime: Runtime
) -> None:
    text = await refused(alice, "list_reminders", within="P1M")
    assert text.startswith("within: 'P1M' uses years or months"), text
    assert "not an ISO 8601 duration" not in text
    task = await add(alice, "Call Bob", due=NOON, reminders=["PT15M"])
    text = await refused(alice, "snooze_reminder", task_id=task["id"], duration="P1M")
    assert_in_style(text, "duration")
    assert "months" in text
    assert await rows(runtime, "SELECT id FROM reminder_schedule WHERE spec = 'snooze'") == []


async def test_a_refusal_repeats_at_most_a_few_dozen_characters_of_what_was_sent(
    alice: Client,
) -> None:
    huge = "x" * 100_000
    for tool, arguments, field in [
        ("list_tasks", {"sort": huge}, "sort"),
        ("list_tasks", {"limit": 10**80}, "limit"),
        ("add_task", {"title": "t", "tags": [huge]}, "tags"),
    ]:
        text = await refused(alice, tool, **arguments)
        assert_in_style(text, field)
        assert "x" * 50 not in text and "0" * 50 not in text, text
    text = await refused(alice, "add_task", title="t", **{huge: 1})
    assert text.startswith("'xxx") and "leave it out" in text and len(text) < 400, text


async def test_several_mistakes_are_each_named_in_one_answer(alice: Client) -> None:
    text = await refused(alice, "add_task", title=5, priority="critical", colour="red")
    assert_in_style(text, "title")
    assert "priority: 'critical' is not one of its values. Fix:" in text
    assert "colour: add_task has no such argument. Fix:" in text


async def test_an_unknown_tool_is_refused_in_the_one_style(alice: Client) -> None:
    text = await refused(alice, "get_taks", task_id=TASK)
    assert_in_style(text, "name")
    assert "did you mean get_task?" in text


async def test_an_unexpected_failure_is_masked_in_the_one_style_and_logged_with_its_traceback(
    alice: Client,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(user: str, task_id: str) -> None:
        raise RuntimeError("the disk is on fire at /secret/path")

    monkeypatch.setattr(runtime.service, "get", broken)
    with caplog.at_level(logging.ERROR, logger="dueflow.mcp"):
        text = await refused(alice, "get_task", task_id=TASK)
    assert_in_style(text, "internal error")
    assert "Fix: retry" in text and "secret" not in text and "fire" not in text
    reference = re.search(r"reference (\w+)", text)
    assert reference is not None, text
    [record] = [r for r in caplog.records if r.name == "dueflow.mcp"]
    assert reference[1] in record.getMessage() and "get_task" in record.getMessage()
    assert record.exc_info is not None and "on fire" in str(record.exc_info[1])


async def test_a_failure_no_tool_caught_is_masked_in_the_one_style_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = FastMCP("bare", middleware=[Refusals()], mask_error_details=True)

    @server.tool
    async def fragile(n: int) -> ToolResult:
        """A tool without domain_errors: fastmcp masks what it raises."""
        if n:
            raise KeyError("inner detail")
        return answer("fine", {"n": n})

    async with Client(server) as client:
        assert_in_style(await refused(client, "fragile", n="one"), "n")
        with caplog.at_level(logging.ERROR, logger="dueflow.mcp"):
            text = await refused(client, "fragile", n=1)
    assert_in_style(text, "internal error")
    assert "inner detail" not in text
    assert any(r.exc_info and isinstance(r.exc_info[1], KeyError) for r in caplog.records)


HUGE = "y" * 100_000


@pytest.mark.parametrize(
    ("tool", "arguments", "field"),
    [
        ("get_task", {"task_id": HUGE}, "task_id"),
        ("task_history", {"task_id": HUGE}, "task_id"),
        ("add_task", {"title": "t", "timezone": HUGE}, "timezone"),
        ("add_task", {"title": "t", "due": "2026-01-01" + HUGE}, "due"),
        ("add_task", {"title": "t", "priority": HUGE}, "priority"),
        (
            "add_task",
            {"title": "t", "due": "2026-12-01", "recurrence": HUGE[:15_000]},
            "recurrence",
        ),
        ("list_tasks", {"sort": [HUGE]}, "sort"),
        ("list_tasks", {"sort": ["due"] * 100_000}, "sort"),
        ("list_tasks", {"priority": ["low"] * 100_000}, "priority"),
        ("list_tasks", {"due_before": HUGE}, "due_before"),
        ("list_reminders", {"within": HUGE}, "within"),
        ("snooze_reminder", {"task_id": "0123456789abcdef", "until": HUGE}, "until"),
    ],
)
async def test_a_domain_refusal_of_a_huge_value_quotes_only_its_start(
    alice: Client, runtime: Runtime, tool: str, arguments: dict[str, Any], field: str
) -> None:
    before = await written(runtime)
    text = await refused(alice, tool, **arguments)
    assert_in_style(text, field)
    assert len(text) < 500, text[:300]
    assert await written(runtime) == before
