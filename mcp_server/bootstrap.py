"""Wire one Dueflow process from its settings: engine, schema, service, relay and event bus."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from domain.adapters.outbox import OutboxRelay
from domain.adapters.schema import current_revision, head_revision, upgrade
from domain.adapters.sql import SqlUnitOfWork, make_engine
from domain.clock import SystemClock
from domain.ports import Clock, EventPublisher
from domain.service import TaskService
from mcp_server.sessions import McpChannel, SessionRegistry
from mcp_server.settings import Settings, SettingsError
from workers.embedded import EmbeddedBus
from workers.notification_dispatch import NotificationDispatcher, build_dispatcher
from workers.registry import build_consumers

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
    notifications: NotificationDispatcher
    mcp_sessions: SessionRegistry  # the MCP clients the notifications' mcp channel reaches
    _closers: list[contextlib.AsyncExitStack] = field(default_factory=list)

    @contextlib.asynccontextmanager
    async def relaying(self) -> AsyncIterator[None]:
        """Run the outbox relay in the background for the duration of the block, and with the
        embedded bus the notification dispatcher too (in Dapr mode its worker runs it)."""
        stop = asyncio.Event()
        tasks = [asyncio.create_task(self.relay.run(stop), name="outbox-relay")]
        if self.settings.event_bus == "embedded":
            tasks.append(
                asyncio.create_task(self.notifications.run(stop), name="notification-dispatch")
            )
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
        # the mcp channel reaches the sessions of this process: only when its workers run here
        mcp_sessions = SessionRegistry()
        in_process = settings.event_bus == "embedded"
        config = settings.notification_config(mcp=in_process)
        extra = [McpChannel(mcp_sessions)] if in_process else []
        notifications = build_dispatcher(engine, config, clock, extra)
        stack.push_async_callback(notifications.aclose)
        consumers = build_consumers(
            clock, settings.timezone, notifications=config, wake_dispatcher=notifications.notify
        ).values()
        embedded_bus = EmbeddedBus(sessions, consumers, clock)
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
        relay = OutboxRelay(engine, publisher, clock, poll_seconds=settings.relay_poll_seconds)
        service = TaskService(
            partial(SqlUnitOfWork, sessions, relay.notify),
            clock,
            default_timezone=settings.timezone,
            source="dueflow.mcp_server",
        )
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
        notifications,
        mcp_sessions,
        [stack],
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
