"""The iCalendar use cases as the tools, the CLI and the feed route call them: the domain's
exchange and feeds, with the text read and written by the codec off the event loop."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from domain.adapters.calendar_renders import FeedRenderCache
from domain.calendar import CalendarExchange, ImportReport, check_export_status
from domain.calendar_feeds import CalendarFeed, CalendarFeeds
from domain.model import Task
from domain.ports import Clock

if TYPE_CHECKING:
    from domain.adapters.icalendar_codec import Rendered


@dataclass(frozen=True, slots=True)
class FeedVersion:
    """A live feed as it stands: its entity tag and when it last changed, known before its text
    is read or written (a conditional GET that still matches needs neither)."""

    feed: CalendarFeed
    etag: str
    last_modified: dt.datetime


log = logging.getLogger(__name__)
FEEDS_KEPT = 64  # feed texts a process keeps, newest used last


class CalendarFiles:
    """Export, import and feeds of one server; every call names the user it acts for."""

    def __init__(
        self,
        exchange: CalendarExchange,
        feeds: CalendarFeeds,
        clock: Clock,
        default_timezone: str,
        renders: FeedRenderCache,
    ) -> None:
        self.exchange = exchange
        self.renders = renders
        self.feeds = feeds
        self._clock = clock
        self._default_timezone = default_timezone
        self._texts: OrderedDict[str, str] = OrderedDict()  # feed texts by entity tag
        self._rendered: Rendered | None = None  # VTIMEZONEs, made at the first feed
        self._warming: set[asyncio.Task[None]] = set()

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

    async def create_feed(
        self, user_id: str, name: str, events: bool, token_id: str | None = None
    ) -> tuple[CalendarFeed, str]:
        """A new feed and its secret. Its components are rendered and kept in the background,
        so the first request a calendar app makes reads them instead of rendering every task."""
        feed, secret = await self.feeds.create(user_id, name, events, token_id)
        warming = asyncio.create_task(self._warm(user_id, events))
        self._warming.add(warming)
        warming.add_done_callback(self._warming.discard)
        return feed, secret

    async def _warm(self, user_id: str, events: bool) -> None:
        async def read(task_ids: Sequence[str]) -> list[Task]:
            return await self.exchange.tasks(user_id, task_ids)

        try:
            index = await self.exchange.feed_index(user_id)
            await self.renders.items(user_id, events, index, read)
        except Exception as exc:  # a cache fill: the first request renders what is missing
            log.warning("a new feed's components not rendered ahead (%s)", type(exc).__name__)

    async def aclose(self) -> None:
        """Wait for the feeds being rendered ahead and the components being written."""
        if self._warming:
            await asyncio.gather(*self._warming, return_exceptions=True)
        await self.renders.aclose()

    async def feed(self, secret: str) -> FeedVersion | None:
        """The version of the live feed whose secret `secret` is; None for any other text."""
        feed = await self.feeds.verify(secret)
        if feed is None:
            return None
        state = await self.exchange.state(feed.user_id)
        validator = repr((feed.id, feed.name, feed.events, state)).encode()
        etag = f'"{hashlib.sha256(validator).hexdigest()[:32]}"'
        changed = max(state.last_change or feed.created_at, feed.created_at)
        return FeedVersion(feed, etag, changed.replace(microsecond=0))

    async def feed_text(self, version: FeedVersion) -> str:
        """The text of `version`: kept from an earlier request while nothing changed, else
        assembled from the feed render cache, which renders only the tasks that changed."""
        kept = self._texts.get(version.etag)
        if kept is not None:
            self._texts.move_to_end(version.etag)
            return kept
        feed = version.feed
        index = await self.exchange.feed_index(feed.user_id)

        async def read(task_ids: Sequence[str]) -> list[Task]:
            return await self.exchange.tasks(feed.user_id, task_ids)

        items = await self.renders.items(feed.user_id, feed.events, index, read)
        name = f"Dueflow: {feed.name}" if feed.name else "Dueflow"
        codec = _codec()
        self._rendered = self._rendered or codec.Rendered()
        text: str = codec.assemble(items, name=name, rendered=self._rendered)
        self._texts[version.etag] = text
        if len(self._texts) > FEEDS_KEPT:
            self._texts.popitem(last=False)
        return text


def _codec() -> ModuleType:
    """The codec, loaded at the first calendar read or written: it imports the icalendar
    library (about 50 ms), which a server that never exchanges a calendar need not pay."""
    from domain.adapters import icalendar_codec

    return icalendar_codec
