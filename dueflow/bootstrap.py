"""The composition root: every Dueflow process is wired here from its settings, and only here.

- `bootstrap()` builds the API process (`dueflow serve`, `dueflow relay`): the use cases, the
  outbox relay and its publisher, and, embedded, the workers in-process (`InProcessWorkers`).
- `worker_app()` / `serve_worker()` build one worker as a Dapr app (`dueflow worker <name>`).
- `open_database()` is all a maintenance command needs (`db`, `audit prune`, `events`, ...).

Nothing here is chosen by looking at an object: the mode is `settings.event_bus`, and what a
process runs follows from it. The Dapr adapters, the worker apps' routes, audit retention and the
migrations (Alembic) are imported where a process decides to use them, and only then: a start of
`dueflow serve` over stdio on a database at the schema's head loads none of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from domain.access import PersonalTokens
from domain.adapters.access_sql import SqlTokenStore
from domain.adapters.calendar_files import CalendarFiles
from domain.adapters.calendar_renders import FeedRenderCache
from domain.adapters.calendar_sql import SqlFeedStore
from domain.adapters.foreground import Foreground
from domain.adapters.history_sql import SqlHistory
from domain.adapters.metrics import OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE, Scrape, pool_refresher
from domain.adapters.outbox import (
    BATCH_BYTES,
    GATHER_SECONDS,
    OutboxRelay,
    SameDatabaseBus,
    outbox_backlog,
)
from domain.adapters.own_writes import OwnWritesFirst
from domain.adapters.reminder_sql import SqlReminderRepository
from domain.adapters.schema_revision import HEAD, current_revision
from domain.adapters.sql import make_engine
from domain.adapters.unit_of_work import ReminderRepositoryFactory, SqlUnitOfWork, shared_repository
from domain.calendar import CalendarExchange
from domain.calendar_feeds import CalendarFeeds
from domain.channels import Channel
from domain.clock import SystemClock
from domain.history import HistoryPage, HistoryQuery, HistoryReader, HistoryUnavailable
from domain.ports import (
    Clock,
    EventPublisher,
    EventuallyConsistent,
    JobScheduler,
    UnitOfWorkFactory,
    ViewFreshness,
)
from domain.reminder_service import SOURCE as REMINDERS_SOURCE
from domain.reminder_service import ReminderService
from domain.service import TaskService
from domain.work import WorkLedger
from dueflow.heap import settle_heap
from dueflow.settings import Settings, SettingsError
from workers.audit import NAME as AUDIT
from workers.calendar import calendar_consumer
from workers.consumer import ConsumerRunner
from workers.dead_letters import DeadLetters
from workers.embedded import EmbeddedBus
from workers.live_hub import Hub
from workers.notification_dispatch import NotificationDispatcher, build_dispatcher
from workers.notifications import CONSUMER_NAME as NOTIFICATIONS
from workers.realtime import NAME as REALTIME
from workers.realtime import FeedRunner, FeedTaps
from workers.recurrence import NAME as RECURRENCE
from workers.recurrence import InvokingRunner, RecurrenceInvoker
from workers.registry import WORKER_NAMES, build_consumers
from workers.reminder_timer import ReminderTimer
from workers.reminders import NAME as REMINDERS
from workers.reminders import reminder_routes

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.routing import BaseRoute

    from mcp_server.sessions import SessionRegistry
    from workers.retention import AuditRetention

if TYPE_CHECKING:  # the API process imports the MCP adapter when it wires it (see _wire)
    from mcp_server.sessions import SessionRegistry

log = logging.getLogger("dueflow")

SOURCE = "dueflow.mcp_server"  # the events' source when the API process writes them
DEFAULT_WORKER_PORT = 3000  # Dapr's default app port (dapr.conf.global_settings.HTTP_APP_PORT)
# On SQLite a relay pass holds the one write lock while the consumers apply it, and runs on the
# event loop without a pause: short passes let a request's write, a reminder firing and other
# requests go between them (bench_fairness.py), and fewer of them under a stream of commits take
# the lock from the writers less often (bench_events.py: live 180-270 events/s gathering 50 ms
# against 105-120 gathering 5 ms, and a lower commit -> consumer p50)
RELAY_ROWS_SQLITE, RELAY_BYTES_SQLITE, RELAY_GATHER_SQLITE = 50, 64 * 1024, 0.05
RELAY_CONNECTIONS = 3  # PostgreSQL: the relay's own pool (_relay_engine)


class WorkerSetupError(ValueError):
    """The worker cannot start as configured; the message names the fix."""


@dataclass
class Database:
    """An open database: its engine and the sessions over it."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]


@contextlib.asynccontextmanager
async def open_database(
    settings: Settings, *, upgrade_schema: bool = False
) -> AsyncIterator[Database]:
    """The configured database, its schema checked to be the code's (the embedded default, or
    `upgrade_schema`, is upgraded instead); the engine is disposed on leaving."""
    if settings.embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url())
    try:
        current = await current_revision(engine)
        if current != HEAD:
            if not (upgrade_schema or settings.embedded):
                raise SettingsError(
                    f"The database schema is at {current or 'nothing'}, the code needs {HEAD}."
                    " Fix: run `dueflow db upgrade` with the same DUEFLOW_DATABASE_URL."
                )
            from domain.adapters.schema import upgrade  # Alembic, only when there is work for it

            await upgrade(engine)
        log.info("database schema at %s", HEAD)
        yield Database(engine, async_sessionmaker(engine, expire_on_commit=False))
    finally:
        await engine.dispose()


@dataclass
class InProcessWorkers:
    """The embedded mode's workers: the bus that runs the consumers as events are published,
    the reminder timer, the notification dispatcher and (when configured) audit retention."""

    bus: EmbeddedBus
    dead_letters: DeadLetters  # what the bus's consumers could not apply
    timer: ReminderTimer
    dispatcher: NotificationDispatcher
    retention: AuditRetention | None
    hub: Hub  # the realtime gateway's connections, fed as the realtime consumer commits
    feed_taps: FeedTaps  # the hub first; then whatever else hears of committed feed rows

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the timer, the dispatcher and retention for the duration of the block."""
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(self.timer.run(stop), name="reminders"),
            asyncio.create_task(self.dispatcher.run(stop), name="notification-dispatch"),
        ]
        if self.retention is not None:
            retention = self.retention.run_periodically(stop)
            tasks.append(asyncio.create_task(retention, name="audit-retention"))
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks)


@dataclass
class Runtime:
    """The wired parts of the API process; close() releases them."""

    settings: Settings
    engine: AsyncEngine
    service: TaskService
    reminders: ReminderService
    relay: OutboxRelay
    publisher: EventPublisher
    history: HistoryReader  # the audit log: the database embedded, the audit app with Dapr
    foreground: Foreground  # the requests this process serves, which its background work waits for
    mcp_sessions: SessionRegistry  # the MCP clients reminders reach (embedded: the mcp channel)
    tokens: PersonalTokens  # the personal access tokens the HTTP transports accept
    workers: InProcessWorkers | None  # embedded: the workers run here; Dapr: in their own apps
    scrape: Scrape  # what GET /metrics answers, the outbox backlog read when scraped
    calendar: CalendarFiles  # iCalendar export, import and feeds
    clock: Clock = field(default_factory=SystemClock)  # the one every part above was given
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the outbox relay, the in-process workers if any, and the metrics port if set,
        for the block's duration."""
        stop = asyncio.Event()
        relay = asyncio.create_task(self.relay.run(stop), name="outbox-relay")
        try:
            async with self.serving_metrics():
                if self.workers is None:
                    yield
                else:
                    async with self.workers.running():
                        yield
        finally:
            stop.set()
            await relay

    @contextlib.asynccontextmanager
    async def serving_metrics(self) -> AsyncIterator[None]:
        """GET /metrics on DUEFLOW_METRICS_PORT for the block's duration, when it is set."""
        if self.settings.metrics_port is None:
            yield
            return
        from dueflow.metrics_port import metrics_served

        port, host = self.settings.metrics_port, self.settings.metrics_host
        async with metrics_served(self.scrape, host, port):
            yield

    async def close(self) -> None:
        """Release everything wired, the database last."""
        await self._stack.aclose()


async def bootstrap(
    settings: Settings,
    clock: Clock | None = None,
    publisher: EventPublisher | None = None,
    work: WorkLedger | None = None,
) -> Runtime:
    """Wire the API process; `publisher` stands in for the configured bus (tests); with
    `work`, the relay charges each user for the events it handles for them (domain.work)."""
    clock = clock or SystemClock()
    stack = contextlib.AsyncExitStack()
    database = await stack.enter_async_context(open_database(settings))
    try:
        runtime = await _wire(settings, clock, database, stack, publisher, work)
    except BaseException:
        await stack.aclose()
        raise
    return runtime


async def _relay_engine(settings: Settings, stack: contextlib.AsyncExitStack) -> AsyncEngine:
    """PostgreSQL connections of the relay's own. Drawing from the requests' pool, a pass queued
    behind a burst of requests for a connection, while a live view waited on it
    (bench_realtime.py). A pass holds one; deliver_now() and the backlog gauge may add one."""
    engine = make_engine(settings.resolved_database_url(), pool_size=RELAY_CONNECTIONS)
    stack.push_async_callback(engine.dispose)
    return engine


async def _wire(
    settings: Settings,
    clock: Clock,
    database: Database,
    stack: contextlib.AsyncExitStack,
    publisher: EventPublisher | None,
    work: WorkLedger | None = None,
) -> Runtime:
    from mcp_server.sessions import McpChannel, SessionRegistry

    embedded = settings.event_bus == "embedded"
    mcp_sessions = SessionRegistry()
    wakes: list[Callable[[], None]] = []  # who a commit with events wakes: relay, timer

    def after_commit() -> None:
        for wake in wakes:
            wake()

    reminder_store = SqlReminderRepository if embedded else _dapr_state(settings, stack)
    # embedded, the views (schedule, history) are built here: a read delivers the reader's own
    # events first; with Dapr other processes build them, and a read waits for nothing
    views: ViewFreshness = (
        OwnWritesFirst(database.engine, lambda: relay.deliver_now())
        if embedded
        else EventuallyConsistent()
    )
    reminders = _reminder_service(
        database.sessions, clock, settings, reminder_store, after_commit, views=views
    )
    foreground = Foreground()  # requests and imminent reminders: background work waits
    workers = None
    same_database: SameDatabaseBus | None = None
    if embedded:
        channels = [McpChannel(mcp_sessions)]  # the workers run here, beside the sessions
        workers = _in_process_workers(
            settings, clock, database, reminders, foreground, channels, stack
        )
        wakes.append(workers.timer.wake)
        if publisher is None:
            # the consumers share the outbox's database: a relay pass delivers in one
            # transaction with them (bench_events.py: live rate and commit -> consumer latency)
            publisher = same_database = workers.bus
    elif publisher is None:
        publisher = await _dapr_publisher(settings, stack)
    sqlite = database.engine.dialect.name == "sqlite"
    relay = OutboxRelay(
        database.engine if sqlite else await _relay_engine(settings, stack),
        publisher,
        clock,
        poll_seconds=settings.relay_poll_seconds,
        foreground=foreground,
        patience_seconds=settings.relay_patience_seconds,
        same_database=same_database,
        batch_size=RELAY_ROWS_SQLITE if sqlite else 200,
        batch_bytes=RELAY_BYTES_SQLITE if sqlite else BATCH_BYTES,
        gather_seconds=RELAY_GATHER_SQLITE if sqlite else GATHER_SECONDS,
        work=work,
        # with a live view open, a change goes out as soon as it commits (the gateway's hub)
        watched=workers.hub.watched if workers is not None else None,
    )
    wakes.insert(0, relay.notify)
    units = partial(SqlUnitOfWork, database.sessions, relay.notify)
    service = TaskService(
        units,
        clock,
        default_timezone=settings.timezone,
        source=SOURCE,
    )
    calendar = calendar_files(units, service, database.engine, clock)
    stack.push_async_callback(calendar.aclose)  # before the database closes
    return Runtime(
        settings,
        database.engine,
        service,
        reminders,
        relay,
        publisher,
        _history_reader(settings, database.sessions, stack, views),
        foreground,
        mcp_sessions,
        PersonalTokens(SqlTokenStore(database.engine), clock),
        workers=workers,
        scrape=api_scrape(database.engine, clock),
        calendar=calendar,
        clock=clock,
        _stack=stack,
    )


def calendar_files(
    units: UnitOfWorkFactory, service: TaskService, engine: AsyncEngine, clock: Clock
) -> CalendarFiles:
    """The iCalendar use cases on the units of work `service` writes through."""
    exchange = CalendarExchange(units, clock, service.arguments, SOURCE)
    feeds = CalendarFeeds(SqlFeedStore(engine), SqlTokenStore(engine), clock)
    renders = FeedRenderCache(engine)
    return CalendarFiles(exchange, feeds, clock, service.default_timezone, renders)


def api_scrape(engine: AsyncEngine, clock: Clock) -> Scrape:
    """A scrape of the API process: the registry, with the outbox backlog read from the
    database at that moment (one query, only when scraped)."""

    async def backlog() -> None:
        found = await outbox_backlog(engine, clock)
        OUTBOX_BACKLOG.set(found.size)
        OUTBOX_OLDEST_AGE.set(found.oldest_age_seconds or 0.0)

    return Scrape([backlog, pool_refresher(engine)])


async def _dapr_publisher(settings: Settings, stack: contextlib.AsyncExitStack) -> EventPublisher:
    """The sidecar's pub/sub, connected (it waits for the sidecar's health up to a timeout)."""
    from domain.adapters.dapr_publisher import DaprPublisher

    connecting = DaprPublisher.connect(
        pubsub=settings.dapr_pubsub,
        grpc_address=settings.dapr_grpc_address,
        http_endpoint=settings.dapr_http_endpoint,
        health_timeout=settings.dapr_health_timeout,
    )
    return await stack.enter_async_context(connecting)


def _reminder_service(
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    settings: Settings,
    store: ReminderRepositoryFactory,
    after_commit: Callable[[], None] | None = None,
    source: str = SOURCE,
    views: ViewFreshness | None = None,
) -> ReminderService:
    return ReminderService(
        partial(SqlUnitOfWork, sessions, after_commit, reminder_store=store),
        clock,
        default_timezone=settings.timezone,
        source=source,
        firing_unit_of_work=partial(
            SqlUnitOfWork, sessions, after_commit, urgent=True, reminder_store=store
        ),
        views=views,
    )


def _in_process_workers(
    settings: Settings,
    clock: Clock,
    database: Database,
    reminders: ReminderService,
    foreground: Foreground,
    channels: Sequence[Channel],
    stack: contextlib.AsyncExitStack,
) -> InProcessWorkers:
    timer = ReminderTimer(reminders, clock, foreground=foreground)
    hub = Hub(settings.realtime_queue_size)
    taps = FeedTaps(hub.deliver)
    config = settings.notification_config(mcp=True)
    dispatcher = build_dispatcher(database.engine, config, clock, channels, foreground)
    stack.push_async_callback(dispatcher.aclose)
    workers = build_consumers(
        clock,
        settings.timezone,
        reminders_changed=timer.wake,
        notifications=config,
        wake_dispatcher=dispatcher.notify,
        realtime=taps.deliver,
        realtime_keep=settings.realtime_keep,
    ).values()
    # the feed render cache follows task changes in this process (workers/calendar.py)
    consumers = [*workers, calendar_consumer()]
    letters = DeadLetters(database.sessions, list(consumers), clock)
    # on SQLite a consumer transaction holds the one write lock: short batches let a reminder
    # that comes due meanwhile take it
    limit = 10 if database.engine.dialect.name == "sqlite" else 200
    bus = EmbeddedBus(database.sessions, consumers, clock, letters, batch_limit=limit)
    retention = None
    if settings.audit_retention_days is not None:
        from workers.retention import AuditRetention  # its leases load the PostgreSQL dialect

        retention = AuditRetention(database.sessions, clock, settings.audit_retention_days)
    return InProcessWorkers(bus, letters, timer, dispatcher, retention, hub, taps)


def dead_letters(database: Database, settings: Settings) -> DeadLetters:
    """The dead letters of the in-process consumers, to list and replay (`dueflow events`)."""
    clock = SystemClock()
    consumers = build_consumers(
        clock, settings.timezone, notifications=settings.notification_config(mcp=False)
    )
    return DeadLetters(database.sessions, [*consumers.values(), calendar_consumer()], clock)


def _dapr_state(settings: Settings, stack: contextlib.AsyncExitStack) -> ReminderRepositoryFactory:
    """The reminder schedule in the Dapr state store `dueflow worker reminders` keeps."""
    from domain.adapters.dapr_state_reminders import DaprStateReminders

    state = DaprStateReminders(
        settings.dapr_statestore,
        settings.dapr_grpc_address,
        settings.dapr_http_endpoint,
        timeout=settings.dapr_health_timeout,
    )
    stack.push_async_callback(state.aclose)
    log.info("reminders: the schedule lives in the Dapr state store %r", state.store)
    return shared_repository(state)


def _history_reader(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    stack: contextlib.AsyncExitStack,
    views: ViewFreshness,
) -> HistoryReader:
    """Embedded, the database; with Dapr, the audit app by service invocation."""
    if settings.event_bus != "dapr":
        return SqlHistory(sessions, views)
    if not settings.internal_token:
        log.warning(
            "task_history is unavailable: with DUEFLOW_EVENT_BUS=dapr it asks the audit app, which"
            " needs DUEFLOW_INTERNAL_TOKEN on both sides"
        )
        return UnconfiguredHistory()
    from domain.adapters.dapr_history import DaprHistory

    reader = DaprHistory(
        settings.audit_app_id, settings.internal_token, settings.dapr_http_endpoint
    )
    stack.push_async_callback(reader.aclose)
    log.info("task_history reads the audit app %r by Dapr service invocation", reader.app_id)
    return reader


class UnconfiguredHistory:
    """The history of a Dapr-mode server that has no internal token to ask the audit app with."""

    async def history(self, query: HistoryQuery) -> HistoryPage:
        raise HistoryUnavailable(
            "The history is unavailable: with DUEFLOW_EVENT_BUS=dapr it is read from the audit app"
            " by Dapr service invocation, which needs a shared token. Fix: set the same"
            " DUEFLOW_INTERNAL_TOKEN on this server and on `dueflow worker audit`."
        )


@dataclass(frozen=True)
class WorkerAdapters:
    """What a worker reaches outside its database: Dapr in production, stand-ins in tests."""

    invoke: RecurrenceInvoker | None = None  # next occurrences through the task API
    jobs: JobScheduler | None = None  # the reminders worker's exact-time jobs
    reminder_store: ReminderRepositoryFactory = (
        SqlReminderRepository  # the reminders worker's schedule
    )


@contextlib.asynccontextmanager
async def worker_app(
    name: str,
    settings: Settings,
    clock: Clock | None = None,
    adapters: WorkerAdapters | None = None,
) -> AsyncIterator[Starlette]:
    """The Dapr app of worker `name`: its subscriptions, topic routes and its own routes."""
    from workers.audit_api import audit_routes
    from workers.dapr_app import build_app, running_beside

    if name not in WORKER_NAMES:
        known = ", ".join(WORKER_NAMES)
        raise WorkerSetupError(f"No worker named {name!r}. Fix: use one of: {known}.")
    clock = clock or SystemClock()
    adapters = adapters or WorkerAdapters()
    config = settings.notification_config(mcp=False)  # no MCP session lives in a worker
    async with contextlib.AsyncExitStack() as stack:
        try:
            database = await stack.enter_async_context(open_database(settings))
        except SettingsError as exc:
            raise WorkerSetupError(str(exc)) from None
        dispatcher = build_dispatcher(database.engine, config, clock)
        stack.push_async_callback(dispatcher.aclose)
        hub = Hub(settings.realtime_queue_size) if name == REALTIME else None
        consumer = build_consumers(
            clock,
            settings.timezone,
            adapters.invoke,
            jobs=adapters.jobs,
            notifications=config,
            wake_dispatcher=dispatcher.notify,
            reminder_store=adapters.reminder_store,
            realtime=hub.deliver if hub is not None else None,
            realtime_keep=settings.realtime_keep,
        )[name]
        runner: ConsumerRunner
        if adapters.invoke is not None:
            runner = InvokingRunner(database.sessions, clock, adapters.invoke)
        elif name == REALTIME:
            runner = FeedRunner(database.sessions, clock)
        else:
            runner = ConsumerRunner(database.sessions, clock)
        routes: Sequence[BaseRoute] = []
        lifespan = None
        if name == REMINDERS:
            service = _reminder_service(
                database.sessions, clock, settings, adapters.reminder_store, source=REMINDERS_SOURCE
            )
            routes = reminder_routes(service, clock)
        elif name == AUDIT:
            routes = audit_routes(
                database.sessions, clock, settings.internal_token, settings.audit_retention_days
            )
        elif name == NOTIFICATIONS:
            lifespan = running_beside(dispatcher.run, "notification-dispatch")
        elif hub is not None:
            from dueflow.gateway import gateway_routes, realtime_app

            routes = gateway_routes(settings, database.engine, database.sessions, clock, hub)
            yield realtime_app(settings, database.sessions, consumer, runner, hub, routes)
            return
        yield build_app(
            [consumer],
            runner,
            settings.dapr_pubsub,
            sessions=database.sessions,
            routes=routes,
            lifespan=lifespan,
        )


async def serve_worker(name: str, settings: Settings, host: str, port: int) -> None:
    """Serve worker `name` as a Dapr app with uvicorn until SIGINT/SIGTERM, its Dapr adapters
    reaching the sidecar at the configured addresses."""
    async with contextlib.AsyncExitStack() as stack:
        adapters = await _dapr_adapters(name, settings, stack)
        app = await stack.enter_async_context(worker_app(name, settings, adapters=adapters))
        settle_heap()
        topics = ", ".join(build_consumers(SystemClock())[name].topics)
        log.info(
            "worker %s serving Dapr app on http://%s:%d (pub/sub %r; topics: %s)",
            *(name, host, port, settings.dapr_pubsub, topics),
        )
        await serve_asgi(app, host, port)


async def _dapr_adapters(
    name: str, settings: Settings, stack: contextlib.AsyncExitStack
) -> WorkerAdapters:
    """The Dapr adapters worker `name` uses, closed with `stack`."""
    if name == REMINDERS:
        from domain.adapters.dapr_jobs import DaprJobs

        jobs = DaprJobs(settings.dapr_grpc_address, settings.dapr_http_endpoint)
        stack.push_async_callback(jobs.aclose)
        return WorkerAdapters(jobs=jobs, reminder_store=_dapr_state(settings, stack))
    if name == RECURRENCE and settings.internal_token:
        from workers.dapr_invoker import DaprInvoker

        invoker = DaprInvoker(
            settings.api_app_id, settings.internal_token, settings.dapr_http_endpoint
        )
        stack.push_async_callback(invoker.aclose)
        log.info(
            "recurrence: next occurrences through the task API (Dapr service invocation of"
            " app %r, %s)",
            *(settings.api_app_id, invoker.url),
        )
        return WorkerAdapters(invoke=invoker)
    if name == RECURRENCE:
        log.info(
            "recurrence: next occurrences written to the database directly (set"
            " DUEFLOW_INTERNAL_TOKEN and DUEFLOW_API_APP_ID to go through the task API)"
        )
    return WorkerAdapters()


async def serve_asgi(app: Starlette, host: str, port: int) -> None:
    """Serve `app` with uvicorn, logging through this process's handlers (stderr)."""
    import uvicorn

    # no permessage-deflate on the realtime worker's sockets: see `dueflow serve` (cli.py)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        http="httptools",  # the workers' Dapr deliveries are HTTP requests: see pyproject.toml
        ws_per_message_deflate=False,
    )
    await uvicorn.Server(config).serve()
