"""Turn schedule: what looking up a user's next turn costs with 10,000 open tasks.

    .venv/bin/python tests/bench/bench_turns.py [--db sqlite|postgres|both] [--tasks 10000]
        [--rounds 1000]

The schedule (domain/turns.py) looks a user's next turn up after every change of theirs that
reaches the gateway, and reads the tasks that fell due at each turn. Both are OpenDues reads
(domain/adapters/open_dues_sql.py). For each database, one user gets --tasks open tasks (a
quarter each: due moments past, due moments ahead, all-day dates, no due), bulk-inserted with the
rows TaskService builds; then, --rounds times each, timed in this process (wall p50/p99, and
this process's CPU per read):
  next_due   the earliest due at or after now (the read after every change)
  fell_due   the tasks that fell due as the day turned (the read at each turn)
  scan       for comparison: every open task of the user read to find the earliest due (what
             the schedule does not do), --rounds / 20 times
and the query plans of the two reads. Writes tests/bench/results/turns.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.adapters.open_dues_sql import SqlOpenDues
from domain.adapters.schema import upgrade
from domain.adapters.sql import make_engine
from domain.adapters.tables import TaskRow
from domain.adapters.task_rows import task_values
from domain.adapters.unit_of_work import SqlUnitOfWork
from domain.clock import FixedClock
from domain.memory import MemoryStore
from domain.model import Status
from domain.query import TaskFilter
from domain.service import NewTask, TaskService
from tests.support.database import PG_ADMIN_URL, emptied_bench_database

RESULTS = Path(__file__).with_name("results")
PG_BENCH = "dueflow_bench_turns"
NOW = dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)
TASKS = TaskRow.__table__  # type: ignore[attr-defined]


async def seed(url: str, total: int) -> None:
    store = MemoryStore()
    service = TaskService(store, FixedClock(NOW), default_timezone="Europe/Berlin")
    for n in range(total):
        kind = n % 4
        due = None
        if kind == 0:
            due = (NOW - dt.timedelta(minutes=n + 1)).isoformat()
        elif kind == 1:
            due = (NOW + dt.timedelta(minutes=n + 1)).isoformat()
        elif kind == 2:
            due = (NOW.date() + dt.timedelta(days=n % 30 - 10)).isoformat()
        await service.add("alice", NewTask(title=f"task {n}", due=due))
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(TASKS), [task_values(t) for t in store.tasks.values()])
        if engine.dialect.name == "postgresql":
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(sa.text("VACUUM ANALYZE tasks"))
    finally:
        await engine.dispose()


async def timed(read: Callable[[], Awaitable[Any]], rounds: int) -> dict[str, float]:
    for _ in range(min(rounds, 20)):
        await read()  # warm-up
    walls = []
    cpu = time.process_time()
    for _ in range(rounds):
        start = time.perf_counter()
        await read()
        walls.append(time.perf_counter() - start)
    cpu = time.process_time() - cpu
    walls.sort()
    return {
        "p50_ms": statistics.median(walls) * 1000,
        "p99_ms": walls[int(len(walls) * 0.99) - 1] * 1000,
        "cpu_ms": cpu / rounds * 1000,
    }


async def plans(url: str) -> list[str]:
    engine = make_engine(url)
    explain = "EXPLAIN QUERY PLAN" if engine.dialect.name == "sqlite" else "EXPLAIN"
    reads = [
        "SELECT due_at FROM tasks WHERE user_id = 'alice' AND status = 'open'"
        " AND due_at >= '2026-11-23 10:00:00' AND due_all_day = false ORDER BY due_at LIMIT 1",
        "SELECT due_at, id FROM tasks WHERE user_id = 'alice' AND status = 'open'"
        " AND due_all_day = true AND due_at >= '2026-11-22' AND due_at < '2026-11-25'"
        " AND due_date >= '2026-11-23' AND due_date < '2026-11-24' ORDER BY due_at, id LIMIT 101",
    ]
    found = []
    try:
        async with engine.connect() as conn:
            for read in reads:
                rows = (await conn.execute(sa.text(f"{explain} {read}"))).all()
                found.append(" / ".join(str(row[-1]) for row in rows))
    finally:
        await engine.dispose()
    return found


async def bench(db: str, url: str, total: int, rounds: int) -> list[str]:
    await seed(url, total)
    engine = make_engine(url)
    dues = SqlOpenDues(engine)
    units = partial(SqlUnitOfWork, async_sessionmaker(engine, expire_on_commit=False))
    try:

        async def scan() -> dt.datetime | None:
            async with units(read_only=True) as uow:
                tasks = await uow.tasks.all_matching(
                    "alice", TaskFilter(status=Status.OPEN.value), NOW, NOW.date()
                )
            moments = [t.due.at for t in tasks if t.due and t.due.at and t.due.at >= NOW]
            return min(moments, default=None)

        day = (NOW.date(), NOW.date() + dt.timedelta(days=1))
        until = NOW + dt.timedelta(hours=13)
        results = {
            "next_due": await timed(lambda: dues.next_due("alice", NOW), rounds),
            "fell_due": await timed(lambda: dues.fell_due("alice", NOW, until, day, 101), rounds),
            "scan": await timed(scan, max(rounds // 20, 5)),
        }
        assert await dues.next_due("alice", NOW) == await scan()
    finally:
        await engine.dispose()
    lines = [f"### {db}, {total} open tasks of one user", ""]
    lines += ["| read | p50 ms | p99 ms | CPU ms/read (bench process) |", "|---|---|---|---|"]
    for name, figures in results.items():
        lines.append(
            f"| {name} | {figures['p50_ms']:.3f} | {figures['p99_ms']:.3f} |"
            f" {figures['cpu_ms']:.3f} |"
        )
    read_plans = await plans(url)
    lines += [
        "",
        f"- plan of next_due: `{read_plans[0]}`",
        f"- plan of fell_due (all-day): `{read_plans[1]}`",
        "",
    ]
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=1000)
    args = parser.parse_args()
    load = os.getloadavg()
    lines = [
        "# Turn schedule: looking up a user's next turn",
        "",
        f"`tests/bench/bench_turns.py --tasks {args.tasks} --rounds {args.rounds}`;"
        f" {platform.python_implementation()} {platform.python_version()},"
        f" load average at the start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}.",
        "",
    ]
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'turns.db'}"
            engine = make_engine(url)
            await upgrade(engine)
            await engine.dispose()
            lines += await bench("SQLite", url, args.tasks, args.rounds)
    if args.db in ("postgres", "both"):
        url = await emptied_bench_database(PG_ADMIN_URL, PG_BENCH)
        lines += await bench("PostgreSQL", url, args.tasks, args.rounds)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "turns.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
