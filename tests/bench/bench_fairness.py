"""Fairness over HTTP: does one user's heaviest traffic stall another user's calls?

    .venv/bin/python tests/bench/bench_fairness.py                     # both databases
    .venv/bin/python tests/bench/bench_fairness.py --db sqlite --seconds 10 --out results.md
    .venv/bin/python tests/bench/bench_fairness.py --before /tmp/base   # that checkout's server too

For each database it starts `dueflow serve --transport http` as its own process (configured only
through DUEFLOW_* settings, on a free port), with two users. Bob's probe calls `get_task` one at a
time, first with the server idle, then while Alice's clients, in a process of their own, send the
most expensive calls the server accepts as fast as it lets them: previews of a rule that never
matches (walked until the search gives up), adds of the largest task allowed (every text at its
limit, 50 tags, 20 reminders, 500 EXDATEs), full pages of those tasks from list_tasks, unsorted
and by urgency, and task_history. Bob calls 15 times a second, under the default rate limit. The
target (issue #14): Bob's p99 under load at most 3x his idle p99, on both databases. Alice's
calls count against the per-user rate by their cost (docs/security.md#limits); her refusals by
that limit are counted, not errors, and she retries them after 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from domain.adapters.outbox import outbox_backlog
from domain.adapters.sql import make_engine
from domain.clock import SystemClock
from tests.support.servers import (
    ALICE_TOKEN,
    BOB_TOKEN,
    child_env,
    dueflow_command,
    free_port,
)

PG_ADMIN = os.environ.get("DUEFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = "dueflow_fairness"
NEVER = "FREQ=HOURLY;BYWEEKNO=1;BYMONTH=6"


def client(url: str, token: str) -> Client:
    return Client(StreamableHttpTransport(url, headers={"Authorization": f"Bearer {token}"}))


def largest_task(number: int) -> dict[str, Any]:
    start = dt.date(2027, 1, 1)
    exdates = ",".join(
        (start + dt.timedelta(days=2 * i)).strftime("%Y%m%dT090000") for i in range(500)
    )
    return {
        "title": f"{number:06d} " + "t" * 480,
        "description": "d" * 10_000,
        "tags": [f"tag-{i:02d}-" + "x" * 50 for i in range(50)],
        "due": "2026-12-31T09:00",
        "timezone": "Europe/Berlin",
        "reminders": [f"PT{i + 1}H" for i in range(20)],
        "recurrence": f"FREQ=DAILY\nEXDATE:{exdates}",
    }


HEAVY_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("preview_recurrence", {"recurrence": NEVER, "due": "2026-12-01T09:00"}),
    ("list_tasks", {"status": "all", "limit": 200}),
    ("list_tasks", {"sort": ["urgency"], "status": "all", "limit": 200}),
    ("task_history", {"limit": 200}),
    ("add_task", {}),
]


async def alice_load(
    url: str, clients: int, stop_at: float, counts: dict[str, int], calls: list[str]
) -> None:
    heavy = [(tool, arguments) for tool, arguments in HEAVY_CALLS if tool in calls]

    async def one(index: int) -> None:
        async with client(url, ALICE_TOKEN) as mcp:
            turn = index
            while time.monotonic() < stop_at:
                tool, arguments = heavy[turn % len(heavy)]
                if tool == "add_task":
                    arguments = largest_task(turn)
                turn += 1
                result = await mcp.call_tool(tool, arguments, raise_on_error=False)
                text = result.content[0].text if result.content else ""  # type: ignore[union-attr]
                if not result.is_error:
                    counts["answered"] += 1
                elif text.startswith("rate:"):
                    counts["rate_limited"] += 1
                    await asyncio.sleep(0.05)
                elif text.startswith("internal error"):
                    counts["internal_errors"] += 1
                else:
                    counts["refused"] += 1

    await asyncio.gather(*(one(i) for i in range(clients)))


def alice_process(url: str, clients: int, seconds: float, queue: Any, calls: list[str]) -> None:
    counts = {"answered": 0, "refused": 0, "rate_limited": 0, "internal_errors": 0}
    asyncio.run(alice_load(url, clients, time.monotonic() + seconds, counts, calls))
    queue.put(counts)


async def bob_probe(url: str, task_id: str, seconds: float) -> list[float]:
    latencies: list[float] = []
    async with client(url, BOB_TOKEN) as mcp:
        for _ in range(10):  # warm up the connection and the server's caches
            await mcp.call_tool("get_task", {"task_id": task_id})
        await asyncio.sleep(3)  # the warm-up's burst is refilled
        stop_at = time.monotonic() + seconds
        while time.monotonic() < stop_at:
            began = time.perf_counter()
            result = await mcp.call_tool("get_task", {"task_id": task_id}, raise_on_error=False)
            took = time.perf_counter() - began
            latencies.append(took * 1000)
            assert not result.is_error, result.content
            # Bob is a well-behaved client: 15 calls a second, under the default rate limit
            await asyncio.sleep(max(0.0, 1 / 15 - took))
    return latencies


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "n": len(ordered),
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "max": ordered[-1],
    }


def database_url(db: str, home: Path) -> str:
    if db == "sqlite":
        return f"sqlite+aiosqlite:///{home / 'fairness.db'}"
    admin = PG_ADMIN.replace("postgresql://", "postgresql://", 1)
    subprocess.run(
        ["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"], check=True
    )
    subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {PG_DATABASE}"], check=True)
    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + (
        f"/{PG_DATABASE}"
    )


async def seed(url: str, tasks: int) -> str:
    async with client(url, ALICE_TOKEN) as mcp:
        for number in range(tasks):
            await mcp.call_tool("add_task", largest_task(number))
    async with client(url, BOB_TOKEN) as mcp:
        result = await mcp.call_tool("add_task", {"title": "Bob's task", "due": "2026-12-24"})
        assert result.structured_content is not None
        task_id: str = result.structured_content["task"]["id"]
        return task_id


async def drained(database: str) -> None:
    """Wait until the server's relay has published every seeded event (and the audit consumer
    has recorded them), so the idle phase is idle."""
    engine = make_engine(database)
    try:
        for _ in range(600):
            if (await outbox_backlog(engine, SystemClock())).size == 0:
                await asyncio.sleep(2)  # the consumers finish what was just published
                return
            await asyncio.sleep(0.5)
        raise SystemExit("the outbox did not drain")
    finally:
        await engine.dispose()


async def wait_for(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            async with client(url, BOB_TOKEN) as mcp:
                await mcp.list_tools()
                return
        except Exception:
            await asyncio.sleep(0.3)
    raise SystemExit("the server did not start listening")


def run(
    db: str,
    seconds: float,
    clients: int,
    tasks: int,
    extra_env: dict[str, str],
    calls: list[str],
    tree: Path | None = None,
    label: str = "",
) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        port = free_port()
        url = f"http://127.0.0.1:{port}/mcp"
        env = child_env(
            home,
            DUEFLOW_DATABASE_URL=database_url(db, home),
            DUEFLOW_TOKENS=f"{ALICE_TOKEN}=alice,{BOB_TOKEN}=bob",
            DUEFLOW_LOG_LEVEL="WARNING",
            **extra_env,
        )
        if tree is not None:
            env["PYTHONPATH"] = str(tree)  # the server runs that checkout's code
        migrate = subprocess.run(
            dueflow_command("db", "upgrade"), env=env, cwd=home, capture_output=True, text=True
        )
        if migrate.returncode:
            raise SystemExit(migrate.stderr)
        server = subprocess.Popen(
            dueflow_command("serve", "--transport", "http", "--port", str(port)),
            env=env,
            cwd=home,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        try:
            asyncio.run(wait_for(url, server))
            task_id = asyncio.run(seed(url, tasks))
            asyncio.run(drained(env["DUEFLOW_DATABASE_URL"]))
            idle = summary(asyncio.run(bob_probe(url, task_id, seconds)))
            queue: Any = multiprocessing.Queue()
            load = multiprocessing.Process(
                target=alice_process, args=(url, clients, seconds + 3, queue, calls)
            )
            load.start()
            time.sleep(2)  # Alice's clients connect and reach full speed
            loaded = summary(asyncio.run(bob_probe(url, task_id, seconds)))
            counts = queue.get(timeout=seconds + 60)
            load.join()
        finally:
            server.terminate()
            server.wait(timeout=30)
    ratio = loaded["p99"] / idle["p99"]
    verdict = "met" if ratio <= 3 else "NOT met"
    return (
        f"| {db}{label} | {idle['n']} | {idle['p50']:.1f} | {idle['p99']:.1f} | {idle['max']:.1f}"
        f" | {loaded['n']} | {loaded['p50']:.1f} | {loaded['p99']:.1f} | {loaded['max']:.1f}"
        f" | **{ratio:.2f}** ({verdict}) | {counts['answered']} | {counts['rate_limited']}"
        f" | {counts['refused']} | {counts['internal_errors']} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=8, help="Alice's concurrent clients")
    parser.add_argument("--tasks", type=int, default=100, help="Alice's largest tasks seeded")
    parser.add_argument("--env", action="append", default=[], help="extra DUEFLOW_X=value")
    parser.add_argument(
        "--calls",
        default=",".join(tool for tool, _ in HEAVY_CALLS),
        help="which of Alice's heavy calls to send, comma-separated (default: all)",
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--before", type=Path, help="also serve from this checkout, alternating, labelled"
    )
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    arms: list[tuple[Path | None, str]] = [(None, "")]
    if args.before is not None:
        arms = [(args.before, " (before)"), (None, " (after)")]
    rows = [
        run(db, args.seconds, args.clients, args.tasks, extra, args.calls.split(","), tree, label)
        for db in (["sqlite", "postgres"] if args.db == "both" else [args.db])
        for tree, label in arms
    ]
    report = "\n".join(
        [
            f"# Fairness over HTTP ({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC)",
            "",
            f"Machine: {os.cpu_count()} cores, Python {platform.python_version()};"
            f" {args.seconds:.0f} s per phase, Alice: {args.clients} clients,"
            f" {args.tasks} largest tasks seeded; settings {extra or 'defaults'};"
            f" Alice's calls: {args.calls}.",
            "Bob's get_task latency in ms, idle and while Alice sends her heaviest calls.",
            "",
            "| db | idle n | idle p50 | idle p99 | idle max | load n | load p50 | load p99"
            " | load max | p99 ratio (target <= 3) | Alice answered | Alice rate-limited"
            " | Alice refused | internal errors |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
            *rows,
            "",
        ]
    )
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
