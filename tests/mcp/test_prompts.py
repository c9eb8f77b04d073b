"""The prompts for the common flows, through a real MCP client: listed with their arguments, and
each one a user message that names the tools to call, dated in the user's zone."""

from __future__ import annotations

import re

from fastmcp import Client

PROMPTS = {"plan_my_day", "weekly_review", "triage_overdue"}


async def test_the_prompts_are_listed_with_titles_and_arguments(alice: Client) -> None:
    prompts = {prompt.name: prompt for prompt in await alice.list_prompts()}
    assert set(prompts) == PROMPTS
    assert all(prompt.description and prompt.title for prompt in prompts.values())
    hours = prompts["plan_my_day"].arguments or []
    assert [(a.name, a.required) for a in hours] == [("hours", False)]


async def test_each_prompt_is_a_dated_user_message_naming_the_tools_to_call(alice: Client) -> None:
    expected = {
        "plan_my_day": ("agenda", "list_tasks", "update_task"),
        "weekly_review": ("completed_after", "agenda"),
        "triage_overdue": ("overdue true", "delete_task", "skip_occurrence"),
    }
    for name, tools in expected.items():
        result = await alice.get_prompt(name)
        (message,) = result.messages
        text = message.content.text  # type: ignore[union-attr]
        assert message.role == "user"
        assert re.match(r"Today is \w+day \d{4}-\d{2}-\d{2}, \d\d:\d\d in Europe/Berlin\.", text)
        assert all(tool in text for tool in tools), (name, text)


async def test_plan_my_day_takes_the_hours_the_user_has(alice: Client) -> None:
    result = await alice.get_prompt("plan_my_day", {"hours": "3"})
    assert "about 3 hours" in result.messages[0].content.text  # type: ignore[union-attr]
