"""`dueflow export`, `dueflow import` and `dueflow feeds`: a user's tasks as iCalendar text, tasks
from an .ics file, and the private calendar feed URLs."""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path
from typing import Any

from domain.adapters.calendar_files import CalendarFiles
from domain.adapters.unit_of_work import SqlUnitOfWork
from domain.calendar import EXPORT_STATUSES, MAX_ICS_CHARS
from domain.calendar_feeds import feed_url
from domain.clock import SystemClock
from domain.due import iso_utc
from domain.errors import DueflowError
from domain.service import TaskService
from dueflow.bootstrap import SOURCE, bootstrap, calendar_files, open_database
from dueflow.settings import Settings


def add_calendar_commands(commands: Any) -> None:
    """The `export`, `import` and `feeds` commands, on the top-level parser's subparsers."""
    export = commands.add_parser("export", help="print a user's tasks as an iCalendar file")
    export.add_argument("--format", choices=("ics",), default="ics", help="ics (the only one)")
    export.add_argument(
        "--status", choices=EXPORT_STATUSES, default="all", help="which tasks (default all)"
    )
    export.add_argument("--user", default=None, help="whose tasks (default DUEFLOW_USER)")
    export.add_argument("--output", default="-", help="the file to write (default stdout)")
    imported = commands.add_parser(
        "import", help="import the VTODOs of an .ics file as tasks, idempotently by UID"
    )
    imported.add_argument("file", help="the .ics file, or - for stdin")
    imported.add_argument("--user", default=None, help="whose tasks (default DUEFLOW_USER)")
    imported.add_argument(
        "--events-as-tasks",
        action="store_true",
        help="import VEVENTs too, as tasks due at their start (refused otherwise)",
    )
    feeds = commands.add_parser("feeds", help="private calendar feed URLs of a user's open tasks")
    feed_commands = feeds.add_subparsers(dest="feeds_command", required=True)
    create = feed_commands.add_parser("create", help="create a feed and print its URL (once)")
    create.add_argument("--user", required=True, help="whose tasks the feed shows")
    create.add_argument("--name", default="", help="what the feed is for, e.g. phone")
    create.add_argument(
        "--events", action="store_true", help="answer VEVENTs, for apps that hide VTODOs"
    )
    listing = feed_commands.add_parser("list", help="a user's feeds: id, name, state")
    listing.add_argument("--user", required=True)
    revoke = feed_commands.add_parser("revoke", help="revoke a feed: its URL answers 404 at once")
    revoke.add_argument("--user", required=True)
    revoke.add_argument("id", help="the feed's id, from `dueflow feeds list`")


async def run_calendar(settings: Settings, args: argparse.Namespace) -> int:
    """Run `dueflow export|import|feeds`; 0 on success, 1 when the command was refused."""
    text = _read(args.file) if args.command == "import" else ""
    if text is None:
        return 1
    if args.command == "import":
        return await _import_and_publish(settings, args, text)
    async with open_database(settings) as database:
        # the use cases alone: export and feeds record no event
        clock = SystemClock()
        units = partial(SqlUnitOfWork, database.sessions)
        service = TaskService(units, clock, settings.timezone, source=SOURCE)
        calendar = calendar_files(units, service, database.engine, clock)
        try:
            if args.command == "export":
                user = args.user or settings.user
                return await _export(calendar, user, args.status, args.output)
            return await _feeds(calendar, settings, args)
        except DueflowError as exc:
            _refused(exc.message)
            return 1


async def _export(calendar: CalendarFiles, user: str, status: str, output: str) -> int:
    text, count = await calendar.export(user, status)
    if output == "-":
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8", newline="")
    print(f"exported {count} task(s) of {user}", file=sys.stderr)  # noqa: T201
    return 0


async def _import_and_publish(settings: Settings, args: argparse.Namespace, text: str) -> int:
    """Import as the API process would, then publish the events the import recorded: embedded,
    the in-process workers (audit, reminders, recurrence, the feed render cache) apply them
    before the command ends; with Dapr, a lone command has no sidecar to publish through, so
    they wait in the outbox for the relay of `dueflow serve` or `dueflow relay`."""
    runtime = await bootstrap(settings)
    try:
        try:
            answer = await _import(runtime.calendar, args.user or settings.user, text, args)
        except DueflowError as exc:
            _refused(exc.message)
            return 1
        if settings.event_bus == "embedded":
            published = await runtime.relay.drain()
            print(f"published {published} event(s)", file=sys.stderr)  # noqa: T201
        else:
            print(  # noqa: T201
                "events wait in the outbox for the relay of `dueflow serve` or `dueflow relay`",
                file=sys.stderr,
            )
        return answer
    finally:
        await runtime.close()


async def _import(calendar: CalendarFiles, user: str, text: str, args: argparse.Namespace) -> int:
    report = await calendar.import_text(user, text, args.events_as_tasks)
    for item in report.items:
        task = item.task_id or "-"
        print(f"{item.outcome}\t{task}\t{item.uid}\t{item.title}")  # noqa: T201
        for note in item.notes:
            print(f"\t\t{note}")  # noqa: T201
    for note in report.notes:
        print(f"calendar\t\t{note}")  # noqa: T201
    counts = ", ".join(
        f"{report.count(outcome)} {outcome}"
        for outcome in ("created", "updated", "unchanged", "skipped")
    )
    print(f"imported {len(report.items)} item(s) for {user}: {counts}", file=sys.stderr)  # noqa: T201
    return 0


def _read(name: str) -> str | None:
    try:
        raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        _refused(f"file: cannot read {name!r} ({exc.strerror}). Fix: name a readable .ics file.")
        return None
    if len(raw) > 4 * MAX_ICS_CHARS:
        _refused(f"file: has {len(raw)} bytes. Fix: import at most {MAX_ICS_CHARS} characters.")
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        _refused("file: is not UTF-8 text. Fix: save the calendar as UTF-8.")
        return None


async def _feeds(calendar: CalendarFiles, settings: Settings, args: argparse.Namespace) -> int:
    feeds = calendar.feeds
    if args.feeds_command == "create":
        feed, secret = await calendar.create_feed(args.user, args.name, args.events)
        print(feed_url(settings.public_url, secret))  # noqa: T201 - stdout holds the URL alone
        print(  # noqa: T201
            f"created feed {feed.id} for {feed.user_id}; the URL is shown only now"
            + ("" if settings.public_url else " (a path: set DUEFLOW_PUBLIC_URL for a full URL)"),
            file=sys.stderr,
        )
    elif args.feeds_command == "list":
        for feed in await feeds.feeds(args.user):
            state = f"revoked {iso_utc(feed.revoked_at)}" if feed.revoked_at else "live"
            kind = "events" if feed.events else "todos"
            created = f"created {iso_utc(feed.created_at)}"
            print(f"{feed.id}\t{feed.name or '-'}\t{kind}\t{state}\t{created}")  # noqa: T201
    else:
        revoked = await feeds.revoke(args.user, args.id)
        print(f"revoked feed {revoked.id} of {revoked.user_id}")  # noqa: T201
    return 0


def _refused(message: str) -> None:
    print(message, file=sys.stderr)  # noqa: T201
