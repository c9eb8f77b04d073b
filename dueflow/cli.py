"""The `dueflow` command: serve the MCP tools, manage the database schema."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from dueflow import logs
from dueflow.board_command import add_board_command, run_board
from dueflow.bootstrap import (
    DEFAULT_WORKER_PORT,
    WorkerSetupError,
    bootstrap,
    dead_letters,
    open_database,
    serve_worker,
)
from dueflow.calendar_commands import add_calendar_commands, run_calendar
from dueflow.chat.command import add_chat_command, run_chat
from dueflow.heap import defer_collections, resume_collections, settle_heap
from dueflow.identity import oauth_config, oauth_verifier
from dueflow.settings import Settings, SettingsError
from dueflow.telemetry import start_tracing
from dueflow.token_commands import add_token_commands, run_tokens
from workers.registry import WORKER_NAMES

if TYPE_CHECKING:
    pass

log = logging.getLogger("dueflow")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="dueflow",
        description="Dueflow: a task server for AI agents. Configure with DUEFLOW_* variables"
        " (see README).",
    )
    commands = top.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the MCP tools")
    serve.add_argument(
        "--transport",
        choices=("stdio", "http", "sse"),
        default="stdio",
        help="stdio (default); http: streamable HTTP at /mcp; sse: legacy SSE at /sse",
    )
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    worker = commands.add_parser(
        "worker", help="serve one worker as a Dapr app (subscriptions, topic routes, health)"
    )
    worker.add_argument("name", help=f"the worker: {', '.join(WORKER_NAMES)}")
    worker.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    worker.add_argument("--port", type=int, default=DEFAULT_WORKER_PORT, help="the Dapr app port")
    commands.add_parser(
        "relay", help="run the outbox relay alone (publishes to DUEFLOW_EVENT_BUS) until stopped"
    )
    events = commands.add_parser("events", help="the event backbone: backlog and dead letters")
    event_commands = events.add_subparsers(dest="events_command", required=True)
    event_commands.add_parser("backlog", help="undelivered outbox rows and the oldest one's age")
    letters = event_commands.add_parser(
        "dead-letters", help="events a consumer could not apply, with their errors"
    )
    letters.add_argument("--all", action="store_true", help="include replayed ones")
    replay = event_commands.add_parser("replay", help="run a dead-lettered event again")
    replay.add_argument("id", type=int, help="the dead letter's id (see dead-letters)")
    audit = commands.add_parser("audit", help="the audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    audit_commands.add_parser(
        "prune",
        help="delete entries older than DUEFLOW_AUDIT_RETENTION_DAYS now (in batches, under the"
        " retention lease)",
    )
    notifications = commands.add_parser("notifications", help="reminder notification deliveries")
    notification_commands = notifications.add_subparsers(
        dest="notifications_command", required=True
    )
    failed = notification_commands.add_parser(
        "failed", help="dead deliveries (retries used up or refused) with their errors"
    )
    failed.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    add_token_commands(commands)
    add_calendar_commands(commands)
    add_chat_command(commands)
    add_board_command(commands)
    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply every migration to DUEFLOW_DATABASE_URL")
    db_commands.add_parser("current", help="print the schema revision and the code's head")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command in ("serve", "relay", "worker"):
        defer_collections()  # until the process is wired and settles its heap (dueflow.heap)
    else:
        resume_collections()  # a short command keeps nothing for long: collect as usual
    if args.command == "chat":
        return run_chat(args)  # a client of the server: none of the server's settings apply
    try:
        settings = Settings.from_env()
    except ValidationError as exc:
        print(f"dueflow: bad setting: {setting_problems(exc)}", file=sys.stderr)  # noqa: T201
        return 2
    logs.configure(settings.log_level, settings.log_format)
    role = {"serve": "api", "relay": "relay"}.get(args.command)
    if args.command == "worker":
        role = args.name
    stop_tracing = start_tracing(settings.otlp_endpoint if role else None, role or "")
    try:
        if args.command == "serve":
            asyncio.run(serve(settings, args.transport, args.host, args.port))
        elif args.command == "worker":
            asyncio.run(serve_worker(args.name, settings, args.host, args.port))
        elif args.command == "relay":
            asyncio.run(relay(settings))
        elif args.command == "events":
            return asyncio.run(events(settings, args))
        elif args.command == "audit":
            return asyncio.run(audit_prune(settings))
        elif args.command == "notifications":
            return asyncio.run(failed_notifications(settings, args.limit))
        elif args.command == "tokens":
            return asyncio.run(run_tokens(settings, args))
        elif args.command in ("export", "import", "feeds"):
            return asyncio.run(run_calendar(settings, args))
        elif args.command == "board":
            return asyncio.run(run_board(settings, args))
        elif args.db_command == "upgrade":
            asyncio.run(db_upgrade(settings))
        else:
            asyncio.run(db_current(settings))
    except (SettingsError, WorkerSetupError) as exc:
        log.error("%s", exc)
        return 2
    except (OSError, SQLAlchemyError) as exc:
        log.error("database unavailable: %s", str(exc).splitlines()[0])
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        stop_tracing()  # the spans still in its batch are exported
    return 0


def setting_problems(error: ValidationError) -> str:
    """What is wrong with the settings, without the values given: those may be secrets."""
    problems = []
    for problem in error.errors(include_input=False, include_url=False):
        message = str(problem["msg"]).removeprefix("Value error, ")
        names = [str(part) for part in problem["loc"]]
        if names and not message.startswith("DUEFLOW_"):
            message = f"DUEFLOW_{names[0].upper()}: {message}"
        problems.append(message)
    return "; ".join(problems)


async def serve(
    settings: Settings, transport: Literal["stdio", "http", "sse"], host: str, port: int
) -> None:
    users = settings.token_users() if transport != "stdio" else {}
    oauth = oauth_config(settings) if transport != "stdio" else None
    from domain.work import WorkLedger
    from dueflow.resource_feed import feed_resource_updates
    from mcp_server.fairness import CallLimits
    from mcp_server.param_headers import serve_param_header_schemas
    from mcp_server.resource_updates import ResourceWatchers
    from mcp_server.server import TokenUsers, build_server
    from mcp_server.sessions import sessions_refresher

    # over HTTP each user's calls are charged for the events the relay handles for them too
    work = WorkLedger() if transport != "stdio" else None
    runtime = await bootstrap(settings, work=work)
    signalled = False
    watchers = ResourceWatchers()
    try:
        server = build_server(
            runtime.service,
            settings.user if transport == "stdio" else None,
            TokenUsers(users, runtime.tokens, oauth_verifier(oauth))
            if transport != "stdio"
            else None,
            reminders=runtime.reminders,
            history=runtime.history,
            sessions=runtime.mcp_sessions,
            foreground=runtime.foreground,
            limits=None
            if transport == "stdio"
            else CallLimits(
                settings.calls_per_second,
                settings.calls_burst,
                settings.calls_in_flight,
                characters_per_call=settings.call_characters,
            ),
            work=work,
            # over stdio, tool calls are measured only where a scraper can read them
            metrics=transport != "stdio" or settings.metrics_port is not None,
            calendar=runtime.calendar,
            public_url=settings.public_url,
            watchers=watchers,
        )
        runtime.scrape.refreshers.append(sessions_refresher(runtime.mcp_sessions, transport))
        if transport != "stdio":
            if oauth is not None:
                log.info(
                    "OAuth: accepting JWT access tokens of %s for %s", oauth.issuer, oauth.audience
                )
            elif not users and not await runtime.tokens.tokens():
                log.warning(
                    "no tokens yet: every request will be refused until one is created with"
                    " `dueflow tokens create --user <name>` (or set DUEFLOW_TOKENS for development)"
                )
            from mcp_server.health import mount_health

            mount_health(server, runtime.engine)
            await serve_param_header_schemas(server)
            if settings.internal_token:
                from domain.adapters.internal_api import RECUR_PATH
                from mcp_server.internal_api import mount_internal_api

                mount_internal_api(server, runtime.service, settings.internal_token)
                log.info("internal API for Dapr service invocation at POST %s", RECUR_PATH)
            else:
                log.info("internal API not served (DUEFLOW_INTERNAL_TOKEN is unset)")
        log.info("serving over %s (database: %s)", transport, runtime.engine.url.render_as_string())
        settle_heap()
        async with runtime.running(), feed_resource_updates(runtime, watchers):
            if transport == "stdio":
                from mcp_server.stdio import serve_stdio

                signalled = await _until_signal(serve_stdio(server, settings.max_request_bytes))
            else:
                import uvicorn

                from mcp_server.http_app import Reachable, http_app

                # uvicorn hands a caught SIGTERM back to the previous handler once it has shut
                # down; with this one in place the process goes on to stop the relay and close
                # the database instead of dying by the signal.
                signal.signal(signal.SIGTERM, _log_termination)
                path = "/mcp" if transport == "http" else "/sse"
                reachable = Reachable(
                    host, settings.allowed_host_names(), settings.allowed_origin_list()
                )
                app = http_app(
                    server,
                    transport,
                    path,
                    reachable,
                    settings.max_request_bytes,
                    oauth,
                    scrape=runtime.scrape,
                    calendar=runtime.calendar,
                )
                from mcp_server.calendar_feed import FeedSecretsMasked

                # uvicorn's access log writes each request's path, and a feed's path is its key
                logging.getLogger("uvicorn.access").addFilter(FeedSecretsMasked())
                if runtime.workers is not None:  # embedded: the realtime gateway and board too
                    from dueflow.gateway import embedded_gateway_routes

                    app.router.routes.extend(embedded_gateway_routes(runtime))
                    log.info(
                        "board at http://%s:%d/board (realtime socket %s)",
                        host,
                        port,
                        "/realtime/ws",
                    )
                config = uvicorn.Config(
                    app,
                    host=host,
                    port=port,
                    log_level=settings.log_level.lower(),
                    http="httptools",  # see pyproject.toml
                    timeout_graceful_shutdown=2,
                    lifespan="on",
                    log_config=None,  # uvicorn's records (access log too) go to stderr, as ours do
                    # the realtime messages are small JSON: compressing each, for every
                    # connection, costs more CPU and memory per connection than it saves
                    ws_per_message_deflate=False,
                )
                log.info("MCP over %s at http://%s:%d%s", transport, host, port, path)
                await uvicorn.Server(config).serve()
    finally:
        await runtime.close()
    if signalled:
        # the stdio transport reads stdin on a thread that only end of input releases, and
        # asyncio would wait for it: the relay has stopped and the database is closed, so go
        logging.shutdown()
        os._exit(0)


async def _until_signal(serving: Coroutine[Any, Any, None]) -> bool:
    """Run `serving` until it ends (end of input) or SIGINT/SIGTERM; True if a signal came."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    task = asyncio.ensure_future(serving)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not stop.is_set():
        task.result()
        return False
    log.info("stopped by signal")
    task.cancel()
    return True


def _log_termination(signum: int, _frame: object) -> None:
    log.info("stopped by signal %d", signum)


async def relay(settings: Settings) -> None:
    runtime = await bootstrap(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        log.info("outbox relay running (bus: %s); stop with SIGTERM", settings.event_bus)
        settle_heap()
        async with runtime.serving_metrics():
            await runtime.relay.run(stop)
    finally:
        await runtime.close()


async def events(settings: Settings, args: argparse.Namespace) -> int:
    if args.events_command == "backlog":
        from domain.adapters.outbox import outbox_backlog
        from domain.clock import SystemClock

        async with open_database(settings) as database:
            backlog = await outbox_backlog(database.engine, SystemClock())
        age = "-" if backlog.oldest_age_seconds is None else f"{backlog.oldest_age_seconds:.1f}s"
        print(f"undelivered: {backlog.size}  oldest: {age}")  # noqa: T201
        return 0
    async with open_database(settings) as database:
        letters = dead_letters(database, settings)
        if args.events_command == "dead-letters":
            listed = await letters.listed(include_replayed=args.all)
            for letter in listed:
                state = (
                    f"replayed {letter.replayed_at:%Y-%m-%d %H:%M:%S}"
                    if letter.replayed_at
                    else "open"
                )
                print(  # noqa: T201
                    f"{letter.id}\t{letter.created_at:%Y-%m-%d %H:%M:%S}\t{letter.consumer}"
                    f"\t{letter.event_type}\ttask {letter.task_id}\t{state}\t{letter.error}"
                )
            if not listed:
                print("no dead letters")  # noqa: T201
            return 0
        try:
            outcome = await letters.replay(args.id)
        except LookupError as exc:
            log.error("%s", exc)
            return 1
    print(f"dead letter {args.id}: {outcome}")  # noqa: T201
    return 0 if outcome == "SUCCESS" else 1


async def audit_prune(settings: Settings) -> int:
    from domain.clock import SystemClock
    from workers.retention import AuditRetention

    days = settings.audit_retention_days
    if days is None:
        raise SettingsError(
            "DUEFLOW_AUDIT_RETENTION_DAYS is unset, so history is kept forever and nothing is"
            " pruned. Fix: set it to the number of days to keep (e.g. 365)."
        )
    async with open_database(settings) as database:
        run = await AuditRetention(database.sessions, SystemClock(), days).run()
    if not run.ran:
        log.error("another retention run holds the lease; nothing done, try again later")
        return 1
    print(  # noqa: T201
        f"deleted {run.deleted} audit entr{'y' if run.deleted == 1 else 'ies'} older than"
        f" {days} day(s) (before {run.cutoff:%Y-%m-%d %H:%M:%S} UTC) in {run.batches} batch(es)"
    )
    return 0


async def failed_notifications(settings: Settings, limit: int) -> int:
    from workers.notification_dispatch import failed_deliveries

    async with open_database(settings) as database:
        dead = await failed_deliveries(database.sessions, limit)
    for delivery in dead:
        print(  # noqa: T201
            f"{delivery.id}\t{delivery.created_at:%Y-%m-%d %H:%M:%S}\t{delivery.channel}"
            f"\t{delivery.user_id}\ttask {delivery.task_id}\tevent {delivery.event_id}"
            f"\t{delivery.attempts} attempt(s)\t{delivery.last_error}"
        )
    if not dead:
        print("no failed notifications")  # noqa: T201
    return 0


async def db_upgrade(settings: Settings) -> None:
    from domain.adapters.schema_revision import current_revision

    async with open_database(settings, upgrade_schema=True) as database:
        log.info("schema at %s", await current_revision(database.engine))


async def db_current(settings: Settings) -> None:
    from domain.adapters.schema_revision import HEAD, current_revision
    from domain.adapters.sql import make_engine

    if settings.embedded and not (settings.data_dir / "dueflow.db").exists():
        print(f"current: none  head: {HEAD}")  # noqa: T201
        return
    engine = make_engine(settings.resolved_database_url())
    try:
        print(f"current: {await current_revision(engine)}  head: {HEAD}")  # noqa: T201
    finally:
        await engine.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
