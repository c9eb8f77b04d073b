"""Private calendar feeds: an unguessable URL per feed that calendar apps subscribe to.

A feed's secret reads `dfc_<id>_<secret>` and is the last part of its URL
(`/calendar/<secret>.ics`). As with personal tokens (domain.access), the id finds the row and
only a salted SHA-256 of the 192-bit secret is kept; the URL is shown once. A feed made by a
call that came with a personal token records that token, and dies with it: a revoked or
expired token's feeds answer nothing, as revoked feeds do.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Protocol

from domain.access import TokenStore
from domain.errors import NotFound, ValidationFailed, echo
from domain.ports import Clock
from domain.salted import matches, new_id, new_secret
from domain.text import check_text

PREFIX = "dfc_"
MAX_NAME = 100
MAX_FEEDS = 20  # live feeds per user
PATH = "/calendar/{secret}.ics"
_TEXT = re.compile(r"dfc_([0-9a-f]{16})_([0-9a-f]{48})")


@dataclass(frozen=True, slots=True, kw_only=True)
class CalendarFeed:
    """A feed as its user sees it (never its secret)."""

    id: str
    user_id: str
    name: str
    events: bool  # tasks also as VEVENTs, for calendar apps that show no VTODO
    token_id: str | None
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class StoredFeed:
    feed: CalendarFeed
    salt: str
    digest: str


class FeedStore(Protocol):
    async def add(self, stored: StoredFeed) -> None: ...

    async def find(self, feed_id: str) -> StoredFeed | None: ...

    async def feeds(self, user_id: str) -> list[CalendarFeed]: ...

    async def revoke(self, user_id: str, feed_id: str, now: dt.datetime) -> CalendarFeed | None:
        """Mark the user's feed revoked (once); None if the user has no such feed."""
        ...


def feed_url(public_url: str | None, secret: str) -> str:
    """The address of a feed: under `public_url` when the server has one, else its path."""
    path = PATH.format(secret=secret)
    return public_url.rstrip("/") + path if public_url else path


class CalendarFeeds:
    """Creates, lists, revokes and checks a user's calendar feeds."""

    def __init__(self, store: FeedStore, tokens: TokenStore, clock: Clock) -> None:
        self._store = store
        self._tokens = tokens
        self._clock = clock

    async def create(
        self, user_id: str, name: str = "", events: bool = False, token_id: str | None = None
    ) -> tuple[CalendarFeed, str]:
        """A new feed and its secret, which is shown this once and kept nowhere."""
        name = check_text(name, "name").strip()
        if len(name) > MAX_NAME:
            raise ValidationFailed("name", f"has {len(name)} characters", f"keep it to {MAX_NAME}")
        live = [feed for feed in await self._store.feeds(user_id) if feed.revoked_at is None]
        if len(live) >= MAX_FEEDS:
            raise ValidationFailed(
                "calendar_feeds",
                f"you have {len(live)} live feeds",
                f"revoke one first: at most {MAX_FEEDS}",
            )
        feed = CalendarFeed(
            id=new_id(),
            user_id=user_id,
            name=name,
            events=events,
            token_id=token_id,
            created_at=self._clock.now(),
        )
        made = new_secret()
        await self._store.add(StoredFeed(feed, made.salt, made.digest))
        return feed, f"{PREFIX}{feed.id}_{made.secret}"

    async def feeds(self, user_id: str) -> list[CalendarFeed]:
        return await self._store.feeds(user_id)

    async def revoke(self, user_id: str, feed_id: str) -> CalendarFeed:
        feed_id = check_text(feed_id, "feed_id")
        feed = await self._store.revoke(user_id, feed_id, self._clock.now())
        if feed is None:
            raise NotFound(
                f"feed_id: no calendar feed {echo(feed_id)} of yours. Fix: use an id from"
                " calendar_feeds with action list."
            )
        return feed

    async def verify(self, text: str) -> CalendarFeed | None:
        """The live feed whose secret `text` is, or None (unknown, wrong, revoked, or made under
        a token that is no longer active)."""
        match = _TEXT.fullmatch(text)
        if match is None:
            return None
        stored = await self._store.find(match[1])
        if stored is None or not matches(match[2], stored.salt, stored.digest):
            return None
        feed = stored.feed
        if feed.revoked_at is not None:
            return None
        if feed.token_id is not None:
            token = await self._tokens.find(feed.token_id)
            if token is None or token.token.state(self._clock.now()) != "active":
                return None
        return feed
