"""End-to-end event throughput on the embedded bus, beside the database's raw insert rate.

    .venv/bin/python tests/bench/bench_events.py [--db sqlite|postgres|both] [--events 3000]
        [--bulk 20]

For each database, in one run:
  raw      single-row INSERT + COMMIT into a scratch table, one after another, through the same
           SQLAlchemy async engine: the rate the database itself commits small rows at.
Then for each producer shape (a row of the table each):
  single   4 producers, each committing one change at a time (add_task through the domain
           service): one event per transaction.
  bulk N   4 producers, each committing N changes in one transaction (add_task of N tasks,
           TaskService.batch.add_many): N events per transaction. --bulk 0 leaves it out.
and for each shape:
  alone    --events changes committed by the producers while no relay runs (the outbox holds
           them): the producers' own rate, the most the live figure can be.
  backlog  then the relay starts: events/s from its start until the audit consumer has applied
           every one (publish to the embedded bus, inbox, audit row, outbox marked).
  live     the producers commit --events more changes while the relay runs: events/s from the
           first commit to the last consumer effect, and the commit -> effect latency of each
           event (audit recorded_at - event timestamp).
Targets (issues #3, #17): live >= 1,000 events/s on PostgreSQL and >= 25% of the raw insert
rate on both databases. A live figure can only reach 1,000/s with producers that commit that
many: the single shape's producers alone stay below it on a small machine, hence the bulk row.
Writes tests/bench/results/events_throughput.{json,md}. Not part of the test suite.

    --before DIR   also measure the code of another checkout (e.g. `git worktree add --detach
                   /tmp/base main`), each database alternating before/after --repeat times, every
                   run in a fresh process; the table then holds every run, labelled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# `tests.support` from a checkout run as `python tests/bench/<bench>.py`; appended, so that a
# PYTHONPATH naming another checkout (--before) still supplies every module
sys.path.append(str(Path(__file__).resolve().parents[2]))

import sqlalchemy as sa

from domain.service import NewTask
from dueflow.bootstrap import Runtime, bootstrap
from dueflow.settings import Settings
from tests.support.database import emptied_bench_database

RESULTS = Path(__file__).with_name("results")
PG_ADMIN = os.environ.get("DUEFLOW_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_BENCH = "dueflow_bench_events"
PRODUCERS = 4


@dataclass
class DbFigures:
    db: str
    code: str
    events: int
    raw_inserts_per_s: float
    backlog_events_per_s: float
    live_events_per_s: float
    live_latency_p50_ms: float
    live_latency_p99_ms: float
    live_ratio_to_raw: float
    backlog_ratio_to_raw: float
    producers_alone_per_s: float = 0.0  # the same producers with no relay running
    shape: str = "single"  # the producers' shape: one change per commit, or "bulk N"
    # the process's CPU time per event (producers and relay share it): alone, and live
    alone_cpu_ms_per_event: float = 0.0
    live_cpu_ms_per_event: float = 0.0


async def reset_postgres() -> str:
    return await emptied_bench_database(PG_ADMIN, PG_BENCH)


async def raw_insert_rate(runtime: Runtime, n: int) -> float:
    engine = runtime.engine
    async with engine.begin() as conn:
        await conn.execute(sa.text("DROP TABLE IF EXISTS bench_raw"))
        await conn.execute(sa.text("CREATE TABLE bench_raw (id INTEGER PRIMARY KEY, body TEXT)"))
    body = json.dumps({"payload": "x" * 600})
    insert = sa.text("INSERT INTO bench_raw (id, body) VALUES (:id, :body)")
    started = time.perf_counter()
    for i in range(n):
        async with engine.begin() as conn:
            await conn.execute(insert, {"id": i, "body": body})
    rate = n / (time.perf_counter() - started)
    async with engine.begin() as conn:
        await conn.execute(sa.text("DROP TABLE bench_raw"))
    return rate


async def audited(runtime: Runtime) -> int:
    async with runtime.engine.connect() as conn:
        return int((await conn.execute(sa.text("SELECT count(*) FROM audit_log"))).scalar_one())


async def wait_for_audit(runtime: Runtime, total: int, limit_s: float = 600) -> float:
    deadline = time.perf_counter() + limit_s
    while (done := await audited(runtime)) < total:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"only {done} of {total} events reached the consumer")
        await asyncio.sleep(0.005)
    return time.perf_counter()


async def produce(runtime: Runtime, n: int, tag: str, bulk: int) -> None:
    """Commit `n` changes from PRODUCERS producers, one per transaction (`bulk` 0) or `bulk`
    per transaction."""

    def new(i: int) -> NewTask:
        return NewTask(title=f"{tag} {i}", tags=[tag], priority="low", due="2026-12-01")

    async def one_producer(k: int) -> None:
        if not bulk:
            for i in range(k, n, PRODUCERS):
                await runtime.service.add("bench", new(i))
            return
        mine = list(range(k, n, PRODUCERS))
        for start in range(0, len(mine), bulk):
            items = [(new(i), None) for i in mine[start : start + bulk]]
            await runtime.service.batch.add_many("bench", items)

    await asyncio.gather(*(one_producer(k) for k in range(PRODUCERS)))


async def latencies(runtime: Runtime, tag: str) -> list[float]:
    query = sa.text(
        "SELECT a.occurred_at, a.recorded_at FROM audit_log a JOIN tasks t ON t.id = a.task_id"
        " WHERE t.title LIKE :prefix"
    )
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(query, {"prefix": f"{tag} %"})).all()
    return [_ms(recorded) - _ms(occurred) for occurred, recorded in rows]


def _ms(value: Any) -> float:
    if isinstance(value, str):
        from datetime import datetime

        value = datetime.fromisoformat(value)
    return float(value.timestamp() * 1000)


def shape_label(bulk: int) -> str:
    return f"bulk {bulk}" if bulk else "single"


async def run_db(db: str, events: int, workdir: Path, bulk: int) -> list[DbFigures]:
    env = {"DUEFLOW_LOG_LEVEL": "WARNING", "DUEFLOW_RELAY_POLL_SECONDS": "0.5"}
    if db == "sqlite":
        env["DUEFLOW_DATA_DIR"] = str(workdir / "sqlite")
    else:
        env["DUEFLOW_DATABASE_URL"] = await reset_postgres()
    runtime = await bootstrap(Settings.from_env(env))
    try:
        raw = await raw_insert_rate(runtime, events)
        print(f"[{db}] raw single-row insert+commit: {raw:.0f}/s", flush=True)
        found = []
        for size in [0, bulk] if bulk else [0]:
            shape = shape_label(size)
            found.append(await run_shape(runtime, db, events, raw, size))
            print(f"[{db}] {shape} done", flush=True)
        return found
    finally:
        await runtime.close()


async def run_shape(runtime: Runtime, db: str, events: int, raw: float, bulk: int) -> DbFigures:
    """The producers alone, the backlog drained and the live figures of one producer shape."""
    shape = shape_label(bulk)
    tag = "bulk" if bulk else "single"
    before = await audited(runtime)
    started, cpu = time.perf_counter(), time.process_time()
    await produce(runtime, events, f"{tag}-backlog", bulk)
    alone = events / (time.perf_counter() - started)
    alone_cpu = (time.process_time() - cpu) / events * 1000
    print(f"[{db}] {shape}: producers alone (no relay): {alone:.0f} events/s", flush=True)
    started = time.perf_counter()
    async with runtime.running():
        finished = await wait_for_audit(runtime, before + events)
    backlog = events / (finished - started)
    print(f"[{db}] {shape}: backlog drained to the consumer: {backlog:.0f} events/s", flush=True)

    async with runtime.running():
        started, cpu = time.perf_counter(), time.process_time()
        await produce(runtime, events, f"{tag}-live", bulk)
        finished = await wait_for_audit(runtime, before + 2 * events)
        live_cpu = (time.process_time() - cpu) / events * 1000
    live = events / (finished - started)
    lat = sorted(await latencies(runtime, f"{tag}-live"))
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(
        f"[{db}] {shape}: live {live:.0f} events/s,"
        f" commit->effect p50 {p50:.1f} ms p99 {p99:.1f} ms; CPU ms/event alone"
        f" {alone_cpu:.2f}, live {live_cpu:.2f}",
        flush=True,
    )
    return DbFigures(
        db,
        "this tree",
        events,
        raw,
        backlog,
        live,
        p50,
        p99,
        live / raw,
        backlog / raw,
        alone,
        shape,
        alone_cpu,
        live_cpu,
    )


def measure_in_process(
    db: str, events: int, bulk: int, tree: Path | None, label: str
) -> list[DbFigures]:
    """One run of `db` in a fresh process, on the code of `tree` (None: this checkout)."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)  # ahead of this checkout's editable install
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, __file__, "--db", db, "--events", str(events)]
        command += ["--bulk", str(bulk), "--one", out.name]
        subprocess.run(command, env=env, check=True)
        found = json.loads(Path(out.name).read_text())
    return [DbFigures(**{**one, "code": label}) for one in found]


def write(figures: list[DbFigures]) -> None:
    RESULTS.mkdir(exist_ok=True)
    meta = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "producers": PRODUCERS,
    }
    (RESULTS / "events_throughput.json").write_text(
        json.dumps({"machine": meta, "runs": [asdict(f) for f in figures]}, indent=2) + "\n"
    )
    lines = [
        "# Dueflow event throughput (embedded bus, audit consumer)",
        "",
        f"- {meta['date']}, nproc={meta['nproc']}, Python {meta['python']}",
        f"- {PRODUCERS} concurrent producers; shape single: one change per commit"
        " (TaskService.add); bulk N: N changes per commit (TaskService.batch.add_many)",
        "- target: live >= 1,000 events/s on PostgreSQL and >= 25% of the raw insert rate",
        "- producers alone: the same 4 producers with no relay running (the backlog phase's"
        " commits): the most the live figure can be",
        "- CPU ms/event: the bench process's CPU time per event while the producers run alone,"
        " and while they run with the relay (live): one process, so 1,000 / live CPU ms is the"
        " most its one core allows",
        "",
        "| db | code | shape | events | raw inserts/s | producers alone/s | backlog events/s |"
        " live events/s | live/raw | backlog/raw | commit->effect p50 ms | p99 ms |"
        " CPU ms/event alone | live |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in figures:
        lines.append(
            f"| {f.db} | {f.code} | {f.shape} | {f.events} | {f.raw_inserts_per_s:.0f} |"
            f" {f.producers_alone_per_s:.0f} | {f.backlog_events_per_s:.0f} |"
            f" {f.live_events_per_s:.0f} | {f.live_ratio_to_raw:.0%} |"
            f" {f.backlog_ratio_to_raw:.0%} | {f.live_latency_p50_ms:.1f} |"
            f" {f.live_latency_p99_ms:.1f} | {f.alone_cpu_ms_per_event:.2f} |"
            f" {f.live_cpu_ms_per_event:.2f} |"
        )
    (RESULTS / "events_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


async def amain(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="dueflow-bench-events-"))
    try:
        if args.one:
            found = await run_db(args.db, args.events, workdir, args.bulk)
            Path(args.one).write_text(json.dumps([asdict(one) for one in found]))
            return
        dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
        if args.before is None:
            write([one for db in dbs for one in await run_db(db, args.events, workdir, args.bulk)])
            return
        figures = []
        for _ in range(args.repeat):
            for db in dbs:
                for tree, label in ((args.before, "before"), (None, "after")):
                    figures += measure_in_process(db, args.events, args.bulk, tree, label)
        write(figures)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--before", type=Path, help="another checkout to measure alternately")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--bulk", type=int, default=20, help="changes per commit, bulk shape")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a single run's figures, as JSON
    asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    main()
