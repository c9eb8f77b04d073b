"""What metrics cost on the stdio round trip: bench_stdio.py's wire rounds with metrics on
(DUEFLOW_METRICS_PORT set: tool calls counted and timed, /metrics served and scraped) and off,
alternating in one run on one seeded database.

    .venv/bin/python tests/bench/bench_metrics_cost.py [--db sqlite|postgres|both] [--tasks 10000]
        [--rounds 300] [--warmup 30] [--sessions 4] [--baseline-tree PATH]

Each database is reset and seeded as bench_stdio.py does; then --sessions wire sessions of
--rounds/--sessions rounds each alternate off, on, off, on, ... (each a fresh server process);
with --baseline-tree, a checkout without the metrics code (e.g. `git worktree add /tmp/base
<commit>`) serves a third arm. While metrics are on, /metrics is scraped every second, as
Prometheus would. Writes tests/bench/results/metrics_cost.{json,md}. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_stdio as stdio

from dueflow.settings import Settings

ARMS = ("off", "on")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def scraping(port: int, stop: asyncio.Event) -> int:
    """Scrape /metrics every second until `stop`; answer how many scrapes answered 200."""
    done = 0
    async with httpx.AsyncClient(timeout=5) as http:
        while not stop.is_set():
            try:
                answer = await http.get(f"http://127.0.0.1:{port}/metrics")
                done += answer.status_code == 200
            except httpx.TransportError:
                pass
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    return done


async def one_session(
    env: dict[str, str], arm: str, rounds: int, warmup: int, log: Path, tree: Path | None
) -> tuple[dict[str, list[float]], int]:
    env = dict(env)
    stop = asyncio.Event()
    scraper = None
    if arm == "on":
        port = free_port()
        env["DUEFLOW_METRICS_PORT"] = str(port)
        scraper = asyncio.create_task(scraping(port, stop))
    if tree is not None:
        stdio.SERVER_TREE = tree
    try:
        samples = await stdio.time_over_wire(env, rounds, warmup, log)
    finally:
        stdio.SERVER_TREE = stdio.ROOT
        stop.set()
    scrapes = await scraper if scraper is not None else 0
    return samples, scrapes


async def run_db(db: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    env = {"DUEFLOW_USER": stdio.USER, "DUEFLOW_TIMEZONE": stdio.TIMEZONE}
    env["DUEFLOW_LOG_LEVEL"] = "WARNING"
    if db == "sqlite":
        data_dir = workdir / "sqlite"
        stdio.reset_sqlite(data_dir)
        env["DUEFLOW_DATA_DIR"] = str(data_dir)
    else:
        env["DUEFLOW_DATABASE_URL"] = await stdio.reset_postgres()
    print(f"[{db}] seeding {args.tasks} tasks ...", flush=True)
    await stdio.seed(Settings.from_env(env), args.tasks)
    server_env = {**env, "FASTMCP_SHOW_SERVER_BANNER": "false"}
    arms = [*ARMS, *(["baseline"] if args.baseline_tree else [])]
    samples: dict[str, dict[str, list[float]]] = {
        arm: {kind: [] for kind in stdio.KINDS} for arm in arms
    }
    scrapes = 0
    per_session = max(args.rounds // args.sessions, 1)
    for session in range(args.sessions):
        for arm in arms if session % 2 == 0 else reversed(arms):
            tree = Path(args.baseline_tree) if arm == "baseline" else None
            print(f"[{db}] session {session + 1}: metrics {arm}", flush=True)
            found, scraped = await one_session(
                server_env, arm, per_session, args.warmup, workdir / f"server-{db}.log", tree
            )
            scrapes += scraped
            for kind, values in found.items():
                samples[arm][kind].extend(values)
    stats = {arm: {k: stdio.summary(v) for k, v in kinds.items()} for arm, kinds in samples.items()}
    ratios = {
        arm: {k: stats[arm][k]["p50_ms"] / stats[arm]["noop"]["p50_ms"] for k in stdio.TARGETS}
        for arm in arms
    }
    return {"db": db, "stats": stats, "ratios": ratios, "scrapes": scrapes}


def markdown(runs: list[dict[str, Any]], args: argparse.Namespace) -> str:
    machine = stdio.machine()
    lines = [
        "# What metrics cost on the stdio round trip",
        "",
        f"- date: {machine['date']}",
        f"- machine: nproc={machine['nproc']}, Python {machine['python']}, {machine['platform']}",
        f"- fastmcp {machine['fastmcp']}, SQLAlchemy {machine['sqlalchemy']}",
        f"- {args.tasks} tasks seeded; {args.rounds} timed wire rounds per arm in {args.sessions}"
        f" sessions alternating off/on (each a fresh server, {args.warmup} warm-up rounds);"
        " each round calls noop, add_task, list_tasks as bare JSON-RPC lines (bench_stdio.py's"
        " wire client)",
        "- off: `dueflow serve` over stdio without DUEFLOW_METRICS_PORT (no tool-call metrics;"
        " the relay's and workers' counters still count); on: DUEFLOW_METRICS_PORT set, every"
        " tool call counted and timed, /metrics scraped every second during the rounds"
        + (
            "; baseline: the server from a checkout without the metrics code"
            if args.baseline_tree
            else ""
        ),
        "- targets (bench_stdio.py): add_task p50 <= 2x noop p50; list_tasks p50 <= 3x noop p50",
        "",
        "| db | metrics | tool | p50 ms | p90 ms | p99 ms | p50 / noop | target | result |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        for arm, kinds in run["stats"].items():
            for kind in stdio.KINDS:
                s = kinds[kind]
                if kind == "noop":
                    ratio, target, verdict = "1.00", "", ""
                else:
                    value = run["ratios"][arm][kind]
                    ratio, target = f"{value:.2f}", f"<= {stdio.TARGETS[kind]:.0f}x"
                    verdict = "PASS" if value <= stdio.TARGETS[kind] else "FAIL"
                lines.append(
                    f"| {run['db']} | {arm} | {kind} | {s['p50_ms']:.2f} | {s['p90_ms']:.2f} |"
                    f" {s['p99_ms']:.2f} | {ratio} | {target} | {verdict} |"
                )
    lines += ["", "| db | tool | p50 on minus off, ms |", "|---|---|---:|"]
    for run in runs:
        for kind in stdio.KINDS:
            on, off = run["stats"]["on"][kind]["p50_ms"], run["stats"]["off"][kind]["p50_ms"]
            lines.append(f"| {run['db']} | {kind} | {on - off:+.3f} |")
    scrapes = ", ".join(f"{run['db']}: {run['scrapes']}" for run in runs)
    lines += ["", f"Scrapes answered during the 'on' sessions: {scrapes}.", ""]
    return "\n".join(lines)


async def amain(args: argparse.Namespace) -> int:
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    with tempfile.TemporaryDirectory(prefix="dueflow-metrics-cost-") as tmp:
        runs = [await run_db(db, args, Path(tmp)) for db in dbs]
    stdio.RESULTS.mkdir(exist_ok=True)
    (stdio.RESULTS / "metrics_cost.json").write_text(json.dumps(runs, indent=2) + "\n")
    text = markdown(runs, args)
    (stdio.RESULTS / "metrics_cost.md").write_text(text)
    print(text)
    met = all(
        run["ratios"]["on"][kind] <= target
        for run in runs
        for kind, target in stdio.TARGETS.items()
    )
    return 0 if met else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--baseline-tree", default=None)
    args = parser.parse_args()
    started = dt.datetime.now(dt.UTC)
    code = asyncio.run(amain(args))
    print(f"took {(dt.datetime.now(dt.UTC) - started).total_seconds():.0f} s")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
