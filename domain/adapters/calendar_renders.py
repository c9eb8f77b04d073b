"""The feed render cache: each open task's component as a calendar feed shows it, kept so that a
feed after a change renders only the tasks that changed.

An entry is kept per user, task and form (VTODO, or VEVENT for an events feed) with the
fingerprint of everything its text depends on: the task's version, its calendar stamp (UID,
SEQUENCE, LAST-MODIFIED, RELATED-TO) and the codec's revision. It lives in this process (bounded)
and in `calendar_renders`, so it survives restarts and is shared by replicas. The calendar
consumer (workers.calendar) writes an entry when a task of a user with a live feed changes, and
drops it when the task leaves the feed; a feed request renders a miss (an entry absent or of
another fingerprint) and writes it back. Every component is still written by the icalendar
library (domain.adapters.icalendar_codec); only its text is kept.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.adapters.sql import reading_connection
from domain.adapters.tables import CalendarFeedRow, CalendarLinkRow, CalendarRenderRow, TaskRow
from domain.calendar import Stamp, feed_stamp
from domain.calendar_links import CalendarLink, FeedRow
from domain.model import Status, Task

log = logging.getLogger(__name__)
RENDERS = CalendarRenderRow.__table__  # type: ignore[attr-defined]
R = RENDERS.c
FEEDS = CalendarFeedRow.__table__.c  # type: ignore[attr-defined]
LINKS = CalendarLinkRow.__table__.c  # type: ignore[attr-defined]
TASKS = TaskRow.__table__.c  # type: ignore[attr-defined]
# moves whenever the codec writes a component differently: older entries then miss
RENDER_REVISION = "1"
KEPT = 20_000  # entries a process keeps, least recently used out
_CHUNK = 500  # task ids per IN (...) list


@dataclass(frozen=True, slots=True)
class RenderedItem:
    """One component as the library wrote it, with what the calendar around it needs: the
    TZIDs it names and the first and last day its zones' VTIMEZONEs must cover."""

    text: bytes
    tzids: frozenset[str]
    first: dt.date | None
    last: dt.date | None


def form_of(events: bool) -> str:
    return "vevent" if events else "vtodo"


def fingerprint(version: int, stamp: Stamp, events: bool) -> str:
    """What a kept component's text depends on besides the task's version, hashed."""
    modified = stamp.last_modified.astimezone(dt.UTC).isoformat() if stamp.last_modified else ""
    parts = (RENDER_REVISION, form_of(events), str(version), stamp.uid, str(stamp.sequence))
    key = "\x1f".join((*parts, modified, stamp.next_uid or ""))
    return hashlib.sha256(key.encode()).hexdigest()


TaskReader = Callable[[Sequence[str]], Awaitable[list[Task]]]


class FeedRenderCache:
    """The components of a feed: kept ones that still show their task, from this process or
    the database, and the rest rendered by the codec and kept."""

    def __init__(self, engine: AsyncEngine, kept: int = KEPT) -> None:
        self._engine = engine
        self._kept = kept
        # by (user, task, form): the (version, stamp) it shows, and the component
        self._memo: OrderedDict[tuple[str, str, str], tuple[object, RenderedItem]] = OrderedDict()
        self._saving: set[asyncio.Task[None]] = set()

    async def items(
        self,
        user_id: str,
        events: bool,
        index: Sequence[tuple[FeedRow, Stamp]],
        read: TaskReader,
    ) -> list[RenderedItem]:
        """The component of each task of `index` (a feed's FeedRows, stamped), in its order;
        `read` reads the tasks of the ids given, for the ones rendered again."""
        form = form_of(events)
        found: dict[str, RenderedItem] = {}
        missing: dict[str, tuple[FeedRow, Stamp]] = {}
        for row, stamp in index:
            key = (user_id, row.id, form)
            kept = self._memo.get(key)
            if kept is not None and kept[0] == (row.version, stamp):
                self._memo.move_to_end(key)
                found[row.id] = kept[1]
            else:
                missing[row.id] = (row, stamp)
        if missing:
            async with reading_connection(self._engine) as conn:
                stored = await load(conn, user_id, form, list(missing))
            for task_id, (print_, item) in stored.items():
                row, stamp = missing[task_id]
                if fingerprint(row.version, stamp, events) == print_:
                    found[task_id] = self._keep(user_id, form, row, stamp, item)
                    del missing[task_id]
        if missing:
            found.update(await self._render(user_id, events, missing, read))
        return [found[row.id] for row, _stamp in index if row.id in found]

    async def _render(
        self,
        user_id: str,
        events: bool,
        missing: dict[str, tuple[FeedRow, Stamp]],
        read: TaskReader,
    ) -> dict[str, RenderedItem]:
        tasks = await read(list(missing))
        pairs = [(task, missing[task.id][1]) for task in tasks]
        rendered = await asyncio.to_thread(_render_all, pairs, events)
        form = form_of(events)
        made: dict[str, RenderedItem] = {}
        keep: list[tuple[str, str, RenderedItem]] = []
        for task, item in zip(tasks, rendered, strict=True):
            row, stamp = missing[task.id]
            made[task.id] = item
            if task.version == row.version:  # else it changed meanwhile: shown, not kept
                self._keep(user_id, form, row, stamp, item)
                keep.append((task.id, fingerprint(row.version, stamp, events), item))
        if keep:
            # written after the answer: on SQLite the write waits for the one write lock
            saving = asyncio.create_task(self._save(user_id, form, keep))
            self._saving.add(saving)
            saving.add_done_callback(self._saving.discard)
        return made

    async def _save(
        self, user_id: str, form: str, keep: list[tuple[str, str, RenderedItem]]
    ) -> None:
        try:
            async with self._engine.begin() as conn:
                await save(conn, user_id, form, keep)
        except IntegrityError:
            pass  # another replica kept the same components meanwhile
        except Exception as exc:  # a cache write: the next miss renders again
            log.warning("calendar feed components not kept (%s)", type(exc).__name__)

    async def aclose(self) -> None:
        """Wait for the components being written."""
        if self._saving:
            await asyncio.gather(*self._saving, return_exceptions=True)

    def _keep(
        self, user_id: str, form: str, row: FeedRow, stamp: Stamp, item: RenderedItem
    ) -> RenderedItem:
        key = (user_id, row.id, form)
        self._memo[key] = ((row.version, stamp), item)
        self._memo.move_to_end(key)
        if len(self._memo) > self._kept:
            self._memo.popitem(last=False)
        return item


def _render_all(pairs: Sequence[tuple[Task, Stamp]], events: bool) -> list[RenderedItem]:
    from domain.adapters.icalendar_codec import render_item  # loads the library when needed

    return [render_item(task, stamp, None, events) for task, stamp in pairs]


async def refresh(
    conn: AsyncConnection, task: Task | None, user_id: str, task_id: str, forms: set[str]
) -> None:
    """Keep the feed components of a task that just changed (`task`, as it now stands; None if
    it is gone) in each of `forms`, those its user's live feeds show; drop them once it leaves
    the feeds."""
    await conn.execute(sa.delete(RENDERS).where(R.user_id == user_id, R.task_id == task_id))
    if not forms or task is None or task.status is not Status.OPEN or task.due is None:
        return
    stamp = feed_stamp(task, *await _links_of(conn, task))
    keep = await asyncio.to_thread(_render_forms, task, stamp, forms)
    for form, item in keep.items():
        print_ = fingerprint(task.version, stamp, form == "vevent")
        await save(conn, user_id, form, [(task.id, print_, item)], replace=False)


def _render_forms(task: Task, stamp: Stamp, forms: set[str]) -> dict[str, RenderedItem]:
    from domain.adapters.icalendar_codec import render_item

    return {form: render_item(task, stamp, None, form == "vevent") for form in sorted(forms)}


async def live_forms(conn: AsyncConnection, user_ids: Sequence[str]) -> dict[str, set[str]]:
    """The forms (vtodo, vevent) each user's live feeds show, in one query; a user without a
    live feed is absent."""
    found = await conn.execute(
        sa.select(FEEDS.user_id, FEEDS.events)
        .where(FEEDS.user_id.in_(sorted(set(user_ids))), FEEDS.revoked_at.is_(None))
        .distinct()
    )
    forms: dict[str, set[str]] = {}
    for user_id, events in found.all():
        forms.setdefault(user_id, set()).add(form_of(bool(events)))
    return forms


async def _links_of(conn: AsyncConnection, task: Task) -> tuple[CalendarLink | None, str | None]:
    """The calendar link of `task` and the UID its RELATED-TO names, as a feed's index finds
    them (domain.calendar._stamped): the next occurrence's imported UID only while that task
    is in the feed too, else its id."""
    ids = [task.id] if task.recurred_to is None else [task.id, task.recurred_to]
    found = await conn.execute(
        sa.select(
            LINKS.uid, LINKS.task_id, LINKS.sequence, LINKS.last_modified, LINKS.task_version
        ).where(LINKS.user_id == task.user_id, LINKS.task_id.in_(ids))
    )
    links = {row.task_id: CalendarLink(*row) for row in found.all()}
    next_uid = task.recurred_to
    if next_uid is not None and next_uid in links:
        in_feed = await conn.execute(
            sa.select(TASKS.id).where(
                TASKS.user_id == task.user_id,
                TASKS.id == next_uid,
                TASKS.status == Status.OPEN.value,
                sa.or_(TASKS.due_at.is_not(None), TASKS.due_date.is_not(None)),
            )
        )
        if in_feed.first() is not None:
            next_uid = links[next_uid].uid
    return links.get(task.id), next_uid


async def load(
    conn: AsyncConnection, user_id: str, form: str, task_ids: Sequence[str]
) -> dict[str, tuple[str, RenderedItem]]:
    """The kept components of the user's `task_ids` in `form`, with their fingerprints."""
    found: dict[str, tuple[str, RenderedItem]] = {}
    for start in range(0, len(task_ids), _CHUNK):
        chunk = list(task_ids[start : start + _CHUNK])
        rows = await conn.execute(
            sa.select(R.task_id, R.fingerprint, R.text, R.tzids, R.first_day, R.last_day).where(
                R.user_id == user_id, R.form == form, R.task_id.in_(chunk)
            )
        )
        for task_id, print_, text, tzids, first, last in rows.all():
            names = frozenset(tzids.split(",")) if tzids else frozenset()
            found[task_id] = (print_, RenderedItem(text.encode(), names, first, last))
    return found


async def save(
    conn: AsyncConnection,
    user_id: str,
    form: str,
    entries: Sequence[tuple[str, str, RenderedItem]],
    replace: bool = True,
) -> None:
    """Keep `entries` (task id, fingerprint, component) of the user in `form`."""
    if replace:
        ids = [task_id for task_id, _print, _item in entries]
        for start in range(0, len(ids), _CHUNK):
            await conn.execute(
                sa.delete(RENDERS).where(
                    R.user_id == user_id, R.form == form, R.task_id.in_(ids[start : start + _CHUNK])
                )
            )
    await conn.execute(
        sa.insert(RENDERS),
        [
            {
                "user_id": user_id,
                "task_id": task_id,
                "form": form,
                "fingerprint": print_,
                "text": item.text.decode(),
                "tzids": ",".join(sorted(item.tzids)),
                "first_day": item.first,
                "last_day": item.last,
            }
            for task_id, print_, item in entries
        ],
    )
