"""Reminder lateness on the embedded runtime with the real clock.

    .venv/bin/python tests/bench/bench_reminders.py [--db sqlite|postgres|both] [--reminders 500]
                                                    [--spread 10]

For each database: --reminders tasks, each with one absolute reminder, their moments spread evenly
over --spread seconds, starting --lead seconds (default 60) after the run starts, which leaves time
to create the tasks and have the worker schedule them. The process then runs
as `dueflow serve` does (relay, embedded workers, reminder timer) until every reminder has fired.
Reported per reminder:
  lateness   fired_at - fire_at: when the timer's transaction recorded the trigger (the row's
             fired_at, taken from the clock as it fires); a negative value is an early fire.
  published  the trigger event's outbox row marked delivered - fire_at: the trigger has reached
             the in-process consumers (audit, notifications).
Target (issue #5): no early fire, p99 lateness <= 100 ms. Writes
tests/bench/results/reminders_lateness.{json,md}. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa

from domain.adapters.schema import upgrade
from domain.adapters.sql import READ_ONLY, make_engine
from domain.due import iso_utc
from domain.service import NewTask
from dueflow.bootstrap import Runtime, bootstrap
from dueflow.heap import settle_heap
from dueflow.settings import Settings

RESULTS = Path(__file__).with_name("results")
PG_ADMIN = os.environ.get("DUEFLOW_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_BENCH = "dueflow_bench_reminders"


async def reset_postgres() -> str:
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{PG_BENCH}"')
        await admin.execute(f'CREATE DATABASE "{PG_BENCH}"')
    finally:
        await admin.close()
    url = f"{PG_ADMIN.rpartition('/')[0]}/{PG_BENCH}"
    engine = make_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    return url


async def scalar(runtime: Runtime, sql: str) -> Any:
    async with runtime.engine.connect() as conn:
        # a reader's snapshot: on SQLite this watcher must not queue for the write lock itself
        await conn.execution_options(**{READ_ONLY: True})
        return (await conn.execute(sa.text(sql))).scalar_one()


async def wait_until(runtime: Runtime, sql: str, total: int, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while (done := int(await scalar(runtime, sql))) < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done} of {total} after {limit_s}s: {sql}")
        await asyncio.sleep(0.05)


def _moment(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_db(db: str, count: int, spread: float, lead: float, workdir: Path) -> dict[str, Any]:
    env = {"DUEFLOW_LOG_LEVEL": "WARNING", "DUEFLOW_RELAY_POLL_SECONDS": "0.5"}
    if db == "sqlite":
        env["DUEFLOW_DATA_DIR"] = str(workdir / "sqlite")
    else:
        env["DUEFLOW_DATABASE_URL"] = await reset_postgres()
    runtime = await bootstrap(Settings.from_env(env))
    settle_heap()  # as `dueflow serve` does once it is wired
    try:
        async with runtime.running():
            # every reminder's moment in a `spread`-second window that opens `lead` seconds from
            # now, enough to create the tasks and let the worker schedule them
            start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lead)
            step = spread / count
            for i in range(count):
                moment = start + dt.timedelta(seconds=i * step)
                await runtime.service.add(
                    "bench",
                    NewTask(
                        title=f"reminder {i}",
                        due=iso_utc(moment + dt.timedelta(hours=1)),
                        reminders=[iso_utc(moment)],
                    ),
                )
            pending = "SELECT count(*) FROM reminder_schedule WHERE state = 'pending'"
            await wait_until(runtime, pending, count, lead)
            if dt.datetime.now(dt.UTC) >= start:
                raise RuntimeError(f"seeding took longer than --lead {lead}s; raise it")
            fired = "SELECT count(*) FROM reminder_schedule WHERE state = 'fired'"
            await wait_until(runtime, fired, count, spread + 60)
            published = (
                "SELECT count(*) FROM outbox WHERE event_type = 'REMINDER_TRIGGERED'"
                " AND published_at IS NOT NULL"
            )
            await wait_until(runtime, published, count, 60)
        async with runtime.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text(
                        "SELECT r.fire_at, r.fired_at, o.published_at FROM reminder_schedule r"
                        " JOIN outbox o ON o.task_id = r.task_id"
                        " AND o.event_type = 'REMINDER_TRIGGERED'"
                    )
                )
            ).all()
    finally:
        await runtime.close()
    lateness = [(_moment(f) - _moment(a)).total_seconds() * 1000 for a, f, _ in rows]
    published = [(_moment(p) - _moment(a)).total_seconds() * 1000 for a, _, p in rows]
    return {
        "db": db,
        "reminders": len(rows),
        "spread_s": spread,
        "early_fires": sum(1 for v in lateness if v < 0),
        "lateness_ms": {
            "p50": round(statistics.median(lateness), 2),
            "p99": round(_pct(lateness, 0.99), 2),
            "max": round(max(lateness), 2),
            "min": round(min(lateness), 2),
        },
        "published_ms": {
            "p50": round(statistics.median(published), 2),
            "p99": round(_pct(published, 0.99), 2),
            "max": round(max(published), 2),
        },
    }


def write(results: list[dict[str, Any]]) -> None:
    RESULTS.mkdir(exist_ok=True)
    meta = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    (RESULTS / "reminders_lateness.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=2) + "\n"
    )
    lines = [
        "# Reminder lateness (embedded runtime, real clock)",
        "",
        f"Run {meta['when']}, Python {meta['python']}, {meta['cpus']} CPUs.",
        "Target: no early fire, p99 lateness <= 100 ms.",
        "",
        "| db | reminders over | early | lateness p50 | p99 | max | trigger delivered p50 | p99 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        late, pub = r["lateness_ms"], r["published_ms"]
        lines.append(
            f"| {r['db']} | {r['reminders']} over {r['spread_s']:g} s | {r['early_fires']} |"
            f" {late['p50']} ms | {late['p99']} ms | {late['max']} ms | {pub['p50']} ms |"
            f" {pub['p99']} ms |"
        )
    (RESULTS / "reminders_lateness.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--reminders", type=int, default=500)
    parser.add_argument("--spread", type=float, default=10.0)
    parser.add_argument("--lead", type=float, default=60.0, help="seconds to seed before")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="dueflow-bench-reminders-"))
    try:
        dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
        results = [await run_db(db, args.reminders, args.spread, args.lead, workdir) for db in dbs]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    write(results)


if __name__ == "__main__":
    asyncio.run(main())
