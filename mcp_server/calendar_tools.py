"""The iCalendar tools: export tasks as .ics text, import .ics text, and private calendar feeds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from fastmcp import FastMCP
from fastmcp.server.dependencies import get_access_token
from fastmcp.tools import ToolResult
from pydantic import BaseModel, Field

from domain.adapters.calendar_files import CalendarFiles
from domain.calendar import ImportReport
from domain.calendar_feeds import CalendarFeed, feed_url
from domain.due import iso_utc
from domain.errors import ValidationFailed
from mcp_server.schemas import MOMENT, Omitted, output_schema, published
from mcp_server.tooling import IDEMPOTENT_WRITE, READ, WRITE, answer, correlation, domain_errors


class Exported(BaseModel):
    tasks: int = Field(description="How many tasks the calendar holds")
    ics: str = Field(description="The VCALENDAR text")


class ItemOut(BaseModel):
    uid: str
    title: str
    outcome: str = Field(description="created | updated | unchanged | skipped")
    task_id: str | None
    notes: list[str] = Field(description="What of the item was not imported, and why")


class Imported(BaseModel):
    created: int
    updated: int
    unchanged: int
    skipped: int
    items: list[ItemOut]
    notes: list[str] = Field(description="Calendar-level properties and components not imported")


class FeedOut(BaseModel):
    feed_id: str
    name: str
    events: bool
    state: str = Field(description="live | revoked")
    created_at: str = Field(json_schema_extra=MOMENT)
    url: str | None = Field(description="The subscription URL: shown once, at create")


class Feeds(BaseModel):
    feeds: list[FeedOut]


def register_calendar_tools(
    mcp: FastMCP, user: Callable[[], str], calendar: CalendarFiles, public_url: str | None
) -> None:
    """Add export_tasks_ics, import_tasks_ics and calendar_feeds to `mcp`."""

    @mcp.tool(annotations=READ, output_schema=output_schema(Exported))
    @domain_errors
    async def export_tasks_ics(
        status: Annotated[
            Literal["open", "completed", "all"], Field(description="Which tasks; default all")
        ] = "all",
    ) -> ToolResult:
        """Export your tasks as an iCalendar (.ics) VCALENDAR of VTODOs."""
        text, count = await calendar.export(user(), status)
        return answer(text, Exported(tasks=count, ics=text))

    @mcp.tool(annotations=IDEMPOTENT_WRITE, output_schema=output_schema(Imported))
    @domain_errors
    async def import_tasks_ics(
        ics: Annotated[
            str,
            Field(
                description="iCalendar text; each VTODO becomes a task, matched by UID",
                json_schema_extra=published(maxLength=1_000_000),
            ),
        ],
        events_as_tasks: Annotated[
            bool, Field(description="Import VEVENTs as tasks due at their start")
        ] = False,
    ) -> ToolResult:
        """Import tasks from iCalendar text; repeating it changes nothing, and every part not
        imported is reported per item."""
        report = await calendar.import_text(user(), ics, events_as_tasks, correlation())
        return answer(_import_summary(report), _imported(report))

    @mcp.tool(annotations=WRITE, output_schema=output_schema(Feeds))
    @domain_errors
    async def calendar_feeds(
        action: Annotated[Literal["create", "list", "revoke"], Field(description="What to do")],
        name: Annotated[
            str | Omitted,
            Field(description="create: what the feed is for", json_schema_extra=published()),
        ] = None,
        events: Annotated[
            bool, Field(description="create: tasks as events, for apps that hide VTODOs")
        ] = False,
        feed_id: Annotated[
            str | Omitted, Field(description="revoke: the feed", json_schema_extra=published())
        ] = None,
    ) -> ToolResult:
        """Private calendar subscription URLs of your open tasks: create, list or revoke."""
        who = user()
        if action == "create":
            token = get_access_token()
            token_id = token.claims.get("token_id") if token is not None else None
            feed, secret = await calendar.create_feed(
                who, name or "", events, token_id if isinstance(token_id, str) else None
            )
            url = feed_url(public_url, secret)
            shown = _feed(feed, url)
            return answer(f"Subscribe to {url} (shown only now)", Feeds(feeds=[shown]))
        if action == "revoke":
            if feed_id is None:
                raise ValidationFailed("feed_id", "is missing", "give the id of the feed to revoke")
            revoked = await calendar.feeds.revoke(who, feed_id)
            return answer(f"Revoked feed {revoked.id}", Feeds(feeds=[_feed(revoked)]))
        listed = [_feed(feed) for feed in await calendar.feeds.feeds(who)]
        return answer(f"{len(listed)} calendar feed(s)", Feeds(feeds=listed))


def _feed(feed: CalendarFeed, url: str | None = None) -> FeedOut:
    return FeedOut(
        feed_id=feed.id,
        name=feed.name,
        events=feed.events,
        state="revoked" if feed.revoked_at else "live",
        created_at=iso_utc(feed.created_at),
        url=url,
    )


def _imported(report: ImportReport) -> Imported:
    return Imported(
        created=report.count("created"),
        updated=report.count("updated"),
        unchanged=report.count("unchanged"),
        skipped=report.count("skipped"),
        items=[
            ItemOut(
                uid=item.uid,
                title=item.title,
                outcome=item.outcome,
                task_id=item.task_id,
                notes=list(item.notes),
            )
            for item in report.items
        ],
        notes=list(report.notes),
    )


def _import_summary(report: ImportReport) -> str:
    counts = ", ".join(
        f"{report.count(outcome)} {outcome}"
        for outcome in ("created", "updated", "unchanged", "skipped")
    )
    lines = [f"Imported {len(report.items)} item(s): {counts}"]
    for item in report.items:
        for note in item.notes:
            lines.append(f"- {item.title or item.uid}: {note}")
    lines += [f"- calendar: {note}" for note in report.notes]
    return "\n".join(lines[:51])
