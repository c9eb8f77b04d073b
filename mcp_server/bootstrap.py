"""Wire one Dueflow process from its settings: engine, schema, service, relay and event bus."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from domain.adapters.dapr_history import DaprHistory
from domain.adapters.foreground import Foreground
from domain.adapters.history import SqlHistory
from domain.adapters.outbox import OutboxRelay
from domain.adapters.reminder_sql import SqlReminderRepository
from domain.adapters.schema import current_revision, head_revision, upgrade
from domain.adapters.sql import ReminderStore, SqlUnitOfWork, make_engine, shared_store
from domain.clock import SystemClock
from domain.history import HistoryPage, HistoryQuery, HistoryReader, HistoryUnavailable
from domain.ports import Clock, EventPublisher
from domain.reminder_service import ReminderService
from domain.service import TaskService
from mcp_server.sessions import McpChannel, SessionRegistry
from mcp_server.settings import Settings, SettingsError
from workers.embedded import EmbeddedBus
from workers.notification_dispatch import NotificationDispatcher, build_dispatcher
from workers.registry import build_consumers
from workers.reminder_timer import ReminderTimer
from workers.retention import AuditRetention

log = logging.getLogger("dueflow")


@dataclass
class Runtime:
    """The wired parts of a process; close() releases them."""

    settings: Settings
    engine: AsyncEngine
    service: TaskService
    relay: OutboxRelay
    publisher: EventPublisher
    embedded_bus: EmbeddedBus  # also the dead-letter store of this process's consumers
    reminders: ReminderService
    reminder_timer: ReminderTimer
    history: HistoryReader  # the audit log: the database embedded, the audit app with Dapr
    retention: AuditRetention | None  # run by this process when embedded and configured
    notifications: NotificationDispatcher
    mcp_sessions: SessionRegistry  # the MCP clients the notifications' mcp channel reaches
    foreground: Foreground  # the requests this process serves, which its relay gives way to
    _closers: list[contextlib.AsyncExitStack] = field(default_factory=list)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run this process's background work for the duration of the block: the outbox relay
        and, when the workers run in-process (embedded bus), the reminder timer and the
        notification dispatcher (in Dapr mode their workers run them)."""
        stop = asyncio.Event()
        tasks = [asyncio.create_task(self.relay.run(stop), name="outbox-relay")]
        if self.publisher is self.embedded_bus:
            tasks.append(asyncio.create_task(self.reminder_timer.run(stop), name="reminders"))
            tasks.append(
                asyncio.create_task(self.notifications.run(stop), name="notification-dispatch")
            )
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    @contextlib.asynccontextmanager
    async def retaining(self) -> AsyncIterator[None]:
        """Run audit retention on a timer for the duration of the block, if this process does."""
        if self.retention is None:
            yield
            return
        stop = asyncio.Event()
        tasks = [asyncio.create_task(self.retention.run_periodically(stop), name="audit-retention")]
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    async def close(self) -> None:
        for stack in reversed(self._closers):
            await stack.aclose()
        await self.engine.dispose()


async def bootstrap(
    settings: Settings, clock: Clock | None = None, publisher: EventPublisher | None = None
) -> Runtime:
    """Open the database (upgrading an embedded one) and build the service, relay and bus."""
    clock = clock or SystemClock()
    if settings.embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url())
    stack = contextlib.AsyncExitStack()
    try:
        await _ensure_schema(engine, upgrade_it=settings.embedded)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        committed: list[Callable[[], None]] = []  # the relay's and the timer's wake-ups

        def after_commit() -> None:
            for wake in committed:
                wake()

        reminder_store = _reminder_store(settings, stack)
        reminders = ReminderService(
            partial(SqlUnitOfWork, sessions, after_commit, reminder_store=reminder_store),
            clock,
            default_timezone=settings.timezone,
            source="dueflow.mcp_server",
            firing_unit_of_work=partial(
                SqlUnitOfWork, sessions, after_commit, urgent=True, reminder_store=reminder_store
            ),
        )
        foreground = Foreground()  # requests and imminent reminders: background work waits
        timer = ReminderTimer(reminders, clock, foreground=foreground)
        # the mcp channel reaches the sessions of this process: only when its workers run here
        mcp_sessions = SessionRegistry()
        in_process = settings.event_bus == "embedded"
        config = settings.notification_config(mcp=in_process)
        extra = [McpChannel(mcp_sessions)] if in_process else []
        notifications = build_dispatcher(engine, config, clock, extra, foreground)
        stack.push_async_callback(notifications.aclose)
        consumers = build_consumers(
            clock,
            settings.timezone,
            reminders_changed=timer.wake,
            notifications=config,
            wake_dispatcher=notifications.notify,
            reminder_store=reminder_store,
        ).values()
        embedded_bus = EmbeddedBus(
            sessions, consumers, clock, batch_limit=10 if engine.dialect.name == "sqlite" else 200
        )
        if publisher is None:
            if settings.event_bus == "dapr":
                from domain.adapters.dapr_publisher import DaprPublisher

                publisher = await stack.enter_async_context(
                    DaprPublisher.connect(
                        pubsub=settings.dapr_pubsub,
                        grpc_address=settings.dapr_grpc_address,
                        http_endpoint=settings.dapr_http_endpoint,
                        health_timeout=settings.dapr_health_timeout,
                    )
                )
            else:
                publisher = embedded_bus
        relay = OutboxRelay(
            engine,
            publisher,
            clock,
            poll_seconds=settings.relay_poll_seconds,
            foreground=foreground,
            patience_seconds=settings.relay_patience_seconds,
        )
        committed.extend([relay.notify, timer.wake])
        service = TaskService(
            partial(SqlUnitOfWork, sessions, relay.notify),
            clock,
            default_timezone=settings.timezone,
            source="dueflow.mcp_server",
        )
        history = _history_reader(settings, sessions, stack)
        retention = None
        if settings.audit_retention_days is not None and settings.event_bus == "embedded":
            retention = AuditRetention(sessions, clock, settings.audit_retention_days)
    except BaseException:
        await stack.aclose()
        await engine.dispose()
        raise
    return Runtime(
        settings,
        engine,
        service,
        relay,
        publisher,
        embedded_bus,
        reminders,
        timer,
        history,
        retention,
        notifications,
        mcp_sessions,
        foreground,
        [stack],
    )


def _reminder_store(settings: Settings, stack: contextlib.AsyncExitStack) -> ReminderStore:
    """Embedded, the SQL table; with Dapr, the state store `dueflow worker reminders` keeps."""
    if settings.event_bus != "dapr":
        return SqlReminderRepository
    from domain.adapters.dapr_state_reminders import DaprStateReminders

    state = DaprStateReminders(
        settings.dapr_statestore,
        settings.dapr_grpc_address,
        settings.dapr_http_endpoint,
        timeout=settings.dapr_health_timeout,
    )
    stack.push_async_callback(state.aclose)
    log.info("reminders: the schedule lives in the Dapr state store %r", state.store)
    return shared_store(state)


def _history_reader(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], stack: contextlib.AsyncExitStack
) -> HistoryReader:
    """Embedded, the database; with Dapr, the audit app by service invocation."""
    if settings.event_bus != "dapr":
        return SqlHistory(sessions)
    if not settings.internal_token:
        log.warning(
            "task_history is unavailable: with DUEFLOW_EVENT_BUS=dapr it asks the audit app, which"
            " needs DUEFLOW_INTERNAL_TOKEN on both sides"
        )
        return UnconfiguredHistory()
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


async def _ensure_schema(engine: AsyncEngine, upgrade_it: bool) -> None:
    if upgrade_it:
        await upgrade(engine)
        return
    current, head = await current_revision(engine), head_revision()
    if current != head:
        raise SettingsError(
            f"The database schema is at {current or 'nothing'}, the code needs {head}."
            " Fix: run `dueflow db upgrade` with the same DUEFLOW_DATABASE_URL."
        )
    log.info("database schema at %s", current)
