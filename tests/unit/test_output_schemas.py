"""The tools' output schemas: inlined, portable, exactly as strict as the models."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema.validators import validator_for

from mcp_server.schemas import TaskPage, TaskResult, output_schema

SUMMARY: dict[str, Any] = {
    "id": "11ba81d0-8a69-44b1-9255-2a7391ee9d15",
    "title": "Call the supplier",
    "status": "open",
    "priority": "high",
    "tags": ["calls"],
    "due": "2026-12-02T17:00:00+01:00",
    "overdue": False,
    "urgency": 13.0,
    "recurrence": None,
    "version": 1,
}


def keywords(node: Any, names: bool = False) -> set[str]:
    """Every schema keyword used anywhere in `node` (property names excluded)."""
    if isinstance(node, list):
        return set().union(*(keywords(item) for item in node))
    if not isinstance(node, dict):
        return set()
    found = set() if names else set(node)
    for key, value in node.items():
        found |= keywords(value, names=key == "properties" and not names)
    return found


def errors(schema: dict[str, Any], document: Any) -> list[str]:
    return [error.message for error in validator_for(schema)(schema).iter_errors(document)]


@pytest.mark.parametrize("model", [TaskPage, TaskResult])
def test_output_schemas_are_inlined_and_carry_no_derived_titles_defaults_or_descriptions(
    model: Any,
) -> None:
    schema = output_schema(model)
    assert not {"title", "$ref", "$defs", "default", "description"} & keywords(schema)


def test_a_nullable_value_is_a_typed_branch_or_null_with_its_keywords_in_the_branch() -> None:
    task = output_schema(TaskResult)["properties"]["task"]["properties"]
    assert task["completed_at"] == {
        "anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]
    }
    assert task["status"] == {
        "type": "string",
        "enum": ["open", "completed", "deleted"],
    }


def test_a_property_called_title_is_kept() -> None:
    summary = output_schema(TaskPage)["properties"]["tasks"]["items"]
    assert summary["properties"]["title"] == {"type": "string"}
    assert "title" in summary["required"]


def test_a_listing_page_validates_and_a_wrong_one_does_not() -> None:
    schema = output_schema(TaskPage)
    page = {"order": ["created:asc"], "next_cursor": None}
    assert errors(schema, {"tasks": [SUMMARY], **page}) == []
    assert errors(schema, {"tasks": [SUMMARY | {"due": None}], **page, "next_cursor": "x"}) == []
    missing = {key: value for key, value in SUMMARY.items() if key != "version"}
    assert errors(schema, {"tasks": [missing], **page}) == ["'version' is a required property"]
    assert errors(schema, {"tasks": [SUMMARY | {"due": 5}], **page}) == [
        "5 is not valid under any of the given schemas"
    ]
    assert errors(schema, {"tasks": [SUMMARY | {"status": "done"}], **page}) == [
        "'done' is not one of ['open', 'completed', 'deleted']"
    ]
    assert errors(schema, {"tasks": [SUMMARY], "order": []}) == [
        "'next_cursor' is a required property"
    ]
