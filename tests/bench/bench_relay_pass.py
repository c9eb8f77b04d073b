"""The CPU and the statements one embedded relay pass costs, per event, on both databases.

    .venv/bin/python tests/bench/bench_relay_pass.py [--db sqlite|postgres|both]
        [--sizes 1,50] [--passes 40] [--profile 20]

For each pass size: commit that many task changes (add_task, no relay running), then run one
relay pass (OutboxRelay.drain_once: claim, every in-process consumer, inbox, mark) timed with
the process's CPU clock and counting the SQL statements it sends; --passes times per size.
--profile N prints the N costliest functions (cumulative CPU) of the passes of each size.
Not part of the test suite; no results file (the figures go into the caller's report).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# `tests.support` from a checkout run as `python tests/bench/<bench>.py`; appended, so that a
# PYTHONPATH naming another checkout (--before) still supplies every module
sys.path.append(str(Path(__file__).resolve().parents[2]))

import sqlalchemy as sa

from domain.service import NewTask
from dueflow.bootstrap import bootstrap
from dueflow.settings import Settings
from tests.support.database import emptied_bench_database

PG_ADMIN = os.environ.get("DUEFLOW_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_BENCH = "dueflow_bench_relay_pass"


async def measure(db: str, sizes: list[int], passes: int, profile: int, workdir: Path) -> None:
    env = {"DUEFLOW_LOG_LEVEL": "WARNING"}
    if db == "sqlite":
        env["DUEFLOW_DATA_DIR"] = str(workdir / "sqlite")
    else:
        env["DUEFLOW_DATABASE_URL"] = await emptied_bench_database(PG_ADMIN, PG_BENCH)
    runtime = await bootstrap(Settings.from_env(env))
    statements = 0

    def count(*_args: Any) -> None:
        nonlocal statements
        statements += 1

    sa.event.listen(runtime.engine.sync_engine, "before_cursor_execute", count)
    try:
        # warm up: the first pass pays for imports, prepared statements and caches
        await runtime.service.add("bench", NewTask(title="warm", due="2026-12-01"))
        await runtime.relay.drain()
        for size in sizes:
            cpu: list[float] = []
            counted: list[int] = []
            profiler = cProfile.Profile(time.process_time)
            for p in range(passes):
                for i in range(size):
                    new = NewTask(title=f"p{p} {i}", tags=["bench"], due="2026-12-01")
                    await runtime.service.add("bench", new)
                statements = 0
                started = time.process_time()
                if profile:
                    profiler.enable()
                delivered = await runtime.relay.drain_once()
                if profile:
                    profiler.disable()
                cpu.append(time.process_time() - started)
                counted.append(statements)
                if delivered != size:
                    raise RuntimeError(f"a pass delivered {delivered} of {size} events")
            per_event = statistics.median(cpu) / size * 1000
            print(
                f"[{db}] pass of {size:>3}: CPU median {statistics.median(cpu) * 1000:6.2f} ms"
                f" ({per_event:.3f} ms/event), statements {statistics.median(counted):.0f}"
                f" per pass ({statistics.median(counted) / size:.2f}/event)",
                flush=True,
            )
            if profile:
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats(
                    os.environ.get("BENCH_SORT", "cumulative")
                ).print_stats(profile)
                print(out.getvalue(), flush=True)
    finally:
        await runtime.close()


async def amain(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="dueflow-bench-relay-pass-"))
    sizes = [int(s) for s in args.sizes.split(",")]
    try:
        for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
            await measure(db, sizes, args.passes, args.profile, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--sizes", default="1,50")
    parser.add_argument("--passes", type=int, default=40)
    parser.add_argument("--profile", type=int, default=0)
    asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    main()
