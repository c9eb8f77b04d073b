"""The fuzzer's long run: thousands of tool calls per database through real MCP clients.

    .venv/bin/python -m tests.bench.bench_fuzz [--calls 10000] [--db sqlite|postgres|both]
        [--width 8] [--out fuzz_concurrent.md]

Plans --calls calls (tests/support/fuzzing.py: arguments drawn by hypothesis from each tool's
published input schema, with hostile values mixed in, on --seed), makes them as two users on an
embedded runtime over SQLite and/or PostgreSQL (database dueflow_bench_fuzz at
DUEFLOW_TEST_PG_URL's server, created afresh), checks every answer and then the listings and
invariants, and writes tests/bench/results/fuzz.md. With --width N the calls go N at a time,
concurrently (racing writers; the per-call write checks give way to the invariants at the end).
Exits 1 if anything failed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from fastmcp import Client

from domain.adapters.schema import upgrade
from domain.adapters.sql import make_engine
from domain.clock import FixedClock
from tests.support.database import admin, postgres_database_url
from tests.support.fuzzing import Call, Fuzzer, Tally, plan
from tests.support.runtimes import NOW, embedded_runtime
from tests.support.tools import server_for

RESULTS = Path(__file__).with_name("results")
PG_BENCH = "dueflow_bench_fuzz"
SHOWN_FAILURES = 40


async def fuzz(db: str, calls: list[Call], timeout: float, width: int) -> tuple[Tally, list[str]]:
    """Make `calls` on a fresh database `db`; the tally and what the checks afterwards found."""
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite+aiosqlite:///{Path(scratch) / 'fuzz.db'}"
        if db == "postgres":
            await admin(f'DROP DATABASE IF EXISTS "{PG_BENCH}" WITH (FORCE)')
            await admin(f'CREATE DATABASE "{PG_BENCH}"')
            url = postgres_database_url(PG_BENCH)
            engine = make_engine(url)
            await upgrade(engine)
            await engine.dispose()
        clock = FixedClock(NOW)
        runtime = await embedded_runtime(url, Path(scratch), clock)
        try:
            async with (
                Client(server_for(runtime, "alice")) as alice,
                Client(server_for(runtime, "bob")) as bob,
            ):
                fuzzer = Fuzzer(
                    runtime, {"alice": alice, "bob": bob}, timeout, clock=clock, width=width
                )
                tally = await fuzzer.run(calls)
                problems = await fuzzer.check()
        finally:
            await runtime.close()
            if db == "postgres":
                await admin(f'DROP DATABASE IF EXISTS "{PG_BENCH}" WITH (FORCE)')
    return tally, problems


def report(args: argparse.Namespace, planning: float, figures: dict[str, Tally]) -> str:
    """The results page."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    lines = [
        "# Fuzzed tool calls (tests/bench/bench_fuzz.py)",
        "",
        f"- {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, commit {commit}, nproc={os.cpu_count()},"
        f" Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}",
        f"- `--calls {args.calls} --seed {args.seed} --timeout {args.timeout}"
        f" --width {args.width}`; planning the calls"
        f" (hypothesis, from the published input schemas) took {planning:.0f} s",
        "",
        "| database | calls | answered | refused | internal errors | other failures |"
        " wall time | calls/s | slowest call |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for db, tally in figures.items():
        slowest = tally.slowest[0]
        other = len(tally.failures) - tally.internal_errors
        lines.append(
            f"| {db} | {tally.calls} | {tally.answered} | {tally.refused} |"
            f" {tally.internal_errors} | {other} | {tally.seconds:.0f} s |"
            f" {tally.calls / tally.seconds:.0f} | {slowest:.2f} s |"
        )
    for db, tally in figures.items():
        per_tool = [(t, f"{n} ({tally.answered_per_tool[t]})") for t, n in tally.per_tool.items()]
        lines += ["", f"## {db}", "", "Calls per tool (answered): " + _counted(per_tool), ""]
        lines += [
            f"At the end: {tally.tasks_at_end} tasks, {tally.occurrences_at_end} of them next"
            " occurrences the recurrence worker created.",
            "",
        ]
        lines += ["Refusals by tool and field (the field the answer names first):", ""]
        lines += ["| tool.field | refusals |", "|---|---|"]
        lines += [f"| {name} | {count} |" for name, count in sorted(tally.refusals.items())]
        lines += ["", f"Slowest call: {tally.slowest[0]:.2f} s, `{tally.slowest[1][:200]}`"]
        if tally.slow:
            lines += ["", "Calls slower than 1 s:", ""]
            lines += [f"- {s:.2f} s: `{what[:160]}`" for s, what in sorted(tally.slow)[-10:]]
        if tally.failures:
            lines += ["", f"Failures ({len(tally.failures)}, the first {SHOWN_FAILURES}):", ""]
            lines += [f"- `{failure[:300]}`" for failure in tally.failures[:SHOWN_FAILURES]]
    return "\n".join(lines) + "\n"


def _counted(items: Any) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(items))


async def amain(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        runtime = await embedded_runtime(
            f"sqlite+aiosqlite:///{Path(scratch) / 'schemas.db'}", Path(scratch), FixedClock(NOW)
        )
        async with Client(server_for(runtime, "alice")) as client:
            schemas = {tool.name: tool.input_schema for tool in await client.list_tools()}
        await runtime.close()
    calls = plan(schemas, args.calls, args.seed)
    planning = time.perf_counter() - started
    print(f"planned {len(calls)} calls in {planning:.0f} s")
    figures: dict[str, Tally] = {}
    for db in ("sqlite", "postgres") if args.db == "both" else (args.db,):
        tally, problems = await fuzz(db, calls, args.timeout, args.width)
        figures[db] = tally
        print(
            f"{db}: {tally.calls} calls in {tally.seconds:.0f} s, {tally.refused} refused,"
            f" {tally.internal_errors} internal errors, {len(tally.failures)} failures"
            f" ({len(problems)} after the run)"
        )
        for failure in tally.failures[:SHOWN_FAILURES]:
            print("  ", failure[:400])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / args.out).write_text(report(args, planning, figures))
    return 1 if any(tally.failures for tally in figures.values()) else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000, help="calls per database")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--seed", type=int, default=14, help="hypothesis seed of the plan")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a call may take")
    parser.add_argument("--width", type=int, default=1, help="calls in flight at once")
    parser.add_argument("--out", default="fuzz.md", help="file name under tests/bench/results")
    return asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
