"""The test databases and reading them directly, to assert on what was (not) written."""

from __future__ import annotations

import json
import os
from typing import Any

import asyncpg
import sqlalchemy as sa

from domain.adapters.sql import make_engine
from domain.ports import OutboundMessage
from dueflow.bootstrap import Runtime

PG_ADMIN_URL = os.environ.get("DUEFLOW_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
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
    "access_tokens",
    "access_log",
    "calendar_links",
    "calendar_feeds",
    "calendar_renders",
    "realtime_changes",
    "realtime_heads",
    "realtime_grants",
)


def postgres_database_url(name: str) -> str:
    """The URL of database `name` on the test server."""
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


async def admin(statement: str) -> None:
    """Run one statement on the test server's admin database (CREATE / DROP DATABASE)."""
    connection = await asyncpg.connect(PG_ADMIN_URL.replace("postgresql+asyncpg", "postgresql"))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def truncate(url: str) -> None:
    """Empty every table of the database at `url`."""
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


async def rows(runtime: Runtime, sql: str, **params: object) -> list[sa.Row[tuple[object, ...]]]:
    """Read the database directly, to assert on what was (not) written."""
    async with runtime.engine.connect() as conn:
        return list((await conn.execute(sa.text(sql), params)).all())


async def scalar(runtime: Runtime, sql: str, **params: object) -> int:
    """The whole number the query answers (a count, say)."""
    return int((await rows(runtime, sql, **params))[0][0])


def decoded(value: Any) -> Any:
    """A JSON column's value: PostgreSQL's driver decodes it, SQLite's answers the text."""
    return json.loads(value) if isinstance(value, str | bytes) else value


async def envelopes(runtime: Runtime, where: str = "1 = 1", **params: object) -> list[Any]:
    """The outbox's event envelopes in commit order; `where` filters on the outbox's columns."""
    found = await rows(runtime, f"SELECT payload FROM outbox WHERE {where} ORDER BY id", **params)
    return [decoded(payload) for (payload,) in found]


def messages(found: list[Any], topic: str = "task-events") -> list[OutboundMessage]:
    """Envelopes as the relay hands them to a bus on `topic`."""
    return [OutboundMessage(topic, e["event_id"], e["event_type"], e["task_id"], e) for e in found]


async def emptied_bench_database(admin_url: str, name: str) -> str:
    """The URL of PostgreSQL database `name` beside `admin_url`'s, created when missing and
    migrated down and up again: a benchmark's run starts from an empty schema."""
    from domain.adapters.schema import downgrade, upgrade

    admin = await asyncpg.connect(admin_url)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = f"{admin_url.rpartition('/')[0]}/{name}"
    engine = make_engine(url)
    try:
        await downgrade(engine)
        await upgrade(engine)
    finally:
        await engine.dispose()
    return url
