"""add_task latency with several `dueflow serve` processes writing to one database.

    .venv/bin/python tests/bench/bench_writers.py [--db sqlite|postgres|both] [--procs 1,2,4,8]
                                                  [--adds 300] [--warmup 20] [--out STEM]

For each database and each process count N: a fresh, migrated database; N real `dueflow serve`
processes on stdio (embedded bus: each runs its relay and the in-process workers, as a user's
machine would), each acting as its own user; each sends `--warmup` then `--adds` add_task calls
back to back on bare JSON-RPC lines, all N at once. Reports add_task p50/p90/p99/max over every
timed call of the N processes, the calls answered with an error (none expected), and whether
every add reached the outbox once and was delivered. Writes tests/bench/results/<STEM>.md
(default `sqlite_writers`) and prints the table. Not part of the test suite (see README.md).

`--before <checkout>` also serves every case from another checkout of Dueflow with the same
schema (e.g. `git archive main | tar -x -C /tmp/base`), with this venv's packages: the two
alternate, case by case and `--repeat` times, so machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa

from domain.adapters.schema import downgrade, upgrade
from domain.adapters.sql import make_engine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULTS = HERE / "results"
PG_ADMIN_URL = os.environ.get(
    "DUEFLOW_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
PG_DATABASE = os.environ.get("DUEFLOW_BENCH_PG_DATABASE", "dueflow_bench_writers")
PRIORITIES = ("none", "low", "medium", "high", "urgent")


def pg_url() -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{PG_DATABASE}"


async def fresh_database(db: str, workdir: Path) -> str:
    """The URL of an empty database at the schema's head."""
    if db == "postgres":
        admin = await asyncpg.connect(PG_ADMIN_URL)
        try:
            if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname=$1", PG_DATABASE):
                await admin.execute(f'CREATE DATABASE "{PG_DATABASE}"')
        finally:
            await admin.close()
        url = pg_url()
    else:
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        url = f"sqlite:///{workdir / 'dueflow.db'}"
    engine = make_engine(url)
    try:
        if db == "postgres":
            await downgrade(engine)
        await upgrade(engine)
    finally:
        await engine.dispose()
    return url


def add_args(process: int, n: int) -> dict[str, Any]:
    day = dt.date(2026, 12, 1) + dt.timedelta(days=n % 60)
    return {
        "title": f"Writer {process} task {n}",
        "due": f"{day.isoformat()}T17:00",
        "priority": PRIORITIES[n % 5],
        "tags": ["inbox", f"writer-{process}"],
    }


@dataclass
class Case:
    """One run: a database, a number of processes, the checkout that serves."""

    db: str
    procs: int
    tree: Path
    label: str


@dataclass
class Writer:
    """One `dueflow serve` process and the add_task calls sent to it."""

    index: int
    samples: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class Phases:
    """What every writer waits for: all started (`start`), all added (`finish`)."""

    start: asyncio.Event = field(default_factory=asyncio.Event)
    finish: asyncio.Event = field(default_factory=asyncio.Event)
    ready: asyncio.Queue[int] = field(default_factory=asyncio.Queue)
    added: asyncio.Queue[int] = field(default_factory=asyncio.Queue)


class StdioServer:
    """A `dueflow serve` child on stdio, spoken to in bare JSON-RPC lines."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.proc, self._stdin, self._stdout = proc, proc.stdin, proc.stdout
        self._id = 0

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """One request and its answer; a JSON-RPC error comes back as an isError result."""
        self._id += 1
        line = {"jsonrpc": "2.0", "id": self._id, "method": method, "params": params}
        self._stdin.write(json.dumps(line).encode() + b"\n")
        await self._stdin.drain()
        while True:
            raw = await asyncio.wait_for(self._stdout.readline(), 60)
            if not raw:
                raise RuntimeError("a server closed its stdout")
            answer: dict[str, Any] = json.loads(raw)
            if answer.get("id") == self._id:
                if "error" in answer:
                    return {"isError": True, "content": [answer["error"]]}
                result: dict[str, Any] = answer["result"]
                return result

    def notify(self, method: str) -> None:
        self._stdin.write(json.dumps({"jsonrpc": "2.0", "method": method}).encode() + b"\n")

    async def stop(self) -> None:
        """Close stdin (the server's way to stop) and wait for it to exit."""
        self._stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def drive(
    index: int, url: str, case: Case, args: argparse.Namespace, phases: Phases, logs: Path
) -> Writer:
    """Start a server and warm it up; once every writer is ready, add as fast as it answers;
    once every writer has added, stop it."""
    writer = Writer(index)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(logs),
        "PYTHONPATH": str(case.tree),
        "DUEFLOW_DATABASE_URL": url,
        "DUEFLOW_USER": f"writer-{index}",
        "DUEFLOW_LOG_LEVEL": "WARNING",
    }
    with (logs / f"server-{index}.log").open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "dueflow", "serve"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            env=env,
            cwd=str(case.tree),
            limit=2**24,
        )
        server = StdioServer(proc)
        try:
            await server.call(
                "initialize",
                {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "dueflow-bench-writers", "version": "1"},
                },
            )
            server.notify("notifications/initialized")
            for n in range(args.warmup):
                await add(server, writer, index, -n - 1, timed=False)
            await phases.ready.put(index)
            await phases.start.wait()
            for n in range(args.adds):
                await add(server, writer, index, n, timed=True)
            await phases.added.put(index)
            await phases.finish.wait()
        finally:
            await server.stop()
    return writer


async def add(server: StdioServer, writer: Writer, index: int, n: int, *, timed: bool) -> None:
    started = time.perf_counter()
    result = await server.call("tools/call", {"name": "add_task", "arguments": add_args(index, n)})
    elapsed = time.perf_counter() - started
    if result.get("isError"):
        writer.errors.append(json.dumps(result.get("content"))[:300])
    elif timed:
        writer.samples.append(elapsed)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Result:
    case: Case
    samples: list[float]  # ms
    errors: list[str]
    throughput: float
    backlog: int  # undelivered outbox rows when the last add answered
    events: str  # what the outbox held at the end

    def cells(self) -> str:
        ms = self.samples
        name = "SQLite" if self.case.db == "sqlite" else "PostgreSQL"
        return (
            f"| {name} | {self.case.procs} | {self.case.label} | {len(ms)} | {len(self.errors)} |"
            f" {percentile(ms, 50):.1f} | {percentile(ms, 90):.1f} | {percentile(ms, 99):.1f} |"
            f" {max(ms):.1f} | {self.throughput:.0f} | {self.backlog} | {self.events} |"
        )


async def outbox_counts(url: str) -> tuple[int, int, int]:
    """Outbox rows, distinct event ids, rows not yet delivered."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            total, distinct, undelivered = (
                await conn.execute(
                    sa.text(
                        "SELECT count(*), count(DISTINCT event_id),"
                        " count(*) - count(published_at) FROM outbox"
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    return int(total), int(distinct), int(undelivered)


async def run_case(case: Case, args: argparse.Namespace, workdir: Path) -> Result:
    name = f"{case.db}-{case.procs}-{case.label}"
    url = await fresh_database(case.db, workdir / name)
    logs = workdir / f"logs-{name}"
    logs.mkdir(parents=True, exist_ok=True)
    phases = Phases()
    tasks = [
        asyncio.create_task(drive(i, url, case, args, phases, logs)) for i in range(case.procs)
    ]
    await every_writer(phases.ready, tasks, timeout=120)
    began = time.perf_counter()
    phases.start.set()
    await every_writer(phases.added, tasks, timeout=600)
    wall = time.perf_counter() - began
    _total, _distinct, backlog = await outbox_counts(url)
    phases.finish.set()
    writers = await asyncio.gather(*tasks)
    errors = [e for w in writers for e in w.errors]
    total, distinct, _undelivered = await outbox_counts(url)
    expected = case.procs * (args.adds + args.warmup) - len(errors)
    events = f"{total} of {expected}" + ("" if distinct == total else f", {distinct} distinct")
    samples = [s * 1000 for w in writers for s in w.samples]
    return Result(case, samples, errors, len(samples) / wall, backlog, events)


async def every_writer(
    queue: asyncio.Queue[int], tasks: list[asyncio.Task[Writer]], *, timeout: float
) -> None:
    """Wait until each writer has put itself on `queue`; raise a writer's failure."""
    for _ in tasks:
        getter = asyncio.ensure_future(queue.get())
        done, _ = await asyncio.wait(
            [getter, *tasks], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if getter not in done:
            getter.cancel()
            for task in tasks:
                if task.done():
                    task.result()
            raise RuntimeError("a writer did not get there in time")


HEADER = (
    "| db | processes | server | adds timed | errors | p50 ms | p90 ms | p99 ms | max ms |"
    " adds/s | backlog at end | events in outbox |\n"
    "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)


def machine() -> str:
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} CPUs (load {load[0]:.2f} when it started), Python"
        f" {platform.python_version()}, SQLite {sqlite3.sqlite_version}, SQLAlchemy"
        f" {sa.__version__}, {platform.system()} {platform.release()}"
    )


def cases(args: argparse.Namespace) -> list[Case]:
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    trees = [(Path(args.after).resolve(), "after" if args.before else "this checkout")]
    if args.before:
        trees.insert(0, (Path(args.before).resolve(), "before"))
    found = []
    for db in dbs:
        for procs in (int(p) for p in args.procs.split(",")):
            for repeat in range(args.repeat):
                order = trees if repeat % 2 == 0 else trees[::-1]
                found += [Case(db, procs, tree, label) for tree, label in order]
    return found


async def amain(args: argparse.Namespace) -> None:
    about = machine()
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    results: list[Result] = []
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory(prefix="dueflow-writers-") as tmp:
        workdir = Path(args.keep) if args.keep else Path(tmp)
        for case in cases(args):
            result = await run_case(case, args, workdir)
            results.append(result)
            print(result.cells(), flush=True)
    errors = [f"- {r.case.db}, {r.case.procs}: `{r.errors[0]}`" for r in results if r.errors]
    report = [
        f"# add_task with several writer processes on one database ({args.out})",
        "",
        f"{started}; {about}.",
        f"Each process: `dueflow serve` on stdio (embedded bus, its own relay and workers),"
        f" {args.warmup} warm-up adds, then {args.adds} timed adds back to back, all processes at"
        " once. Backlog at end: outbox rows not yet delivered when the last add answered.",
        "",
        HEADER,
        *(r.cells() for r in results),
        *(["", "First error of each run with errors:", *errors] if errors else []),
        "",
        "Rerun: `.venv/bin/python tests/bench/bench_writers.py --db "
        f"{args.db} --procs {args.procs} --adds {args.adds} --repeat {args.repeat}"
        + (" --before <checkout>" if args.before else "")
        + f" --out {args.out}`",
        "",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.md").write_text("\n".join(report))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--procs", default="1,2,4,8")
    parser.add_argument("--adds", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--before", help="another checkout to serve every case from as well")
    parser.add_argument("--after", default=str(ROOT), help="the checkout to serve (this one)")
    parser.add_argument("--out", default="sqlite_writers")
    parser.add_argument("--keep", help="a folder to keep the databases and server logs in")
    asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    main()
