"""The settings and runtimes the tests build, on the fixed clock's moment."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from domain.adapters.schema import upgrade
from domain.adapters.sql import make_engine
from domain.ports import Clock
from dueflow.bootstrap import Runtime, bootstrap
from dueflow.settings import Settings

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


def settings_for(database_url: str, **extra: str) -> Settings:
    """The settings of a process on `database_url`; `extra` adds DUEFLOW_* variables by their
    names without the prefix (e.g. INTERNAL_TOKEN=...)."""
    return Settings.from_env(
        {
            "DUEFLOW_DATABASE_URL": database_url,
            **{f"DUEFLOW_{name}": value for name, value in extra.items()},
        }
    )


async def embedded_runtime(
    database_url: str, data_dir: Path, clock: Clock, **extra: str
) -> Runtime:
    """A runtime (embedded bus, Europe/Berlin) on `database_url`, migrated; `extra` adds DUEFLOW_*
    settings by their names without the prefix."""
    settings = settings_for(database_url, TIMEZONE="Europe/Berlin", DATA_DIR=str(data_dir), **extra)
    if database_url.startswith("sqlite"):
        # bootstrap upgrades only the embedded default; an explicit SQLite URL is migrated here
        engine = make_engine(database_url)
        await upgrade(engine)
        await engine.dispose()
    return await bootstrap(settings, clock=clock)
