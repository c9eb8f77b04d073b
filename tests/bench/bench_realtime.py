"""Realtime gateway: commit -> WebSocket message latency, and idle connections on one process.

    .venv/bin/python tests/bench/bench_realtime.py [--db sqlite|postgres|both]
        [--seconds 10] [--idle 5000]

`dueflow serve --transport http` (embedded: relay, consumers and gateway in one process) runs as
its own process on each database. In the bench process:
  rates   100 WebSocket clients of 10 users (10 each), read by a process of their own; the
          producer (class Producer) offers 50 and then 500 changes/s in total for --seconds: each
          user has 40 tasks and 4 MCP sessions with one call in flight each, and a session takes
          every change of its user that is due when it is free, as one update_task or one bulk
          update_task(tasks=[...]) (one transaction, one event per task). Each message's latency
          is its arrival minus the change's commit-time stamp (the event's `at`); the feed row's
          created_at splits it into commit -> feed row (the relay pass: its wake-up and the
          consumers before the realtime one) and feed row -> client (the rest of the pass, its
          commit, the fan-out and the sockets).
  idle    --idle connections of one user on a fresh server: the server's resident memory before
          and after, and for 20 changes the arrival of each message on every connection (the
          fan-out of one change to every connection of that user): p50/p99.
DUEFLOW_BENCH_SERVER=<another checkout's .venv/bin/dueflow> serves that checkout's code instead
(the same producer and readers measure it: a before/after comparison).
Targets (issue #17): p99 <= 50 ms at 50 changes/s and <= 250 ms at 500 changes/s. Writes
tests/bench/results/realtime.md. Not part of the test suite (tests/realtime runs a tiny sample).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# `tests.support` from a checkout run as `python tests/bench/<bench>.py`
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx
import sqlalchemy as sa
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from domain.adapters.schema import upgrade
from domain.adapters.sql import make_engine
from tests.support.database import emptied_bench_database

RESULTS = Path(__file__).with_name("results")
PG_ADMIN = os.environ.get("DUEFLOW_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_BENCH = "dueflow_bench_realtime"
# DUEFLOW_BENCH_SERVER=<another checkout's .venv/bin/dueflow>: serve that code (same schema), the
# same producer and readers measuring it (a before/after comparison)
DUEFLOW = Path(os.environ.get("DUEFLOW_BENCH_SERVER") or Path(sys.executable).with_name("dueflow"))
LANES = 4  # MCP sessions per user, one call in flight each
TASKS_PER_USER = 40  # the producer's changes go round robin over these


@dataclass
class RateFigures:
    db: str
    target_rate: float
    achieved_rate: float
    changes: int
    calls: int
    messages: int
    missing: int
    failed_calls: int
    p50_ms: float
    p99_ms: float
    relay_p50_ms: float
    relay_p99_ms: float
    gateway_p50_ms: float
    gateway_p99_ms: float
    server_cpu_share: float  # the server's CPU seconds per second of the phase
    server_cpu_ms_per_change: float
    db_cpu_share: float | None  # the bench database's backends' CPU s per second (None: SQLite)
    producer_cpu_share: float  # this process's (the producer's MCP clients)
    load: float  # the machine's 1-minute load average at the phase's end


@dataclass
class IdleFigures:
    db: str
    connections: int
    rss_before_mb: float
    rss_after_mb: float
    per_connection_kb: float
    fanout_p50_ms: float
    fanout_p99_ms: float
    fanout_last_p99_ms: float  # the slowest connection's arrival, per change


@dataclass
class Served:
    base: str
    pid: int
    url: str
    tokens: dict[str, str] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def reset_postgres() -> str:
    return await emptied_bench_database(PG_ADMIN, PG_BENCH)


@contextlib.asynccontextmanager
async def serving(db: str, home: Path, users: Sequence[str]) -> AsyncIterator[Served]:
    """`dueflow serve --transport http` on a fresh database, each user with a token."""
    url = await reset_postgres() if db == "postgres" else f"sqlite+aiosqlite:///{home / 'rt.db'}"
    if db == "sqlite":
        engine = make_engine(url)
        await upgrade(engine)
        await engine.dispose()
    tokens = {user: f"{user}-bench-token-0123456789" for user in users}
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "DUEFLOW_DATABASE_URL": url,
        "DUEFLOW_TOKENS": ",".join(f"{token}={user}" for user, token in tokens.items()),
        "DUEFLOW_CALLS_PER_SECOND": "100000",
        "DUEFLOW_CALLS_BURST": "100000",
        "DUEFLOW_CALLS_IN_FLIGHT": "64",
        "DUEFLOW_REALTIME_QUEUE_SIZE": "4096",
        "DUEFLOW_LOG_LEVEL": "WARNING",
        # every ticket is fetched before the reader processes connect (5,000 take minutes)
        "DUEFLOW_REALTIME_TICKET_SECONDS": "3600",
    }
    proc = subprocess.Popen(
        [str(DUEFLOW), "serve", "--transport", "http", "--port", str(port)],
        env=env,
        cwd=home,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            break
        base = f"http://127.0.0.1:{port}"
        yield Served(base, proc.pid, url, tokens)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def tickets(served: Served, per_user: dict[str, int]) -> list[tuple[str, str]]:
    """(user, "<socket URL> <fresh ticket>"): `per_user[user]` for each user."""
    urls = []
    socket_url = served.base.replace("http", "ws") + "/realtime/ws"
    async with httpx.AsyncClient(timeout=30) as http:
        for user, count in per_user.items():
            headers = {"Authorization": f"Bearer {served.tokens[user]}"}
            for _ in range(count):
                ticket = (
                    await http.post(f"{served.base}/realtime/tickets", headers=headers)
                ).json()
                urls.append((user, f"{socket_url} {ticket['ticket']}"))
    return urls


Arrival = tuple[int, float, str]  # position, arrival (time.time()), the change's `at`


async def receive(socket_: ClientConnection, arrivals: list[Arrival]) -> None:
    """Record each change's arrival until the socket closes."""
    with contextlib.suppress(Exception):
        async for raw in socket_:
            now = time.time()
            message = json.loads(raw)
            if message["type"] == "change":
                arrivals.append((message["position"], now, message["at"]))


async def _read_sockets(urls: Sequence[str]) -> None:
    """A reader process (`--reader`, socket URLs on stdin as one JSON line): open every socket
    (past its hello), answer "ready"; then per command line, "count" (arrivals so far), "clear"
    (forget them) or "stop" (every socket's arrivals, one list per socket). Answers are JSON
    lines on stdout."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 20_000)), hard))
    sockets = []
    for target in urls:
        url, ticket = target.split(" ")
        offered = [Subprotocol("dueflow.v1"), Subprotocol(f"dueflow.ticket.{ticket}")]
        socket_ = await connect(
            url, subprotocols=offered, max_queue=None, ping_interval=None, open_timeout=60
        )
        assert json.loads(await socket_.recv())["type"] == "hello"
        sockets.append(socket_)
    arrivals: list[list[Arrival]] = [[] for _ in sockets]
    readers = [asyncio.create_task(receive(s, a)) for s, a in zip(sockets, arrivals, strict=True)]
    loop = asyncio.get_running_loop()

    def answer(value: object) -> None:
        sys.stdout.write(json.dumps(value) + "\n")
        sys.stdout.flush()

    answer("ready")
    while True:
        command = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if command == "count":
            answer(sum(len(a) for a in arrivals))
        elif command == "clear":
            for arrived in arrivals:
                arrived.clear()
            answer("cleared")
        else:
            break
    for socket_ in sockets:
        await socket_.close()
    for reader in readers:
        reader.cancel()
    answer(arrivals)


class Readers:
    """WebSocket clients read by `processes` processes of their own (this file with --reader):
    the producer's calls and the readers share no event loop, so an arrival is stamped when it
    arrives, not when the producer lets the loop go."""

    def __init__(self, urls: Sequence[tuple[str, str]], processes: int = 1) -> None:
        self.users = [user for user, _ in urls]
        self._shares = [[u for _, u in urls[k::processes]] for k in range(processes)]
        self._order = [i for k in range(processes) for i in range(len(urls))[k::processes]]
        self._procs: list[asyncio.subprocess.Process] = []

    async def ready(self) -> None:
        for share in self._shares:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(Path(__file__).resolve()),
                "--reader",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=2**30,
            )
            assert proc.stdin is not None
            proc.stdin.write((json.dumps(share) + "\n").encode())
            self._procs.append(proc)
        await self._ask("")

    async def _ask(self, command: str) -> list[Any]:
        answers = []
        for proc in self._procs:
            assert proc.stdin is not None and proc.stdout is not None
            if command:
                proc.stdin.write((command + "\n").encode())
                await proc.stdin.drain()
            answers.append(json.loads(await proc.stdout.readline()))
        return answers

    async def clear(self) -> None:
        await self._ask("clear")

    async def count(self) -> int:
        return sum(int(n) for n in await self._ask("count"))

    async def stop(self) -> dict[int, list[Arrival]]:
        """Every socket's arrivals, by the socket's index in the urls given."""
        lists = [
            [(int(p), float(t), str(a)) for p, t, a in one]
            for answer in await self._ask("stop")
            for one in answer
        ]
        for proc in self._procs:
            await proc.wait()
        return {index: lists[k] for k, index in enumerate(self._order)}


def stamp(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def feed_times(url: str) -> dict[tuple[str, int], float]:
    """When each feed row was written, by (user, position)."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text("SELECT user_id, position, created_at FROM realtime_changes")
            )
            found = {}
            for user, position, created in rows:
                if isinstance(created, str):
                    created = dt.datetime.fromisoformat(created)
                if created.tzinfo is None:
                    created = created.replace(tzinfo=dt.UTC)
                found[(user, int(position))] = created.timestamp()
            return found
    finally:
        await engine.dispose()


class Producer:
    """Offers `rate` changes/s: change i is due at start + i/rate, for user i mod users, on the
    next of that user's tasks (round robin). Each user has LANES MCP clients (sessions) with one
    call in flight each; a lane takes every change of its user that is due when it is free, as
    one update_task (one change) or one bulk update_task(tasks=[...]) (several, one
    transaction, one event per task): behind schedule the changes still go out at the rate
    offered, in fewer, larger calls, as an agent's bulk edits would."""

    def __init__(self, users: Sequence[str], tasks: dict[str, list[str]], rate: float) -> None:
        self._users = list(users)
        self._tasks = tasks
        self._rate = rate
        self.failed = 0
        self.calls = 0
        self.refusals: dict[str, int] = {}  # a refused call's text -> the changes it carried

    async def run(self, mcps: dict[str, list[Client]], total: int) -> float:
        """Offer `total` changes; answer the rate achieved (changes committed per second)."""
        started = time.perf_counter()
        users = len(self._users)
        queues = {user: list(range(u, total, users)) for u, user in enumerate(self._users)}

        async def lane(user: str, mcp: Client) -> None:
            pending = queues[user]
            # no two lanes of a user hold the same task at once: a batch takes at most
            # tasks / LANES of them
            most = max(1, min(100, len(self._tasks[user]) // LANES))
            while pending:
                now = time.perf_counter() - started
                if pending[0] / self._rate > now:
                    await asyncio.sleep(pending[0] / self._rate - now)
                    continue
                count = 1
                while count < min(most, len(pending)) and pending[count] / self._rate <= now:
                    count += 1
                batch, pending[:count] = pending[:count], []
                own = self._tasks[user]
                items = [
                    {"task_id": own[(i // users) % len(own)], "title": f"{user} change {i}"}
                    for i in batch
                ]
                arguments = items[0] if len(items) == 1 else {"tasks": items}
                answer = await mcp.call_tool("update_task", arguments, raise_on_error=False)
                self.calls += 1
                if answer.is_error:
                    self.failed += len(items)
                    text = getattr(answer.content[0], "text", "") if answer.content else ""
                    self.refusals[text[:300]] = self.refusals.get(text[:300], 0) + len(items)

        await asyncio.gather(*(lane(user, mcp) for user in self._users for mcp in mcps[user]))
        return total / (time.perf_counter() - started)


async def rate_run(
    db: str, served: Served, rate: float, seconds: float, per_user: int = 10, settle: float = 1.0
) -> RateFigures:
    users = sorted(served.tokens)
    urls = await tickets(served, dict.fromkeys(users, per_user))
    readers = Readers([(user, url) for user, url in urls])
    await readers.ready()
    mcps: dict[str, list[Client]] = {}
    tasks: dict[str, list[str]] = {}
    async with contextlib.AsyncExitStack() as stack:
        for user in users:
            headers = {"Authorization": f"Bearer {served.tokens[user]}"}
            mcps[user] = [
                await stack.enter_async_context(
                    Client(StreamableHttpTransport(f"{served.base}/mcp", headers=headers))
                )
                for _ in range(LANES)
            ]
            added = await mcps[user][0].call_tool(
                "add_task",
                {"tasks": [{"title": f"{user} bench {k}"} for k in range(TASKS_PER_USER)]},
            )
            tasks[user] = [t["id"] for t in added.structured_content["tasks"]]  # type: ignore[index]
        await asyncio.sleep(settle)
        await readers.clear()
        total = int(rate * seconds)
        cpu_before, wall_before = cpu_seconds(served.pid), time.perf_counter()
        db_before, own_before = bench_backends(), time.process_time()
        producer = Producer(users, tasks, rate)
        achieved = await producer.run(mcps, total)
        failed = producer.failed
        for text, changes in producer.refusals.items():
            print(f"refused ({changes} changes): {text}", file=sys.stderr)
        total -= failed
        expected = total * per_user
        deadline = time.perf_counter() + 30
        while await readers.count() < expected and time.perf_counter() < deadline:
            await asyncio.sleep(0.2)
        cpu = cpu_seconds(served.pid) - cpu_before
        wall = time.perf_counter() - wall_before
        db_cpu, own_cpu = backends_cpu_since(db_before), time.process_time() - own_before
    arrivals = await readers.stop()
    feed = await feed_times(served.url)
    latencies, relay, gateway = [], [], []
    for i, user in enumerate(readers.users):
        for position, arrived, at in arrivals[i]:
            committed = stamp(at)
            latencies.append((arrived - committed) * 1000)
            written = feed.get((user, position))
            if written is not None:
                relay.append((written - committed) * 1000)
                gateway.append((arrived - written) * 1000)
    received = sum(len(a) for a in arrivals.values())
    return RateFigures(
        db,
        rate,
        round(achieved, 1),
        total,
        producer.calls,
        received,
        expected - received,
        failed,
        round(pct(latencies, 0.5), 1),
        round(pct(latencies, 0.99), 1),
        round(pct(relay, 0.5), 1),
        round(pct(relay, 0.99), 1),
        round(pct(gateway, 0.5), 1),
        round(pct(gateway, 0.99), 1),
        round(cpu / wall, 2),
        round(cpu * 1000 / max(1, total), 2),
        round(db_cpu / wall, 2) if db == "postgres" else None,
        round(own_cpu / wall, 2),
        round(os.getloadavg()[0], 1),
    )


def cpu_seconds(pid: int) -> float:
    """The process's user + system CPU time so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_backends() -> dict[int, float]:
    """The CPU time so far of each PostgreSQL backend serving the bench database, by pid."""
    found = {}
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError):
            if PG_BENCH.encode() not in (proc / "cmdline").read_bytes():
                continue
            text = (proc / "stat").read_text()
            if text[text.index("(") + 1 : text.rindex(")")] == "postgres":
                fields = text.rpartition(")")[2].split()
                found[int(proc.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf(
                    "SC_CLK_TCK"
                )
    return found


def backends_cpu_since(before: dict[int, float]) -> float:
    """CPU seconds the bench database's backends used since `before` (one that ended is lost)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in bench_backends().items())


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def idle_run(
    db: str, served: Served, connections: int, changes: int = 20, settle: float = 1.0
) -> IdleFigures:
    user = next(iter(served.tokens))
    await asyncio.sleep(settle)
    before = rss_mb(served.pid)
    readers = Readers(
        await tickets(served, {user: connections}), processes=2 if connections >= 1000 else 1
    )
    await readers.ready()
    await asyncio.sleep(2 * settle)
    after = rss_mb(served.pid)
    transport = StreamableHttpTransport(
        f"{served.base}/mcp", headers={"Authorization": f"Bearer {served.tokens[user]}"}
    )
    async with Client(transport) as mcp:
        task = (await mcp.call_tool("add_task", {"title": "fan-out"})).structured_content
        task_id = task["task"]["id"]  # type: ignore[index]
        await asyncio.sleep(3 * settle)
        await readers.clear()
        for i in range(changes):
            await mcp.call_tool("update_task", {"task_id": task_id, "title": f"fan-out {i}"})
            deadline = time.perf_counter() + 30
            while await readers.count() < (i + 1) * connections and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
    arrivals = await readers.stop()
    feed = await feed_times(served.url)
    per_delivery, last_by_position = [], {}
    for arrived in arrivals.values():
        for position, when, _ in arrived:
            written = feed[(user, position)]
            per_delivery.append((when - written) * 1000)
            last_by_position[position] = max(last_by_position.get(position, 0.0), when - written)
    return IdleFigures(
        db,
        connections,
        round(before, 1),
        round(after, 1),
        round((after - before) * 1024 / connections, 1),
        round(pct(per_delivery, 0.5), 1),
        round(pct(per_delivery, 0.99), 1),
        round(pct([v * 1000 for v in last_by_position.values()], 0.99), 1),
    )


def report(rates: list[RateFigures], idle: list[IdleFigures], seconds: float) -> str:
    load = os.getloadavg()
    lines = [
        "# Realtime gateway: commit -> WebSocket message",
        "",
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()},"
        f" {os.cpu_count()} cores, Python {platform.python_version()}; load average before the"
        f" run {load[0]:.1f} (other sessions share the machine). `tests/bench/bench_realtime.py`,"
        f" {seconds:g} s per rate; embedded `dueflow serve --transport http` as its own process.",
        "",
        "Producer: 10 users x 4 MCP sessions over HTTP, one call in flight each; a session sends"
        " every change of its user due when it is free as one update_task or one bulk"
        " update_task(tasks=[...]) (`calls` = tool calls made; a change = one committed task"
        " change, one event). The 100 WebSocket clients are read by a process of their own."
        " Latency = arrival at the client - the change's commit-time stamp. `relay` = commit ->"
        " the realtime feed row's stamp (the relay's wake-up and the pass up to the realtime"
        " consumer); `gateway` = feed row -> client (the rest of the pass and its commit, the"
        " fan-out, the socket, the reading process). `server CPU share` = the server process's"
        " CPU seconds per second of the phase (1.0 = one core; on an idle 2-core machine it"
        " could take ~1.0); `server CPU ms/change` = its CPU time per change, everything"
        " included (HTTP, MCP, the use case, the relay pass, the consumers, the fan-out);"
        " `db CPU share` = the same for the PostgreSQL backends serving the bench database"
        " (SQLite works inside the server); `producer CPU share` = the bench process's (its"
        " MCP clients).",
        "",
        "| db | target /s | achieved /s | changes | calls | messages | missing | failed changes |"
        " p50 ms |"
        " p99 ms |"
        " relay p50 | relay p99 | gateway p50 | gateway p99 | target p99 | met |"
        " server CPU share | server CPU ms/change | db CPU share | producer CPU share | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rates:
        target = 50 if r.target_rate <= 50 else 250
        met = "yes" if r.p99_ms <= target and not r.missing else "no"
        lines.append(
            f"| {r.db} | {r.target_rate:g} | {r.achieved_rate} | {r.changes} | {r.calls} |"
            f" {r.messages} |"
            f" {r.missing} | {r.failed_calls} | {r.p50_ms} | {r.p99_ms} | {r.relay_p50_ms} |"
            f" {r.relay_p99_ms} |"
            f" {r.gateway_p50_ms} | {r.gateway_p99_ms} | {target} | {met} |"
            f" {r.server_cpu_share} | {r.server_cpu_ms_per_change} |"
            f" {'-' if r.db_cpu_share is None else r.db_cpu_share} | {r.producer_cpu_share} |"
            f" {r.load} |"
        )
    lines += [
        "",
        "## Idle connections on one gateway process",
        "",
        "All connections belong to one user; 20 changes; fan-out = feed row -> arrival on each"
        " connection (two reader processes read every socket, so their own time is in the"
        " figure).",
        "",
        "| db | connections | RSS before MB | RSS after MB | KB per connection |"
        " fan-out p50 ms | fan-out p99 ms | last connection p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i in idle:
        lines.append(
            f"| {i.db} | {i.connections} | {i.rss_before_mb} | {i.rss_after_mb} |"
            f" {i.per_connection_kb} | {i.fanout_p50_ms} | {i.fanout_p99_ms} |"
            f" {i.fanout_last_p99_ms} |"
        )
    return "\n".join(lines) + "\n"


async def main(
    dbs: list[str], seconds: float, idle_connections: int, rates: list[float], out: str
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 20_000)), hard))
    rate_figures, idle_figures = [], []
    users = [f"user{i}" for i in range(10)]
    for db in dbs:
        for rate in rates:
            with tempfile.TemporaryDirectory() as home:
                async with serving(db, Path(home), users) as served:
                    figures = await rate_run(db, served, rate, seconds)
                    print(figures, flush=True)
                    rate_figures.append(figures)
        if idle_connections:
            with tempfile.TemporaryDirectory() as home:
                async with serving(db, Path(home), users[:1]) as served:
                    idle = await idle_run(db, served, idle_connections)
                    print(idle, flush=True)
                    idle_figures.append(idle)
    text = report(rate_figures, idle_figures, seconds)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / out).write_text(text)
    print(text)


if __name__ == "__main__":
    if sys.argv[1:] == ["--reader"]:
        asyncio.run(_read_sockets(json.loads(sys.stdin.readline())))
        sys.exit(0)
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--idle", type=int, default=5000)
    parser.add_argument("--rates", default="50,500")
    parser.add_argument("--out", default="realtime.md", help="the results file's name")
    args = parser.parse_args()
    chosen = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    rates = [float(r) for r in args.rates.split(",")]
    asyncio.run(main(chosen, args.seconds, args.idle, rates, args.out))
