"""Shared fixtures: every storage-backed test runs on SQLite and on PostgreSQL. The helpers the
test modules share live in tests/support."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from fastmcp import Client

from domain.adapters.schema import downgrade, upgrade
from domain.adapters.sql import make_engine
from domain.clock import FixedClock
from dueflow.bootstrap import Runtime
from tests.fakes.dapr_sidecar import FakeDaprSidecar
from tests.support.database import PG_ADMIN_URL, admin, postgres_database_url, truncate
from tests.support.runtimes import NOW, embedded_runtime
from tests.support.tools import server_for

# one database per test run, so runs side by side (a developer's and CI's) never share rows
PG_DATABASE = f"dueflow_test_{os.getpid()}"


async def _prepare_postgres() -> None:
    await admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}"')
    await admin(f'CREATE DATABASE "{PG_DATABASE}"')
    engine = make_engine(postgres_database_url(PG_DATABASE))
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
    yield postgres_database_url(PG_DATABASE)
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'dueflow.db'}"
    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(truncate(url))
    return url


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
    wired = await embedded_runtime(database_url, tmp_path, clock)
    yield wired
    await wired.close()


@pytest.fixture
async def alice(runtime: Runtime) -> AsyncIterator[Client]:
    async with Client(server_for(runtime, "alice")) as client:
        yield client


@pytest.fixture
async def bob(runtime: Runtime) -> AsyncIterator[Client]:
    async with Client(server_for(runtime, "bob")) as client:
        yield client


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI a skipped test is a failure: every suite here must run."""
    if not os.environ.get("CI"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == 0:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped; every test must run under CI")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
