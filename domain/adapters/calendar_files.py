"""The iCalendar use cases as the tools, the CLI and the feed route call them: the domain's
exchange and feeds, with the text read and written by the codec off the event loop."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from dataclasses import dataclass
from types import ModuleType

from domain.calendar import CalendarExchange, ImportReport, check_export_status
from domain.calendar_feeds import CalendarFeed, CalendarFeeds
from domain.ports import Clock


@dataclass(frozen=True, slots=True)
class FeedBody:
    """What a feed URL answers: the calendar text, its entity tag and when it last changed."""

    text: str
    etag: str
    last_modified: dt.datetime


class CalendarFiles:
    """Export, import and feeds of one server; every call names the user it acts for."""

    def __init__(
        self,
        exchange: CalendarExchange,
        feeds: CalendarFeeds,
        clock: Clock,
        default_timezone: str,
    ) -> None:
        self.exchange = exchange
        self.feeds = feeds
        self._clock = clock
        self._default_timezone = default_timezone

    async def export(self, user_id: str, status: str = "all") -> tuple[str, int]:
        """The user's tasks of `status` as a VCALENDAR, and how many tasks it holds."""
        check_export_status(status)
        tasks = await self.exchange.exported(user_id, status)
        text = await asyncio.to_thread(_codec().render, tasks, self._clock.now())
        return text, len(tasks)

    async def import_text(
        self,
        user_id: str,
        text: str,
        events_as_tasks: bool = False,
        correlation_id: str | None = None,
    ) -> ImportReport:
        """Import the VTODOs of `text` (and its VEVENTs, if asked) as the user's tasks."""
        read = _codec().parse
        parsed = await asyncio.to_thread(read, text, self._default_timezone, events_as_tasks)
        items = await self.exchange.import_items(user_id, parsed.items, correlation_id)
        return ImportReport([*items, *parsed.refused], tuple(parsed.notes))

    async def feed(self, secret: str) -> FeedBody | None:
        """The calendar a live feed's secret answers; None for any other text."""
        feed = await self.feeds.verify(secret)
        if feed is None:
            return None
        return await self._body(feed)

    async def _body(self, feed: CalendarFeed) -> FeedBody:
        tasks, last = await self.exchange.feed_tasks(feed.user_id)
        name = f"Dueflow: {feed.name}" if feed.name else "Dueflow"
        render = _codec().render
        text = await asyncio.to_thread(render, tasks, None, events=feed.events, name=name)
        digest = hashlib.sha256(text.encode()).hexdigest()[:32]
        changed = max(last or feed.created_at, feed.created_at).replace(microsecond=0)
        return FeedBody(text, f'"{digest}"', changed)


def _codec() -> ModuleType:
    """The codec, loaded at the first calendar read or written: it imports the icalendar
    library (about 50 ms), which a server that never exchanges a calendar need not pay."""
    from domain.adapters import icalendar_codec

    return icalendar_codec
