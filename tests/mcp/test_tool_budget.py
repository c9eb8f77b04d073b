"""What the tool list costs an agent: every conversation pays for it. Measured through a real
MCP client's tools/list, as compact JSON (what the wire carries, give or take whitespace).

The limits are the issue's (#19); the targets leave room for the tools other work will add
(iCalendar import/export and feeds). Over either, the failure lists each tool's bytes, largest
first, so the next person sees what to trim."""

from __future__ import annotations

import json
import re
from typing import Any

from fastmcp import Client

MODEL_FACING_LIMIT = 10_000  # each tool's name + description + inputSchema, summed
TOOLS_LIST_LIMIT = 24_000  # the whole tools/list result
# room kept for the next tool: with the three iCalendar tools the list is at 8,956 / 21,634 B,
# so a new tool must trim an old one (add_task, update_task and list_tasks are the largest)
MODEL_FACING_TARGET = 9_500
TOOLS_LIST_TARGET = 23_000


def size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def model_facing(tool: dict[str, Any]) -> int:
    """The bytes of a tool a model reads: its name, description and input schema."""
    return size({k: tool.get(k) for k in ("name", "description", "inputSchema")})


def report(tools: list[dict[str, Any]]) -> str:
    rows = sorted(tools, key=size, reverse=True)
    lines = [
        f"{t['name']:<20} model-facing {model_facing(t):>5}"
        f"  outputSchema {size(t.get('outputSchema', {})):>5}  whole {size(t):>5}"
        for t in rows
    ]
    return "\n".join(lines)


async def listed(client: Client) -> dict[str, Any]:
    result = await client.list_tools_mcp()
    document: dict[str, Any] = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    return document


async def test_the_tools_fit_the_byte_budget_with_room_for_more(alice: Client) -> None:
    document = await listed(alice)
    tools = document["tools"]
    facing, whole = sum(model_facing(t) for t in tools), size(document)
    detail = f"model-facing {facing} B, tools/list {whole} B\n{report(tools)}"
    assert facing <= MODEL_FACING_LIMIT and whole <= TOOLS_LIST_LIMIT, detail
    assert facing <= MODEL_FACING_TARGET and whole <= TOOLS_LIST_TARGET, detail


async def test_no_model_facing_byte_is_spent_on_what_says_nothing(alice: Client) -> None:
    for tool in (await listed(alice))["tools"]:
        assert "\n" not in tool["description"], tool["name"]
        assert "additionalProperties" not in tool["inputSchema"], tool["name"]
        for name, schema in tool["inputSchema"]["properties"].items():
            assert schema.get("default", 0) is not None, (tool["name"], name)


async def test_every_tool_says_when_to_use_it_and_the_mistakes_to_avoid(alice: Client) -> None:
    tools = {t["name"]: t for t in (await listed(alice))["tools"]}
    described = {name: tool["description"] for name, tool in tools.items()}
    assert all(len(text) >= 30 for text in described.values()), described
    # the one or two things agents get wrong, said where they matter
    assert "RRULE the answer shows" in described["add_task"]
    assert '"due": "tomorrow 9am"' in described["add_task"]  # an example call
    assert "expected_version" in described["update_task"]
    assert "skip_occurrence" in described["complete_task"]
    assert "preview_recurrence" not in described["preview_recurrence"]
    assert "unusual" in described["preview_recurrence"]
    assert "agenda" in described["list_tasks"] and "completed_after" in described["list_tasks"]
    due = tools["add_task"]["inputSchema"]["properties"]["due"]["description"]
    assert "2026-12-01" in due and "user's zone" in due
    for name in ("add_task", "update_task", "complete_task", "delete_task"):
        assert "100" in described[name] and "all or none" in described[name], name


async def test_the_instructions_say_what_dueflow_is_today_and_how_to_refer_to_tasks(
    alice: Client,
) -> None:
    text = alice.instructions or ""
    assert "Dueflow keeps the user's tasks" in text
    assert re.search(r"Today is \w+day \d{4}-\d{2}-\d{2}", text), text
    assert "Europe/Berlin" in text
    assert "id an answer or list_tasks gave" in text and "title" in text
    assert "preview_recurrence" in text
    assert len(text.encode()) <= 700
