"""MCP prompts for the common flows: plan my day, weekly review, triage overdue. Each is a user
message that names the tools to call and what to show, dated in the user's zone."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastmcp import FastMCP
from pydantic import Field

from domain.service import TaskService


def register_prompts(mcp: FastMCP, service: TaskService) -> None:
    """Add the prompts to `mcp`; they read today's date in the user's zone from `service`."""

    def today() -> str:
        now = dt.datetime.now(service.user_zone)
        return f"Today is {now:%A %Y-%m-%d}, {now:%H:%M} in {service.default_timezone}."

    @mcp.prompt(title="Plan my day")
    def plan_my_day(
        hours: Annotated[
            str | None, Field(description="Hours the user has for tasks today")
        ] = None,
    ) -> str:
        """Plan today from the agenda: what is overdue, due today and most pressing."""
        time = f" I have about {hours} hours for tasks." if hours else ""
        return (
            f"{today()} Plan my day.{time} Call agenda, then list_tasks with sort ['urgency']"
            " and limit 10 for what else presses. Propose an ordered plan for today (most"
            " pressing first, overdue ones named as such) that fits my time, and ask before"
            " changing anything. For tasks that do not fit, suggest a new due date; when I"
            " agree, move them in one update_task call with tasks=[…] and expected_version."
        )

    @mcp.prompt(title="Weekly review")
    def weekly_review() -> str:
        """Review the past week (done, slipped) and plan the next one."""
        week_ago = (dt.datetime.now(service.user_zone) - dt.timedelta(days=7)).date()
        return (
            f"{today()} Let's do my weekly review. 1) What I finished: list_tasks with status"
            f" 'completed' and completed_after '{week_ago.isoformat()}'. 2) What slipped: the"
            " overdue section of agenda. 3) What is coming: agenda's next 7 days. Summarise each"
            " in a few lines, then ask me which overdue tasks to reschedule, drop or do first;"
            " apply my answers in one call per tool (task_ids / tasks lists)."
        )

    @mcp.prompt(title="Triage overdue tasks")
    def triage_overdue() -> str:
        """Go through overdue tasks one decision each: do today, reschedule, or drop."""
        return (
            f"{today()} Help me triage my overdue tasks. Call list_tasks with overdue true and"
            " sort ['urgency']. Show them as a numbered list (title, how late, priority). For"
            " each, suggest one of: do today, reschedule (give a date), or delete. When I"
            " confirm, apply all decisions at once: update_task with tasks=[…] for new dates,"
            " delete_task with task_ids for the dropped ones. Recurring tasks: skip_occurrence"
            " instead of deleting the series."
        )
