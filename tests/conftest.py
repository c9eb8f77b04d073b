"""Shared fixtures: every storage-backed test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from fastmcp import Client, FastMCP

from domain.adapters.schema import downgrade, upgrade
from domain.adapters.sql import make_engine
from domain.clock import FixedClock
from dueflow.bootstrap import Runtime, bootstrap
from dueflow.settings import Settings
from mcp_server.server import build_server
from tests.fakes.dapr_sidecar import FakeDaprSidecar

PG_ADMIN_URL = os.environ.get("DUEFLOW_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
# one database per test run, so runs side by side (a developer's and CI's) never share rows
PG_DATABASE = f"dueflow_test_{os.getpid()}"
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
TABLES = (
    "task_tags",
    "outbox",
    "idempotency_keys",
    "tasks",
    "processed_events",
    "dead_letters",
    "audit_log",
    "reminder_schedule",
    "notification_deliveries",
    "leases",
)


def _pg_url() -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{PG_DATABASE}"


async def _admin(statement: str) -> None:
    admin = await asyncpg.connect(PG_ADMIN_URL.replace("postgresql+asyncpg", "postgresql"))
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


async def _prepare_postgres() -> None:
    await _admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}"')
    await _admin(f'CREATE DATABASE "{PG_DATABASE}"')
    engine = make_engine(_pg_url())
    try:
        await upgrade(engine)
        await downgrade(engine)  # the migration runs both ways
        await upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A migrated PostgreSQL database; under CI its absence fails the run instead of skipping."""
    try:
        asyncio.run(_prepare_postgres())
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL must be reachable under CI ({PG_ADMIN_URL}): {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    yield _pg_url()
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'dueflow.db'}"
    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(_truncate(url))
    return url


async def _truncate(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture
async def sidecar() -> AsyncIterator[FakeDaprSidecar]:
    """A running fake Dapr sidecar on free loopback ports; stopped at the end."""
    fake = FakeDaprSidecar()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
async def runtime(database_url: str, clock: FixedClock, tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = Settings.from_env(
        {
            "DUEFLOW_DATABASE_URL": database_url,
            "DUEFLOW_TIMEZONE": "Europe/Berlin",
            "DUEFLOW_DATA_DIR": str(tmp_path),
        }
    )
    if database_url.startswith("sqlite"):
        # bootstrap upgrades only the embedded default; an explicit SQLite URL is migrated here
        engine = make_engine(database_url)
        await upgrade(engine)
        await engine.dispose()
    wired = await bootstrap(settings, clock=clock)
    yield wired
    await wired.close()


def settings_for(database_url: str, **extra: str) -> Settings:
    """The settings of a process on `database_url`; `extra` adds DUEFLOW_* variables by their
    names without the prefix (e.g. INTERNAL_TOKEN=...)."""
    return Settings.from_env(
        {
            "DUEFLOW_DATABASE_URL": database_url,
            **{f"DUEFLOW_{name}": value for name, value in extra.items()},
        }
    )


def server_for(runtime: Runtime, user: str) -> FastMCP:
    """The MCP server of `runtime` acting as `user` (the stdio way: no token)."""
    return build_server(runtime.service, user, reminders=runtime.reminders, history=runtime.history)


@pytest.fixture
async def alice(runtime: Runtime) -> AsyncIterator[Client]:
    async with Client(server_for(runtime, "alice")) as client:
        yield client


@pytest.fixture
async def bob(runtime: Runtime) -> AsyncIterator[Client]:
    async with Client(server_for(runtime, "bob")) as client:
        yield client


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must succeed; answer its structured content."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def rows(runtime: Runtime, sql: str, **params: object) -> list[sa.Row[tuple[object, ...]]]:
    """Read the database directly, to assert on what was (not) written."""
    async with runtime.engine.connect() as conn:
        return list((await conn.execute(sa.text(sql), params)).all())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI a skipped test is a failure: every suite here must run."""
    if not os.environ.get("CI"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == 0:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped; every test must run under CI")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
