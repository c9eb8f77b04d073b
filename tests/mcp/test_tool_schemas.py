"""Every tool's schemas, as a client lists them: portable across clients, and true of the
answers the tools give (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from fastmcp import Client
from jsonschema import FormatChecker
from jsonschema.validators import validator_for

from dueflow.bootstrap import Runtime
from tests.support.tools import add, call

# what MCP Inspector's schema lint counts as constraining a value (a schema with none of these
# accepts anything)
CONSTRAINING = {
    *("type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum"),
    *("exclusiveMinimum", "maxLength", "minLength", "pattern", "format", "contentMediaType"),
    *("contentEncoding", "contentSchema", "maxItems", "minItems", "uniqueItems", "maxContains"),
    *("minContains", "maxProperties", "minProperties", "required", "dependentRequired"),
    *("allOf", "anyOf", "oneOf", "not", "items", "prefixItems", "contains", "additionalItems"),
    *("unevaluatedItems", "properties", "patternProperties", "additionalProperties"),
    *("unevaluatedProperties", "propertyNames", "dependentSchemas", "dependencies", "$ref"),
}
SUBSCHEMA = ("items", "contains", "not", "propertyNames", "additionalProperties")
SUBSCHEMAS = ("allOf", "anyOf", "oneOf", "prefixItems")
SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
# update_task's arguments that an explicit null clears: the only nullable arguments
CLEARABLE = {
    ("update_task", name)
    for name in (
        "description",
        "due",
        "timezone",
        "priority",
        "tags",
        "reminders",
        "recurrence",
        "recurrence_anchor",
    )
}


def nodes(schema: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every schema in `schema` (itself included) with its path."""
    yield path, schema
    if not isinstance(schema, dict):
        return
    for key in SUBSCHEMA:
        if isinstance(schema.get(key), dict):
            yield from nodes(schema[key], f"{path}.{key}")
    for key in SUBSCHEMAS:
        for i, sub in enumerate(schema.get(key, [])):
            yield from nodes(sub, f"{path}.{key}[{i}]")
    for key in SUBSCHEMA_MAPS:
        for name, sub in schema.get(key, {}).items():
            yield from nodes(sub, f"{path}.{key}.{name}")


def unportable(schema: dict[str, Any], nullable_allowed: set[str]) -> list[str]:
    """What in `schema` some client cannot read, or reads as something else."""
    found = []
    for path, node in nodes(schema):
        if not isinstance(node, dict):
            found.append(f"{path}: a bare {node!r} where a schema belongs")
            continue
        if isinstance(node.get("type"), list):
            found.append(f"{path}: type is a list {node['type']}")
        if not CONSTRAINING & set(node) and not path.endswith(".not"):
            found.append(f"{path}: constrains nothing")
        if "$ref" in node or "$defs" in node:
            found.append(f"{path}: not inlined")
        options = node.get("anyOf", [])
        if {"type": "null"} in options:
            name = path.rsplit(".", 1)[-1]
            if nullable_allowed and name not in nullable_allowed:
                found.append(f"{path}: nullable, though leaving it out says the same")
            if set(node) - {"anyOf", "description", "default"}:
                found.append(f"{path}: a nullable value with keywords beside its branches")
        elif node.get("type") == "null" and not path.endswith("]"):
            found.append(f"{path}: null outside an anyOf branch")
    return found


async def test_every_schema_of_every_tool_is_portable(alice: Client) -> None:
    tools = await alice.list_tools()
    assert len(tools) == 18
    problems = []
    for tool in tools:
        clearable = {name for owner, name in CLEARABLE if owner == tool.name}
        inputs = unportable(tool.input_schema, clearable or {"-"})
        outputs = unportable(tool.output_schema or {}, set())
        problems += [f"{tool.name} inputSchema{p}" for p in inputs]
        problems += [f"{tool.name} outputSchema{p}" for p in outputs]
    assert problems == []


async def test_arguments_publish_the_domains_limits(alice: Client) -> None:
    tools = {tool.name: tool for tool in await alice.list_tools()}
    add_task = tools["add_task"].input_schema["properties"]
    assert add_task["title"]["maxLength"] == 500 and add_task["title"]["minLength"] == 1
    assert add_task["description"]["maxLength"] == 10_000
    assert add_task["tags"]["maxItems"] == 50 and add_task["tags"]["items"]["maxLength"] == 64
    assert add_task["reminders"]["maxItems"] == 20
    assert add_task["priority"]["enum"] == ["none", "low", "medium", "high", "urgent"]
    assert add_task["due"]["type"] == "string"  # left out for no due: no null branch
    tags = tools["update_task"].input_schema["properties"]["tags"]
    assert tags["anyOf"][0]["maxItems"] == 50 and tags["anyOf"][1] == {"type": "null"}


def _moment(text: object) -> bool:
    """RFC 3339 date-time: a date, a time and an offset (or Z)."""
    if not isinstance(text, str):
        return True
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return "T" in text and parsed.tzinfo is not None


def _date(text: object) -> bool:
    if not isinstance(text, str):
        return True
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


FORMATS = FormatChecker(formats=())
FORMATS.checks("date-time")(_moment)
FORMATS.checks("date")(_date)


async def test_every_answer_validates_against_its_tools_output_schema_formats_included(
    alice: Client, runtime: Runtime
) -> None:
    schemas = {tool.name: tool.output_schema for tool in await alice.list_tools()}
    answers: dict[str, list[dict[str, Any]]] = {name: [] for name in schemas}

    async def answered(tool: str, **arguments: Any) -> dict[str, Any]:
        document = await call(alice, tool, **arguments)
        answers[tool].append(document)
        return document

    timed = (
        await answered(
            "add_task",
            title="Call Bob",
            due="2026-11-23T12:00",
            reminders=["PT15M", "2026-11-23T11:00:00Z"],
            tags=["calls"],
            priority="high",
        )
    )["task"]
    recurring = (
        await answered(
            "add_task", title="Stand-up", due="2026-11-24T09:00", recurrence="FREQ=DAILY;COUNT=3"
        )
    )["task"]
    all_day = (await answered("add_task", title="Rent", due="2026-12-01"))["task"]
    undated = (await answered("add_task", title="Someday"))["task"]
    await answered("update_task", task_id=undated["id"], description="later", tags=None)
    await answered("update_task", task_id=all_day["id"], due=None)
    await answered("get_task", task_id=timed["id"])
    await answered("list_tasks", limit=2)
    await answered("list_tasks", status="all")
    await answered("list_tasks", sort=["due", "priority"])
    await answered("agenda")
    await answered("add_task", tasks=[{"title": "One", "due": "2026-11-20"}, {"title": "Two"}])
    await answered("complete_task", task_ids=[all_day["id"]])
    await answered("skip_occurrence", task_id=recurring["id"])
    await answered("complete_task", task_id=recurring["id"])
    await answered("complete_task", task_id=undated["id"])
    await answered("reopen_task", task_id=undated["id"])
    await answered("delete_task", task_id=undated["id"])
    await answered("restore_task", task_id=undated["id"])
    await answered("preview_recurrence", recurrence="FREQ=WEEKLY;BYDAY=MO", due="2026-12-07T09:00")
    await answered("preview_recurrence", recurrence="FREQ=MONTHLY", due="2026-12-31")
    await runtime.relay.drain()
    await answered("list_reminders", within="P30D")
    await answered("snooze_reminder", task_id=timed["id"], duration="PT30M")
    await answered("dismiss_reminder", task_id=timed["id"])
    await runtime.relay.drain()
    await answered("task_history", limit=200)
    await answered("task_history", task_id=recurring["id"])
    exported = await answered("export_tasks_ics", status="all")
    await answered("import_tasks_ics", ics=exported["ics"].replace("Rent", "Rent!"))
    feed = (await answered("calendar_feeds", action="create", name="phone"))["feeds"][0]
    await answered("calendar_feeds", action="revoke", feed_id=feed["feed_id"])
    await answered("calendar_feeds", action="list")

    failures = []
    for tool, documents in answers.items():
        assert documents, f"{tool} was not called"
        schema = schemas[tool]
        assert schema is not None
        validator = validator_for(schema)(schema, format_checker=FORMATS)
        failures += [
            f"{tool}: {error.json_path}: {error.message}"
            for document in documents
            for error in validator.iter_errors(document)
        ]
    assert failures == []


async def test_a_null_in_an_answer_stays_a_null(alice: Client) -> None:
    task = await add(alice, "No due")
    assert task["due"] is None and task["recurrence"] is None and task["completed_at"] is None
    page = await call(alice, "list_tasks")
    assert page["next_cursor"] is None and page["tasks"][0]["due"] is None
