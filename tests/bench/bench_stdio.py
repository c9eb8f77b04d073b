"""Round-trip latency over stdio of add_task and list_tasks beside a no-op tool.

    .venv/bin/python tests/bench/bench_stdio.py [--db sqlite|postgres|both] [--tasks 10000]
                                                [--rounds 300] [--warmup 30] [--profile]

For each database: reset the schema, seed --tasks tasks for the bench user, start
tests/bench/bench_server.py as a subprocess over fastmcp's StdioTransport, warm up, then time
--rounds interleaved rounds of (noop, add_task, list_tasks); the same rounds again on bare JSON-RPC
lines (the wire figures, which the exit status judges). Prints a table and writes
tests/bench/results/stdio_latency.{json,md} (with --profile: stdio_latency_profiled.*).
Not part of the test suite (see README.md).
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
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import fastmcp
import mcp
import sqlalchemy as sa
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from domain.adapters.schema import downgrade, upgrade
from domain.adapters.sql import make_engine
from domain.adapters.tables import OutboxRow, TaskRow
from domain.adapters.task_rows import task_values
from domain.clock import SystemClock
from domain.events import created_event
from domain.model import Task
from domain.query import TaskFilter
from domain.service import ListArguments, NewTask, TaskService
from dueflow.bootstrap import SOURCE, bootstrap
from dueflow.settings import Settings

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULTS = HERE / "results"
SERVER = HERE / "bench_server.py"
# Before/after comparisons: serve from another checkout of Dueflow (same schema) with
# DUEFLOW_BENCH_SERVER_TREE=<its root>; seeding and timing stay this checkout's.
SERVER_TREE = Path(os.environ.get("DUEFLOW_BENCH_SERVER_TREE") or ROOT).resolve()


def server_command(env: dict[str, str]) -> tuple[list[str], dict[str, str], str]:
    """The bench server's argv, environment and working directory."""
    server = SERVER_TREE / "tests" / "bench" / "bench_server.py"
    return [sys.executable, str(server)], {**env, "PYTHONPATH": str(SERVER_TREE)}, str(SERVER_TREE)


PG_ADMIN_URL = os.environ.get(
    "DUEFLOW_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
# a separate database per bench run keeps concurrent runs on one PostgreSQL apart
PG_DATABASE = os.environ.get("DUEFLOW_BENCH_PG_DATABASE", "dueflow_bench")
USER = "bench-user"
TIMEZONE = "Europe/Berlin"
PRIORITIES = ("none", "low", "medium", "high", "urgent")
TAGS = tuple(f"area-{n}" for n in range(10))
LIST_TAG, LIST_PRIORITY, LIST_LIMIT = "area-3", "high", 50
TARGETS = {"add_task": 2.0, "list_tasks": 3.0}
KINDS = ("noop", "add_task", "list_tasks")
SERVICE_ADD_PROBE = 200  # tasks seeded through TaskService.add to measure that path's speed


# --------------------------------------------------------------------------------------------
# databases


def pg_url() -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{PG_DATABASE}"


async def reset_postgres() -> str:
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", PG_DATABASE):
            await admin.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    finally:
        await admin.close()
    engine = make_engine(pg_url())
    try:
        await downgrade(engine)
        await upgrade(engine)
    finally:
        await engine.dispose()
    return pg_url()


def reset_sqlite(data_dir: Path) -> None:
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)


# --------------------------------------------------------------------------------------------
# seeding


def new_task_args(i: int) -> NewTask:
    """The i-th seeded task: priorities cycle, two of ten tags, most have a due date."""
    tags = [TAGS[i % 10], TAGS[(i * 3 + 7) % 10]]
    due = None
    if i % 4 != 3:
        day = dt.date(2026, 1, 1) + dt.timedelta(days=i % 365)
        due = day.isoformat() if i % 2 else f"{day.isoformat()}T{9 + i % 9:02d}:30"
    return NewTask(
        title=f"Seeded task {i}: follow up on item {i * 7919 % 100000}",
        description=f"Bench row {i}." if i % 3 == 0 else None,
        due=due,
        priority=PRIORITIES[(i // 10) % 5],
        tags=tags,
        reminders=["PT15M"] if due is not None and i % 5 == 0 else None,
    )


@dataclass
class SeedReport:
    tasks: int
    service_add_tasks: int
    service_add_seconds: float
    bulk_tasks: int
    bulk_seconds: float
    matching_list_filter: int
    drained_events: int
    drain_seconds: float

    @property
    def service_add_ms(self) -> float:
        return 1000 * self.service_add_seconds / max(self.service_add_tasks, 1)


async def seed(settings: Settings, total: int) -> SeedReport:
    """Seed `total` tasks: a first batch through TaskService.add (timed, to know what that path
    costs), the rest built by the same domain code and bulk-inserted in one transaction with the
    row shape of domain.adapters.sql (tasks, whose tags the database indexes in task_tags by
    trigger, and the task.created outbox events)."""
    runtime = await bootstrap(settings)
    try:
        service = runtime.service
        probe = min(SERVICE_ADD_PROBE, total)
        started = time.perf_counter()
        for i in range(probe):
            await service.add(USER, new_task_args(i))
        service_seconds = time.perf_counter() - started

        started = time.perf_counter()
        base = SystemClock().now() - dt.timedelta(days=30)
        tasks_rows: list[dict[str, Any]] = []
        outbox_rows: list[dict[str, Any]] = []
        for i in range(probe, total):
            now = base + dt.timedelta(seconds=i)
            task: Task = service.arguments.new_task(USER, new_task_args(i), now)
            tasks_rows.append(task_values(task))
            event = created_event(task, now, source=SOURCE)
            outbox_rows.append(
                {
                    "event_id": event.event_id,
                    "event_type": event.event_type.value,
                    "task_id": event.task_id,
                    "user_id": event.user_id,
                    "sequence": event.sequence,
                    "payload": event.envelope(),
                    "created_at": event.timestamp,
                    "attempts": 0,
                }
            )
        async with runtime.engine.begin() as conn:
            for table, rows in (
                (TaskRow.__table__, tasks_rows),
                (OutboxRow.__table__, outbox_rows),
            ):
                for start in range(0, len(rows), 2000):
                    await conn.execute(sa.insert(table), rows[start : start + 2000])  # type: ignore[arg-type]
        bulk_seconds = time.perf_counter() - started
        # Deliver the seeded task.created events now, as a server that has been running would
        # have: otherwise the timed rounds share the process with a 10,000-event backlog that the
        # relay drains into the audit and recurrence consumers.
        started = time.perf_counter()
        delivered = await runtime.relay.drain()
        drain_seconds = time.perf_counter() - started
        if (await runtime.relay.backlog()).size:
            raise RuntimeError("the seeded outbox did not drain")
        if runtime.engine.dialect.name == "postgresql":
            # PostgreSQL's autovacuum would have analyzed 10,000 new rows within a minute; the
            # timed rounds start sooner, and without statistics the planner picks the index
            # without priority (twice the list query's time)
            async with runtime.engine.connect() as conn:
                autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.exec_driver_sql("VACUUM ANALYZE")

        where = service.make_filter(ListArguments(priority=[LIST_PRIORITY], tags=[LIST_TAG]))
        matching = await count_matching(service, where)
        async with runtime.engine.connect() as conn:
            count = (
                await conn.execute(sa.select(sa.func.count()).select_from(TaskRow))
            ).scalar_one()
        if count != total:
            raise RuntimeError(f"seeded {count} tasks, wanted {total}")
        return SeedReport(
            total,
            probe,
            service_seconds,
            total - probe,
            bulk_seconds,
            matching,
            delivered,
            drain_seconds,
        )
    finally:
        await runtime.close()


async def count_matching(service: TaskService, where: TaskFilter) -> int:
    n, cursor = 0, None
    while True:
        page = await service.list_tasks(USER, where, 200, cursor)
        n += len(page.tasks)
        if page.next_cursor is None:
            return n
        cursor = page.next_cursor


# --------------------------------------------------------------------------------------------
# timing


def percentile(values: list[float], p: float) -> float:
    """Linear-interpolated percentile (p in 0..100)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(samples: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples]
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "mean_ms": statistics.fmean(ms),
        "min_ms": min(ms),
    }


@dataclass
class DbRun:
    db: str
    seed: SeedReport
    stats: dict[str, dict[str, dict[str, float]]] = field(
        default_factory=dict
    )  # api -> kind -> stats
    ratios: dict[str, dict[str, float]] = field(default_factory=dict)  # api -> kind -> p50 ratio
    passed: dict[str, dict[str, bool]] = field(default_factory=dict)
    in_process_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    # inside the server during the wire run: the middleware chain and the tool, no transport
    server_ms: dict[str, dict[str, float]] = field(default_factory=dict)


def add_args(n: int) -> dict[str, Any]:
    day = dt.date(2026, 12, 1) + dt.timedelta(days=n % 60)
    return {
        "title": f"Call the supplier about order {1000 + n}",
        "due": f"{day.isoformat()}T17:00",
        "priority": PRIORITIES[n % 5],
        "tags": ["inbox", "calls"],
    }


LIST_ARGS = {"tags": [LIST_TAG], "priority": LIST_PRIORITY, "limit": LIST_LIMIT}


async def time_over_stdio(
    env: dict[str, str], rounds: int, warmup: int, log_file: Path
) -> dict[str, dict[str, list[float]]]:
    """Per API (raw `call_tool_mcp`, full `call_tool`) and per kind, the round-trip seconds."""
    argv, env, cwd = server_command(env)
    transport = StdioTransport(
        command=argv[0],
        args=argv[1:],
        env=env,
        cwd=cwd,
        keep_alive=False,
        log_file=log_file,
    )
    samples: dict[str, dict[str, list[float]]] = {
        api: {kind: [] for kind in KINDS} for api in ("raw", "full")
    }
    counter = 0
    async with Client(transport) as client:
        names = {tool.name for tool in await client.list_tools()}
        missing = {"noop", "add_task", "list_tasks"} - names
        if missing:
            raise RuntimeError(f"bench server lacks tools {sorted(missing)}")

        async def raw(name: str, args: dict[str, Any]) -> Any:
            result = await client.call_tool_mcp(name, args)
            if result.is_error:
                raise RuntimeError(f"{name} failed: {result.content}")
            return result.structured_content

        async def full(name: str, args: dict[str, Any]) -> Any:
            return (await client.call_tool(name, args)).structured_content

        calls: dict[str, Callable[[str, dict[str, Any]], Awaitable[Any]]] = {
            "raw": raw,
            "full": full,
        }

        async def one_round(record: bool) -> None:
            nonlocal counter
            for api, call in calls.items():
                for kind in KINDS:
                    if kind == "noop":
                        args: dict[str, Any] = {}
                    elif kind == "add_task":
                        counter += 1
                        args = add_args(counter)
                    else:
                        args = LIST_ARGS
                    started = time.perf_counter()
                    out = await call(kind, args)
                    elapsed = time.perf_counter() - started
                    check(kind, out)
                    if record:
                        samples[api][kind].append(elapsed)

        for _ in range(warmup):
            await one_round(record=False)
        for _ in range(rounds):
            await one_round(record=True)
    return samples


async def time_over_wire(
    env: dict[str, str], rounds: int, warmup: int, log_file: Path
) -> dict[str, list[float]]:
    """The same rounds through a bare JSON-RPC client on the server's pipes: one line out, one
    line back, json.loads. This isolates the server and the stdio transport from the Python
    SDK client's own per-answer work (its jsonschema check of every structured answer)."""
    samples: dict[str, list[float]] = {kind: [] for kind in KINDS}
    with log_file.open("ab") as log:
        argv, env, cwd = server_command(env)
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            env={"PATH": os.environ.get("PATH", ""), **env},
            cwd=cwd,
            limit=2**24,
        )
        assert proc.stdin is not None and proc.stdout is not None
        stdin, stdout = proc.stdin, proc.stdout
        next_id = 0

        async def rpc(method: str, params: dict[str, Any]) -> dict[str, Any]:
            nonlocal next_id
            next_id += 1
            message = {"jsonrpc": "2.0", "id": next_id, "method": method, "params": params}
            stdin.write(json.dumps(message).encode() + b"\n")
            await stdin.drain()
            while True:
                line = await asyncio.wait_for(stdout.readline(), 30)
                if not line:
                    raise RuntimeError("bench server closed its stdout")
                answer: dict[str, Any] = json.loads(line)
                if answer.get("id") == next_id:
                    if "error" in answer:
                        raise RuntimeError(f"{method} failed: {answer['error']}")
                    result: dict[str, Any] = answer["result"]
                    return result

        try:
            await rpc(
                "initialize",
                {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "dueflow-bench-wire", "version": "1"},
                },
            )
            note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            stdin.write(json.dumps(note).encode() + b"\n")
            counter = 10_000_000

            async def one_round(record: bool) -> None:
                nonlocal counter
                for kind in KINDS:
                    if kind == "noop":
                        args: dict[str, Any] = {}
                    elif kind == "add_task":
                        counter += 1
                        args = add_args(counter)
                    else:
                        args = LIST_ARGS
                    started = time.perf_counter()
                    result = await rpc("tools/call", {"name": kind, "arguments": args})
                    elapsed = time.perf_counter() - started
                    if result.get("isError"):
                        raise RuntimeError(f"{kind} failed: {result['content']}")
                    check(kind, result.get("structuredContent"))
                    if record:
                        samples[kind].append(elapsed)

            for _ in range(warmup):
                await one_round(record=False)
            for _ in range(rounds):
                await one_round(record=True)
        finally:
            stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    return samples


def check(kind: str, out: Any) -> None:
    if kind == "noop":
        ok = out == {"ok": True}
    elif kind == "add_task":
        ok = bool(out and out.get("created") is True and out["task"]["tags"] == ["inbox", "calls"])
    else:
        tasks = out["tasks"] if out else []
        ok = len(tasks) == LIST_LIMIT and all(
            LIST_TAG in t["tags"] and t["priority"] == LIST_PRIORITY for t in tasks
        )
    if not ok:
        raise RuntimeError(f"unexpected {kind} answer: {str(out)[:300]}")


async def time_in_process(settings: Settings, n: int = 100) -> dict[str, float]:
    """p50 (ms) of the bare service calls in this process, no MCP: what the database path costs."""
    runtime = await bootstrap(settings)
    try:
        service = runtime.service
        add_t: list[float] = []
        list_t: list[float] = []
        for i in range(n):
            args = add_args(10_000 + i)
            new = NewTask(
                title=args["title"], due=args["due"], priority=args["priority"], tags=args["tags"]
            )
            started = time.perf_counter()
            await service.add(USER, new)
            add_t.append(time.perf_counter() - started)
            started = time.perf_counter()
            where = service.make_filter(ListArguments(priority=[LIST_PRIORITY], tags=[LIST_TAG]))
            page = await service.list_tasks(USER, where, LIST_LIMIT)
            list_t.append(time.perf_counter() - started)
            assert len(page.tasks) == LIST_LIMIT
        return {
            "service.add_p50_ms": percentile([t * 1000 for t in add_t], 50),
            "service.list_p50_ms": percentile([t * 1000 for t in list_t], 50),
        }
    finally:
        await runtime.close()


# --------------------------------------------------------------------------------------------
# one database


async def run_db(db: str, args: argparse.Namespace, workdir: Path) -> DbRun:
    env = {"DUEFLOW_USER": USER, "DUEFLOW_TIMEZONE": TIMEZONE, "DUEFLOW_LOG_LEVEL": "WARNING"}
    if db == "sqlite":
        data_dir = workdir / "sqlite"
        reset_sqlite(data_dir)
        env["DUEFLOW_DATA_DIR"] = str(data_dir)
    else:
        env["DUEFLOW_DATABASE_URL"] = await reset_postgres()
    settings = Settings.from_env(env)
    if settings.embedded:  # an embedded database is migrated by bootstrap itself
        engine = make_engine(settings.resolved_database_url())
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    print(f"[{db}] seeding {args.tasks} tasks ...", flush=True)
    report = await seed(settings, args.tasks)
    print(
        f"[{db}] seeded: {report.service_add_tasks} via TaskService.add at"
        f" {report.service_add_ms:.2f} ms each (10k would take"
        f" ~{report.service_add_ms * 10:.1f} s), {report.bulk_tasks} bulk in"
        f" {report.bulk_seconds:.2f} s, {report.drained_events} events delivered in"
        f" {report.drain_seconds:.2f} s; {report.matching_list_filter} tasks match"
        f" tag={LIST_TAG} priority={LIST_PRIORITY}",
        flush=True,
    )
    if report.matching_list_filter < LIST_LIMIT:
        raise RuntimeError("the list filter matches fewer tasks than one page")

    server_env = dict(env)
    server_env.update(item.split("=", 1) for item in args.env)
    server_env["FASTMCP_SHOW_SERVER_BANNER"] = "false"
    if args.relay == "off":
        server_env["DUEFLOW_BENCH_RELAY"] = "off"
    if args.profile:
        server_env["DUEFLOW_BENCH_CPROFILE"] = str(RESULTS / f"server-{db}.prof")
    print(
        f"[{db}] timing {args.rounds} rounds over stdio (after {args.warmup} warm-up) ...",
        flush=True,
    )
    log_file = workdir / f"server-{db}.log"
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        try:
            samples = await time_over_stdio(server_env, args.rounds, args.warmup, log_file)
        finally:
            profiler.disable()
            profiler.dump_stats(RESULTS / f"client-{db}.prof")
    else:
        samples = await time_over_stdio(server_env, args.rounds, args.warmup, log_file)

    timings_file = workdir / f"server-timings-{db}.json"
    wire_env = {**server_env, "DUEFLOW_BENCH_TIMINGS": str(timings_file)}
    samples["wire"] = await time_over_wire(wire_env, args.rounds, args.warmup, log_file)
    run = DbRun(db=db, seed=report)
    inside = json.loads(timings_file.read_text())
    # the last `rounds` calls of each tool: the timed ones, after the warm-up rounds
    run.server_ms = {kind: summary(inside[kind][-args.rounds :]) for kind in KINDS}
    for api, kinds in samples.items():
        run.stats[api] = {kind: summary(values) for kind, values in kinds.items()}
        base = run.stats[api]["noop"]["p50_ms"]
        run.ratios[api] = {k: run.stats[api][k]["p50_ms"] / base for k in TARGETS}
        run.passed[api] = {k: run.ratios[api][k] <= TARGETS[k] for k in TARGETS}
    run.in_process_ms = {"service": await time_in_process(settings)}
    return run


# --------------------------------------------------------------------------------------------
# output


def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "fastmcp": fastmcp.__version__,
        "mcp": getattr(mcp, "__version__", "2.3.0"),
        "sqlalchemy": sa.__version__,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "server_tree": str(SERVER_TREE),
    }


API_LABEL = {
    "wire": "bare JSON-RPC lines on the server's pipes (server + stdio transport only)",
    "raw": "call_tool_mcp (wire round trip + SDK output-schema check)",
    "full": "call_tool (also fastmcp's typed parsing of structured content)",
}


def table(runs: list[DbRun]) -> str:
    lines = [
        "| db | client API | tool | p50 ms | p90 ms | p99 ms | mean ms | p50 / noop | target"
        " | result |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        for api in ("wire", "raw", "full"):
            for kind in KINDS:
                s = run.stats[api][kind]
                if kind == "noop":
                    ratio, target, verdict = "1.00", "", ""
                else:
                    ratio = f"{run.ratios[api][kind]:.2f}"
                    target = f"<= {TARGETS[kind]:.0f}x"
                    verdict = "PASS" if run.passed[api][kind] else "FAIL"
                lines.append(
                    f"| {run.db} | {api} | {kind} | {s['p50_ms']:.2f} | {s['p90_ms']:.2f} |"
                    f" {s['p99_ms']:.2f} | {s['mean_ms']:.2f} | {ratio} | {target} | {verdict} |"
                )
    return "\n".join(lines)


def result_stem(args: argparse.Namespace) -> str:
    """Profiled figures are inflated by the profiler: they never replace the real ones."""
    if args.out:
        return str(args.out)
    if args.profile:
        return "stdio_latency_profiled"
    return "stdio_latency" if args.relay == "on" else "stdio_latency_no_relay"


def write_results(runs: list[DbRun], args: argparse.Namespace) -> None:
    RESULTS.mkdir(exist_ok=True)
    info = machine()
    data = {
        "machine": info,
        "parameters": {
            "tasks": args.tasks,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "list_call": LIST_ARGS,
            "add_call_example": add_args(1),
            "targets_p50_ratio_to_noop": TARGETS,
            "profile": args.profile,
        },
        "runs": [
            {
                "db": run.db,
                "seed": {
                    "tasks": run.seed.tasks,
                    "service_add_tasks": run.seed.service_add_tasks,
                    "service_add_ms_each": run.seed.service_add_ms,
                    "bulk_tasks": run.seed.bulk_tasks,
                    "bulk_seconds": run.seed.bulk_seconds,
                    "tasks_matching_list_filter": run.seed.matching_list_filter,
                },
                "stats": run.stats,
                "p50_ratio_to_noop": run.ratios,
                "pass": run.passed,
                "in_process": run.in_process_ms,
                "inside_server_during_wire_run": run.server_ms,
            }
            for run in runs
        ],
    }
    (RESULTS / f"{result_stem(args)}.json").write_text(json.dumps(data, indent=2) + "\n")

    md = [
        "# Dueflow stdio round-trip latency",
        "",
        f"- date: {info['date']}",
        f"- machine: nproc={info['nproc']}, Python {info['python']}, {info['platform']}",
        f"- fastmcp {info['fastmcp']}, SQLAlchemy {info['sqlalchemy']}",
        f"- {args.tasks} tasks seeded for one user; {args.rounds} timed rounds after"
        f" {args.warmup} warm-up rounds; each round calls noop, add_task, list_tasks with"
        " call_tool_mcp, then the same three with call_tool (sequential, one stdio session)",
        f"- list_tasks: `{json.dumps(LIST_ARGS)}` (must return {LIST_LIMIT} tasks)",
        f"- add_task: e.g. `{json.dumps(add_args(1))}`",
        f"- targets: add_task p50 <= {TARGETS['add_task']:.0f}x noop p50;"
        f" list_tasks p50 <= {TARGETS['list_tasks']:.0f}x noop p50",
        f"- client APIs: wire = {API_LABEL['wire']}, the figures the targets (and the exit"
        f" status) judge; raw = {API_LABEL['raw']}; full = {API_LABEL['full']}",
        "",
        table(runs),
        "",
        "## Seeding and in-process service cost (no MCP)",
        "",
        "| db | TaskService.add while seeding, ms each | bulk insert | matching tasks |"
        " service.add p50 ms | service.list p50 ms |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for run in runs:
        svc = run.in_process_ms["service"]
        md.append(
            f"| {run.db} | {run.seed.service_add_ms:.2f} ({run.seed.service_add_tasks} tasks) |"
            f" {run.seed.bulk_tasks} tasks in {run.seed.bulk_seconds:.2f} s |"
            f" {run.seed.matching_list_filter} | {svc['service.add_p50_ms']:.2f} |"
            f" {svc['service.list_p50_ms']:.2f} |"
        )
    md += [
        "",
        "## Inside the server (wire run): middleware chain and tool, without the transport",
        "",
        "| db | tool | p50 ms | p90 ms | wire p50 ms | wire minus inside |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for run in runs:
        for kind in KINDS:
            inside, wire = run.server_ms[kind], run.stats["wire"][kind]
            md.append(
                f"| {run.db} | {kind} | {inside['p50_ms']:.2f} | {inside['p90_ms']:.2f} |"
                f" {wire['p50_ms']:.2f} | {wire['p50_ms'] - inside['p50_ms']:.2f} |"
            )
    (RESULTS / f"{result_stem(args)}.md").write_text("\n".join(md) + "\n")


async def amain(args: argparse.Namespace) -> int:
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    runs: list[DbRun] = []
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dueflow-bench-") as tmp:
        for db in dbs:
            runs.append(await run_db(db, args, Path(tmp)))
            log = Path(tmp) / f"server-{db}.log"
            if log.exists() and log.stat().st_size:
                shutil.copy(log, RESULTS / f"server-{db}.log")
    print()
    print(table(runs))
    write_results(runs, args)
    stem = result_stem(args)
    print(f"\nwrote {RESULTS / (stem + '.json')} and {RESULTS / (stem + '.md')}")
    # judged on the wire round trip: the raw and full figures add the SDK client's own work
    return 0 if all(all(run.passed["wire"].values()) for run in runs) else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument(
        "--out", help="file stem under results/ (default stdio_latency; experiments: use another)"
    )
    parser.add_argument(
        "--relay",
        choices=("on", "off"),
        default="on",
        help="off: serve without the outbox relay, to see its share (not the figure of record)",
    )
    parser.add_argument(
        "--env", action="append", default=[], help="a DUEFLOW_X=value setting for the server"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the server subprocess and the client loop: results/{server,client}-<db>.prof"
        " (the figures are then inflated by the profiler; use them for shares, not for targets)",
    )
    return asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
