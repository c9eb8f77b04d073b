"""Wire one Dueflow process from its settings: engine, schema, unit of work, service."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from domain.adapters.schema import current_revision, head_revision, upgrade
from domain.adapters.sql import SqlUnitOfWork, make_engine
from domain.clock import SystemClock
from domain.ports import Clock
from domain.service import TaskService
from mcp_server.settings import Settings, SettingsError

log = logging.getLogger("dueflow")


@dataclass
class Runtime:
    """The wired parts of a process; close() releases them."""

    settings: Settings
    engine: AsyncEngine
    service: TaskService

    async def close(self) -> None:
        await self.engine.dispose()


async def bootstrap(settings: Settings, clock: Clock | None = None) -> Runtime:
    """Open the database (upgrading an embedded one), and build the task service."""
    if settings.embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url())
    try:
        await _ensure_schema(engine, upgrade_it=settings.embedded)
    except BaseException:
        await engine.dispose()
        raise
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    service = TaskService(
        partial(SqlUnitOfWork, sessions),
        clock or SystemClock(),
        default_timezone=settings.timezone,
        source="dueflow.mcp_server",
    )
    return Runtime(settings=settings, engine=engine, service=service)


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


__all__ = ["AsyncSession", "Runtime", "bootstrap"]
