"""Wire one Dueflow process from its settings: engine, schema, service, relay and event bus."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from domain.adapters.foreground import Foreground
from domain.adapters.outbox import OutboxRelay
from domain.adapters.schema import current_revision, head_revision, upgrade
from domain.adapters.sql import SqlUnitOfWork, make_engine
from domain.clock import SystemClock
from domain.ports import Clock, EventPublisher
from domain.service import TaskService
from mcp_server.settings import Settings, SettingsError
from workers.embedded import EmbeddedBus
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
    foreground: Foreground  # the requests this process serves, which its relay gives way to
    _closers: list[contextlib.AsyncExitStack] = field(default_factory=list)

    @contextlib.asynccontextmanager
    async def relaying(self) -> AsyncIterator[None]:
        """Run the outbox relay in the background for the duration of the block."""
        stop = asyncio.Event()
        task = asyncio.create_task(self.relay.run(stop), name="outbox-relay")
        try:
            yield
        finally:
            stop.set()
            await task

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
        consumers = build_consumers(clock, settings.timezone).values()
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
        foreground = Foreground()
        relay = OutboxRelay(
            engine,
            publisher,
            clock,
            poll_seconds=settings.relay_poll_seconds,
            foreground=foreground,
            patience_seconds=settings.relay_patience_seconds,
        )
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
    return Runtime(settings, engine, service, relay, publisher, embedded_bus, foreground, [stack])


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
