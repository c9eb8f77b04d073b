"""iCalendar exchange: which UID each task has, and importing calendar items as tasks.

A task Dueflow made is known to calendars by its id. A task imported from a calendar keeps the
UID it came with: a link row records the UID, the task it became, and the SEQUENCE and
LAST-MODIFIED it was imported at, so exporting it again answers the same UID, SEQUENCE and
LAST-MODIFIED until the task changes here, and importing the same item twice changes nothing.
The codec (domain.adapters.icalendar_codec) reads and writes the text; this module holds the
rules and the use cases, on the same unit of work and events as every other change.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

from domain.arguments import ArgumentReader, NewTask, read_anchor
from domain.calendar_links import CalendarLink, CalendarState, FeedRow
from domain.errors import ConcurrentChange, DueflowError, ValidationFailed, echo
from domain.events import EventType, TaskEvent, created_event, task_event
from domain.model import Status, Task
from domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from domain.query import StatusFilter, TaskFilter
from domain.recurrence import Recurrence, parse_recurrence, series_start

MAX_UID = 255
MAX_ITEMS = 1000  # calendar items one import may carry
MAX_ICS_CHARS = 1_000_000  # the text of one import
MAX_OCCURRENCE = 1_000_000
EXPORT_STATUSES = ("open", "completed", "all")
_ATTEMPTS = 5
_ONE_BY_ONE = 20  # more tasks than this are read in one query of the user's open tasks
_FILTERS: dict[str, StatusFilter] = {"open": "open", "completed": "completed", "all": "all"}

Outcome = Literal["created", "updated", "unchanged", "skipped"]


@dataclass(frozen=True, slots=True)
class Stamp:
    """What a calendar sees of a task's identity and version."""

    uid: str
    sequence: int
    last_modified: dt.datetime | None
    next_uid: str | None  # RELATED-TO;RELTYPE=NEXT: the occurrence created when it was completed


class Stampable(Protocol):
    """What a stamp is made of: a Task, or a feed's FeedRow of it."""

    @property
    def id(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def created_at(self) -> dt.datetime: ...

    @property
    def updated_at(self) -> dt.datetime: ...

    @property
    def recurred_to(self) -> str | None: ...


def stamp(task: Stampable, link: CalendarLink | None) -> tuple[str, int, dt.datetime | None]:
    """The UID, SEQUENCE and LAST-MODIFIED of `task`: its own (id, version - 1, updated) or,
    when imported, the item's until the task changes here."""
    if link is None:
        return task.id, task.version - 1, task.updated_at
    changed = task.version - link.task_version
    if changed <= 0:
        return link.uid, link.sequence, link.last_modified
    return link.uid, link.sequence + changed, task.updated_at


def feed_stamp(task: Stampable, link: CalendarLink | None, next_uid: str | None) -> Stamp:
    """The stamp of `task` given its link and the UID of the occurrence made after it."""
    uid, sequence, modified = stamp(task, link)
    return Stamp(uid, sequence, modified, next_uid)


@dataclass(frozen=True, kw_only=True)
class CalendarItem:
    """One calendar item as the codec read it: raw task fields the domain checks as add_task's,
    and what only a calendar carries."""

    uid: str
    fields: NewTask  # recurrence here is the RRULE and EXDATE lines, anchored on series_start
    series_start: str | None = None  # DTSTART as add_task's due reads it (same zone as the due)
    series_id: str | None = None
    occurrence: int = 1
    series_ended: bool = False
    completed: bool = False
    completed_at: dt.datetime | None = None
    created_at: dt.datetime | None = None
    sequence: int = 0
    last_modified: dt.datetime | None = None
    next_uid: str | None = None
    notes: tuple[str, ...] = ()  # what of the item was not imported, and why


@dataclass(frozen=True, slots=True)
class ItemReport:
    """What an import did with one item, and every part of it that was not imported."""

    uid: str
    title: str
    outcome: Outcome
    task_id: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ImportReport:
    items: list[ItemReport]
    notes: tuple[str, ...] = ()  # calendar-level properties and components not imported

    def count(self, outcome: Outcome) -> int:
        return sum(1 for item in self.items if item.outcome == outcome)


@dataclass
class _Plan:
    """One item's intended write, worked out before the writing unit opens."""

    item: CalendarItem
    built: Task | None = None
    current: Task | None = None
    outcome: Outcome = "skipped"
    notes: list[str] = field(default_factory=list)


def check_export_status(status: str) -> str:
    if status not in EXPORT_STATUSES:
        raise ValidationFailed(
            "status", f"{echo(status)} is not an export status", "use open, completed or all"
        )
    return status


class CalendarExchange:
    """Export a user's tasks with their calendar identity, and import calendar items."""

    def __init__(
        self, unit_of_work: UnitOfWorkFactory, clock: Clock, read: ArgumentReader, source: str
    ) -> None:
        self._uow = unit_of_work
        self._clock = clock
        self._read = read
        self._source = source

    async def exported(self, user_id: str, status: str = "all") -> list[tuple[Task, Stamp]]:
        """The user's tasks of `status` (open, completed or all but deleted), each with its
        stamp, in a stable order (creation second, then UID)."""
        check_export_status(status)
        now = self._clock.now()
        where = TaskFilter(status=_FILTERS[status])
        async with self._uow(read_only=True) as uow:
            tasks = await uow.tasks.all_matching(user_id, where, now, now.date())
            links = {link.task_id: link for link in await uow.calendar.links(user_id)}
        return _stamped([task for task in tasks if task.status is not Status.DELETED], links)

    async def feed_tasks(self, user_id: str) -> list[tuple[Task, Stamp]]:
        """The open tasks with a due, stamped: what a calendar feed shows."""
        now = self._clock.now()
        where = TaskFilter(status="open")
        async with self._uow(read_only=True) as uow:
            tasks = await uow.tasks.all_matching(user_id, where, now, now.date())
            links = {link.task_id: link for link in await uow.calendar.links(user_id)}
        return _stamped([t for t in tasks if t.due is not None], links)

    async def feed_index(self, user_id: str) -> list[tuple[FeedRow, Stamp]]:
        """What feed_tasks answers, without reading a task whole: each open task with a due as
        a FeedRow with its stamp, in the same order."""
        async with self._uow(read_only=True) as uow:
            rows = await uow.calendar.feed_rows(user_id)
            links = {link.task_id: link for link in await uow.calendar.links(user_id)}
        return _stamped(rows, links)

    async def tasks(self, user_id: str, task_ids: Sequence[str]) -> list[Task]:
        """The user's tasks of `task_ids` that exist (a feed's components to render again)."""
        wanted = set(task_ids)
        async with self._uow(read_only=True) as uow:
            if len(wanted) <= _ONE_BY_ONE:
                found = [await uow.tasks.get(user_id, task_id) for task_id in task_ids]
                return [task for task in found if task is not None]
            now = self._clock.now()
            where = TaskFilter(status="open")
            every = await uow.tasks.all_matching(user_id, where, now, now.date())
        return [task for task in every if task.id in wanted]

    async def state(self, user_id: str) -> CalendarState:
        """What moves with any change to the user's tasks or their UIDs (a feed's validator)."""
        async with self._uow(read_only=True) as uow:
            return await uow.calendar.state(user_id)

    async def import_items(
        self,
        user_id: str,
        items: Sequence[CalendarItem],
        correlation_id: str | None = None,
    ) -> list[ItemReport]:
        """Create or update a task per item, idempotently by UID, in one transaction: an item
        already imported is updated only when its SEQUENCE (or, equal, LAST-MODIFIED) is newer."""
        if len(items) > MAX_ITEMS:
            raise ValidationFailed(
                "ics", f"has {len(items)} tasks", f"import at most {MAX_ITEMS} at a time"
            )
        for _ in range(_ATTEMPTS - 1):
            try:
                return await self._import(user_id, items, correlation_id)
            except ConcurrentChange:
                await asyncio.sleep(0.01)
        return await self._import(user_id, items, correlation_id)

    async def _import(
        self, user_id: str, items: Sequence[CalendarItem], correlation_id: str | None
    ) -> list[ItemReport]:
        plans = [_Plan(item, notes=list(item.notes)) for item in _unique(items)]
        known: dict[str, str] = {}  # uid -> task id, for items and the occurrences they name
        links: dict[str, CalendarLink] = {}
        async with self._uow(read_only=True) as uow:
            for plan in plans:
                uid = plan.item.uid
                link = await uow.calendar.find(user_id, uid)
                current = await uow.tasks.get(user_id, link.task_id if link else uid)
                if link is not None:
                    links[uid] = link
                if current is not None:
                    plan.current = current
                    known[uid] = current.id
            wanted = {p.item.next_uid for p in plans if p.item.next_uid} - set(known)
            for uid in wanted:
                link = await uow.calendar.find(user_id, uid)
                found = await uow.tasks.get(user_id, link.task_id if link else uid)
                if found is not None:
                    known[uid] = found.id
        now = self._clock.now()
        for plan in plans:
            await self._decide(plan, user_id, links.get(plan.item.uid), now)
            if plan.outcome == "created" and plan.built is not None:
                known[plan.item.uid] = plan.built.id
        _link_occurrences(plans, known)
        async with self._uow() as uow:
            for plan in plans:
                event = await self._write(uow, plan, now, correlation_id)
                if event is not None:
                    uow.record(event)
            await uow.commit()
        return [_report(plan) for plan in plans]

    async def _decide(
        self, plan: _Plan, user_id: str, link: CalendarLink | None, now: dt.datetime
    ) -> None:
        item, current = plan.item, plan.current
        if current is not None and current.status is Status.DELETED:
            plan.notes.append("the task it became is deleted: restore_task it to take updates")
            plan.outcome = "unchanged"
            return
        if current is not None and not _newer(item, current, link):
            plan.outcome = "unchanged"
            return
        try:
            plan.built = await self._built(user_id, item, now, plan.notes)
        except DueflowError as exc:
            plan.notes.append(f"not imported: {exc.message}")
            plan.outcome = "skipped"
            return
        plan.outcome = "created" if current is None else "updated"

    async def _built(
        self, user_id: str, item: CalendarItem, now: dt.datetime, notes: list[str]
    ) -> Task:
        """The task of `item`; a rule or reminders the domain refuses are left out, noted."""
        for _ in range(3):
            try:
                if item.fields.recurrence is None:
                    return self._build(user_id, item, now)
                # dateutil may walk a rule for a while: not on the event loop
                return await asyncio.to_thread(self._build, user_id, item, now)
            except ValidationFailed as exc:
                if exc.field == "recurrence" and item.fields.recurrence is not None:
                    fields = dataclasses.replace(item.fields, recurrence=None)
                elif exc.field == "reminders" and item.fields.reminders:
                    fields = dataclasses.replace(item.fields, reminders=None)
                else:
                    raise
                notes.append(f"{exc.field} not imported: {exc.message}")
                item = dataclasses.replace(item, fields=fields)
        return self._build(user_id, item, now)

    def _build(self, user_id: str, item: CalendarItem, now: dt.datetime) -> Task:
        """The task `item` describes, checked by the rules add_task follows."""
        task = self._read.new_task(user_id, dataclasses.replace(item.fields, recurrence=None), now)
        if item.fields.recurrence is not None:
            task.recurrence = self._series(item, task)
            task.occurrence = item.occurrence
            task.series_ended = item.series_ended
        task.created_at = min(item.created_at or now, now)
        if item.completed:
            task.status = Status.COMPLETED
            task.completed_at = min(item.completed_at or now, now)
        return task

    def _series(self, item: CalendarItem, task: Task) -> Recurrence:
        assert item.fields.recurrence is not None
        if task.due is None:
            raise ValidationFailed("recurrence", "needs a due date to anchor the series", "set DUE")
        start = task.due
        if item.series_start is not None:
            start = self._read.due(item.series_start, task.due.timezone)
        rule, exdates = parse_recurrence(item.fields.recurrence, start)
        if not 1 <= item.occurrence <= MAX_OCCURRENCE:
            raise ValidationFailed(
                "X-DUEFLOW-OCCURRENCE", f"is {item.occurrence}", f"give 1 to {MAX_OCCURRENCE}"
            )
        return Recurrence(
            rule,
            read_anchor(item.fields.recurrence_anchor),
            _series_id(item.series_id),
            start=series_start(start),
            exdates=exdates,
        )

    async def _write(
        self, unit: UnitOfWork, plan: _Plan, now: dt.datetime, correlation_id: str | None
    ) -> TaskEvent | None:
        item, built, current = plan.item, plan.built, plan.current
        if built is None:
            return None
        event: TaskEvent
        if current is None:
            await unit.tasks.add(built)
            event = created_event(built, now, source=self._source, correlation_id=correlation_id)
            task = built
        else:
            version = current.version
            before = current.status
            values = {
                name: getattr(built, name)
                for name in _UPDATED
                if not (name == "recurred_to" and built.recurred_to is None)
            }
            if (
                built.recurrence is not None
                and current.recurrence is not None
                and item.series_id is None
            ):
                values["recurrence"] = dataclasses.replace(
                    built.recurrence, series_id=current.recurrence.series_id
                )
            changes = current.change(now, **values)
            if not changes:
                plan.outcome = "unchanged"
                await _put_link(unit, current, item)
                return None
            await unit.tasks.save(current, expected_version=version)
            kind = EventType.TASK_UPDATED
            if before is Status.OPEN and current.status is Status.COMPLETED:
                kind = EventType.TASK_COMPLETED
            elif before is Status.COMPLETED and current.status is Status.OPEN:
                kind = EventType.TASK_REOPENED
            event = task_event(
                kind, current, changes, now, source=self._source, correlation_id=correlation_id
            )
            task = current
        await _put_link(unit, task, item)
        return event


_UPDATED = (
    "title",
    "description",
    "priority",
    "tags",
    "due",
    "reminders",
    "recurrence",
    "occurrence",
    "series_ended",
    "status",
    "completed_at",
    "recurred_to",
)


async def _put_link(uow: UnitOfWork, task: Task, item: CalendarItem) -> None:
    link = CalendarLink(item.uid, task.id, item.sequence, item.last_modified, task.version)
    await uow.calendar.put(task.user_id, link)


_S = TypeVar("_S", bound=Stampable)


def _stamped(tasks: Sequence[_S], links: dict[str, CalendarLink]) -> list[tuple[_S, Stamp]]:
    """Each task with its stamp, in a stable order: creation second, then UID."""
    stamps = {task.id: stamp(task, links.get(task.id)) for task in tasks}
    ordered = []
    for task in tasks:
        uid, sequence, modified = stamps[task.id]
        next_uid = None
        if task.recurred_to is not None:
            # an occurrence not among `tasks` is still named, by its own id
            found = stamps.get(task.recurred_to)
            next_uid = found[0] if found is not None else task.recurred_to
        second = task.created_at.replace(microsecond=0)
        ordered.append((second, uid, task, Stamp(uid, sequence, modified, next_uid)))
    ordered.sort(key=lambda entry: (entry[0], entry[1]))
    return [(task, stamped) for _second, _uid, task, stamped in ordered]


def _unique(items: Sequence[CalendarItem]) -> list[CalendarItem]:
    """One item per UID: the newest, where a file carries a UID twice (an iTIP exchange, a
    journal of changes); the kept item's notes say how many older copies were not imported."""
    newest: dict[str, CalendarItem] = {}
    copies: dict[str, int] = {}
    for item in items:
        seen = newest.get(item.uid)
        copies[item.uid] = copies.get(item.uid, 0) + 1
        if seen is None or _key(item) > _key(seen):
            newest[item.uid] = item
    kept = []
    for uid, item in newest.items():
        older = copies[uid] - 1
        if older:
            note = f"{older} older cop{'y' if older == 1 else 'ies'} of this UID in the file:"
            note += " not imported (the newest SEQUENCE and LAST-MODIFIED is kept)"
            item = dataclasses.replace(item, notes=(*item.notes, note))
        kept.append(item)
    return kept


def _key(item: CalendarItem) -> tuple[int, dt.datetime]:
    return item.sequence, item.last_modified or dt.datetime.min.replace(tzinfo=dt.UTC)


def _newer(item: CalendarItem, current: Task, link: CalendarLink | None) -> bool:
    """Whether `item` is a later version than the one `current` shows a calendar."""
    _uid, sequence, modified = stamp(current, link)
    if item.sequence != sequence:
        return item.sequence > sequence
    return item.last_modified is not None and modified is not None and item.last_modified > modified


def _link_occurrences(plans: list[_Plan], known: dict[str, str]) -> None:
    """Link each occurrence to the next one its item names (RELATED-TO;RELTYPE=NEXT)."""
    created = {p.built.id: p.built for p in plans if p.outcome == "created" and p.built}
    for plan in plans:
        if plan.built is None or plan.item.next_uid is None:
            continue
        target = known.get(plan.item.next_uid)
        if target is None or target == plan.built.id:
            plan.notes.append(
                f"RELATED-TO {echo(plan.item.next_uid)}: no such task here; left unlinked"
            )
            continue
        plan.built.recurred_to = target
        if target in created and plan.outcome == "created":
            created[target].recurred_from = plan.built.id


def _series_id(given: str | None) -> str:
    if given is not None:
        try:
            return str(uuid.UUID(given))
        except ValueError:
            pass
    return str(uuid.uuid4())


def _report(plan: _Plan) -> ItemReport:
    task = plan.built or plan.current
    title = task.title if task else (plan.item.fields.title or "")[:100]
    task_id = None
    if plan.outcome != "skipped":
        task_id = plan.current.id if plan.current else (plan.built.id if plan.built else None)
    return ItemReport(plan.item.uid, title, plan.outcome, task_id, tuple(plan.notes))


__all__ = [
    "CalendarExchange",
    "CalendarItem",
    "CalendarLink",
    "ImportReport",
    "ItemReport",
    "Stamp",
]
