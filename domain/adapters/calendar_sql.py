"""iCalendar in SQL: the UIDs imported per user (a repository of the unit of work) and the
private calendar feeds (domain.calendar_feeds.FeedStore)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.adapters.sql import reading_connection
from domain.adapters.statements import Statements
from domain.adapters.tables import CalendarFeedRow, CalendarLinkRow, TaskRow
from domain.adapters.writes import Write
from domain.calendar_feeds import CalendarFeed, StoredFeed
from domain.calendar_links import CalendarLink, CalendarState, FeedRow
from domain.errors import ConcurrentChange
from domain.model import Status

LINKS = CalendarLinkRow.__table__  # type: ignore[attr-defined]
FEEDS = CalendarFeedRow.__table__  # type: ignore[attr-defined]
L = LINKS.c
T = TaskRow.__table__.c  # type: ignore[attr-defined]
F = FEEDS.c


class SqlCalendarLinks:
    """The calendar_links rows, through the statements of a unit of work (it never commits)."""

    def __init__(self, statements: Statements) -> None:
        self._statements = statements

    async def links(self, user_id: str) -> list[CalendarLink]:
        found = await self._statements.execute(sa.select(LINKS).where(L.user_id == user_id))
        return [_link(row) for row in found.all()]

    async def find(self, user_id: str, uid: str) -> CalendarLink | None:
        found = await self._statements.execute(
            sa.select(LINKS).where(L.user_id == user_id, L.uid == uid)
        )
        row = found.one_or_none()
        return None if row is None else _link(row)

    async def state(self, user_id: str) -> CalendarState:
        tasks = await self._statements.execute(
            sa.select(sa.func.count(), sa.func.sum(T.version), sa.func.max(T.updated_at)).where(
                T.user_id == user_id
            )
        )
        count, versions, last = tuple(tasks.one())
        links = await self._statements.execute(
            sa.select(
                sa.func.count(),
                sa.func.sum(L.sequence),
                sa.func.sum(L.task_version),
                sa.func.max(L.last_modified),
            ).where(L.user_id == user_id)
        )
        linked, sequences, linked_versions, modified = tuple(links.one())
        return CalendarState(
            count,
            int(versions or 0),
            _aware(last),
            (linked, int(sequences or 0), int(linked_versions or 0), _aware(modified)),
        )

    async def feed_rows(self, user_id: str) -> list[FeedRow]:
        found = await self._statements.execute(
            _FEED_ROWS, {"user_id": user_id, "open": Status.OPEN.value}
        )
        rows: list[Any] = list(found.all())
        return [
            FeedRow(
                row.id,
                row.version,
                _moment(row.created_at),
                _moment(row.updated_at),
                row.recurred_to,
            )
            for row in rows
        ]

    async def put(self, user_id: str, link: CalendarLink) -> None:
        values = {
            "task_id": link.task_id,
            "sequence": link.sequence,
            "last_modified": link.last_modified,
            "task_version": link.task_version,
        }
        changed = await self._statements.update(
            _UPDATE_LINK, {**values, "match_user": user_id, "match_uid": link.uid}
        )
        if changed:
            return
        try:
            await self._statements.insert(
                _INSERT_LINK, [{**values, "user_id": user_id, "uid": link.uid}]
            )
        except IntegrityError:
            raise ConcurrentChange() from None


# five columns of the open tasks with a due: a feed's index, read instead of the tasks whole
_FEED_ROWS = sa.select(T.id, T.version, T.created_at, T.updated_at, T.recurred_to).where(
    T.user_id == sa.bindparam("user_id", type_=T.user_id.type),
    T.status == sa.bindparam("open", type_=T.status.type),
    sa.or_(T.due_at.is_not(None), T.due_date.is_not(None)),
)
_INSERT_LINK = Write(sa.insert(LINKS))
_UPDATE_LINK = Write(
    sa.update(LINKS).where(
        L.user_id == sa.bindparam("match_user", type_=L.user_id.type),
        L.uid == sa.bindparam("match_uid", type_=L.uid.type),
    )
)


def _aware(value: Any) -> dt.datetime | None:
    """An aggregate's moment: SQLite answers text or a naive UTC value, PostgreSQL an aware one."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _moment(value: Any) -> dt.datetime:
    moment = _aware(value)
    assert moment is not None
    return moment


def _link(row: Any) -> CalendarLink:
    return CalendarLink(row.uid, row.task_id, row.sequence, row.last_modified, row.task_version)


class SqlFeedStore:
    """The calendar_feeds rows; each call is one short statement."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, stored: StoredFeed) -> None:
        feed = stored.feed
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.insert(FEEDS).values(
                    id=feed.id,
                    user_id=feed.user_id,
                    name=feed.name,
                    salt=stored.salt,
                    digest=stored.digest,
                    events=feed.events,
                    token_id=feed.token_id,
                    created_at=feed.created_at,
                )
            )

    async def find(self, feed_id: str) -> StoredFeed | None:
        async with reading_connection(self._engine) as conn:
            row = (await conn.execute(sa.select(FEEDS).where(F.id == feed_id))).one_or_none()
        return None if row is None else StoredFeed(_feed(row), row.salt, row.digest)

    async def feeds(self, user_id: str) -> list[CalendarFeed]:
        query = sa.select(FEEDS).where(F.user_id == user_id).order_by(F.created_at, F.id)
        async with reading_connection(self._engine) as conn:
            return [_feed(row) for row in (await conn.execute(query)).all()]

    async def revoke(self, user_id: str, feed_id: str, now: dt.datetime) -> CalendarFeed | None:
        mine = (F.id == feed_id, F.user_id == user_id)
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.update(FEEDS).where(*mine, F.revoked_at.is_(None)).values(revoked_at=now)
            )
            row = (await conn.execute(sa.select(FEEDS).where(*mine))).one_or_none()
        return None if row is None else _feed(row)


def _feed(row: Any) -> CalendarFeed:
    return CalendarFeed(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        events=bool(row.events),
        token_id=row.token_id,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )
