"""Audit retention: only entries older than the window go, in batches, one run at a time; the
log refuses updates; the setting, the embedded timer and `dueflow audit prune`. Both databases."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.adapters.leases import Leases
from domain.adapters.schema import downgrade, upgrade
from domain.adapters.sql import make_engine
from domain.clock import FixedClock
from domain.service import NewTask
from dueflow.bootstrap import Runtime, bootstrap
from dueflow.settings import Settings
from tests.support.database import rows
from tests.support.runtimes import NOW
from tests.support.servers import run_dueflow
from tests.support.waiting import eventually
from workers.retention import LEASE, AuditRetention

DAY = dt.timedelta(days=1)


async def entries_aged(runtime: Runtime, clock: FixedClock, *ages: dt.timedelta) -> None:
    """One task created `age` before NOW for each age, recorded by the audit worker."""
    for age in ages:
        clock.set(NOW - age)
        await runtime.service.add("alice", NewTask(title=f"aged {age}"))
    clock.set(NOW)
    await runtime.relay.drain()


async def titles(runtime: Runtime) -> list[str]:
    return [str(r[0]) for r in await rows(runtime, "SELECT task_title FROM audit_log ORDER BY id")]


async def has_titles(runtime: Runtime, count: int) -> bool:
    return len(await titles(runtime)) == count


async def holds(leases: Leases, holder: str) -> bool:
    return await leases.holder(LEASE) == holder


async def test_retention_removes_only_entries_older_than_the_window(
    runtime: Runtime, clock: FixedClock, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ages = [40 * DAY, 30 * DAY + dt.timedelta(seconds=1), 30 * DAY, 29 * DAY, DAY]
    await entries_aged(runtime, clock, *ages)

    run = await AuditRetention(sessions, clock, days=30).run()

    assert (run.ran, run.deleted, run.batches) == (True, 2, 1)
    assert run.cutoff == NOW - 30 * DAY
    assert await titles(runtime) == [f"aged {age}" for age in ages[2:]]
    assert (await AuditRetention(sessions, clock, days=30).run()).deleted == 0


async def test_retention_deletes_in_bounded_batches_until_none_is_left(
    runtime: Runtime, clock: FixedClock, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await entries_aged(runtime, clock, *[(100 + n) * DAY for n in range(7)], DAY)

    run = await AuditRetention(sessions, clock, days=30, batch=3).run()

    assert (run.deleted, run.batches) == (7, 3)
    assert await titles(runtime) == [f"aged {DAY}"]
    assert await Leases(sessions, clock).holder(LEASE) is None  # released when done


async def test_a_run_skips_while_another_holds_the_lease_and_takes_over_when_it_expires(
    runtime: Runtime, clock: FixedClock, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await entries_aged(runtime, clock, 60 * DAY)
    await Leases(sessions, clock).acquire(LEASE, "crashed-replica", dt.timedelta(minutes=5))

    skipped = await AuditRetention(sessions, clock, days=30).run()
    clock.advance(dt.timedelta(minutes=5))
    taken_over = await AuditRetention(sessions, clock, days=30).run()

    assert (skipped.ran, skipped.deleted) == (False, 0)
    assert (taken_over.ran, taken_over.deleted) == (True, 1)


class PausedRetention(AuditRetention):
    """A retention run that waits at its first batch until told to go on."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.go = asyncio.Event()

    async def _delete_batch(self, cutoff: dt.datetime) -> int:
        await self.go.wait()
        return await super()._delete_batch(cutoff)


async def test_two_concurrent_runs_never_both_run(
    runtime: Runtime, clock: FixedClock, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await entries_aged(runtime, clock, 60 * DAY, 50 * DAY)
    first = PausedRetention(sessions, clock, 30, holder="replica-a")
    running = asyncio.create_task(first.run())
    leases = Leases(sessions, clock)
    await eventually(
        lambda: holds(leases, "replica-a"), what="the first run to take the retention lease"
    )

    second = await AuditRetention(sessions, clock, days=30, holder="replica-b").run()
    first.go.set()
    done = await running

    assert (second.ran, second.deleted) == (False, 0)
    assert (done.ran, done.deleted) == (True, 2)


async def test_the_audit_log_refuses_updates_whoever_asks(
    runtime: Runtime, clock: FixedClock
) -> None:
    await entries_aged(runtime, clock, DAY)

    with pytest.raises(DBAPIError, match="append-only"):
        async with runtime.engine.begin() as conn:
            await conn.execute(sa.text("UPDATE audit_log SET task_title = 'rewritten'"))

    assert await titles(runtime) == [f"aged {DAY}"]


@pytest.mark.parametrize(("value", "days"), [("30", 30), (" 365 ", 365), ("", None), (None, None)])
def test_the_retention_setting_reads_whole_days_or_keeps_forever(
    value: str | None, days: int | None
) -> None:
    env = {} if value is None else {"DUEFLOW_AUDIT_RETENTION_DAYS": value}
    assert Settings.from_env(env).audit_retention_days == days


@pytest.mark.parametrize("value", ["0", "-5", "thirty", "1.5", "36501"])
def test_a_retention_that_is_not_a_positive_whole_number_of_days_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"DUEFLOW_AUDIT_RETENTION_DAYS is .*whole number of days"):
        Settings.from_env({"DUEFLOW_AUDIT_RETENTION_DAYS": value})


async def test_the_serving_process_runs_retention_on_its_timer_when_embedded(
    runtime: Runtime, database_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    await entries_aged(runtime, clock, 10 * DAY, DAY)
    settings = Settings.from_env(
        {
            "DUEFLOW_DATABASE_URL": database_url,
            "DUEFLOW_DATA_DIR": str(tmp_path),
            "DUEFLOW_AUDIT_RETENTION_DAYS": "7",
        }
    )
    retaining = await bootstrap(settings, clock=clock)
    try:
        assert retaining.workers.retention is not None and retaining.workers.retention.days == 7
        async with retaining.workers.running():  # the timer's first run is at start
            await eventually(
                lambda: has_titles(runtime, 1), what="the timer's first retention run to delete"
            )
    finally:
        await retaining.close()

    assert await titles(runtime) == [f"aged {DAY}"]
    assert runtime.workers.retention is None  # the fixture's runtime has no retention configured


def test_dueflow_audit_prune_deletes_what_is_older_than_the_window(tmp_path: Path) -> None:
    data = tmp_path / "data"

    async def seed() -> None:
        settings = Settings.from_env({"DUEFLOW_DATA_DIR": str(data)})
        clock = FixedClock(dt.datetime.now(dt.UTC) - 90 * DAY)
        wired = await bootstrap(settings, clock=clock)
        try:
            await wired.service.add("alice", NewTask(title="Long ago"))
            clock.set(dt.datetime.now(dt.UTC))
            await wired.service.add("alice", NewTask(title="Just now"))
            await wired.relay.drain()
        finally:
            await wired.close()

    asyncio.run(seed())

    def prune(**env: str) -> subprocess.CompletedProcess[str]:
        return run_dueflow(tmp_path, "audit", "prune", DUEFLOW_DATA_DIR=str(data), **env)

    off = prune()
    bad = prune(DUEFLOW_AUDIT_RETENTION_DAYS="0")
    done = prune(DUEFLOW_AUDIT_RETENTION_DAYS="30")

    assert off.returncode == 2 and "DUEFLOW_AUDIT_RETENTION_DAYS is unset" in off.stderr
    assert bad.returncode == 2 and "whole number of days" in bad.stderr
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("deleted 1 audit entry older than 30 day(s)")
    assert "1 batch(es)" in done.stdout


async def test_migration_0004_runs_both_ways_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    try:
        await upgrade(engine)
        await downgrade(engine, "0003")
        async with engine.connect() as conn:
            names = {r[0] for r in await conn.execute(sa.text("SELECT name FROM sqlite_master"))}
        await upgrade(engine)
    finally:
        await engine.dispose()
    assert "leases" not in names and "audit_log_no_update" not in names
    assert "audit_log" in names
