"""One process on SQLite, with and without the writer queue: does taking turns cost a single
`dueflow serve` anything?

    PYTHONPATH=. .venv/bin/python tests/bench/bench_queue_one_process.py [--blocks 16] [--adds 150]

The embedded runtime as `dueflow serve` wires it (its relay and in-process workers running
beside the requests), adding tasks back to back through TaskService, each marked as a request
being served. Blocks alternate between the queue as it is and no queue at all (the lookup of the
queue answers None, as for an in-memory database), on fresh connections each block. Writes
results/sqlite_queue_one_process.md. Not part of the test suite (see README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from domain.adapters import sqlite_writer_queue
from domain.clock import SystemClock
from domain.service import NewTask
from tests.support.runtimes import embedded_runtime

RESULTS = Path(__file__).resolve().parent / "results"
BESIDE = sqlite_writer_queue.WriterQueue.beside


def no_queue(_connection: Any) -> None:
    return None


async def run(blocks: int, adds: int) -> dict[str, tuple[list[float], float]]:
    samples: dict[str, list[float]] = {"queue": [], "no queue": []}
    cpu = {"queue": 0.0, "no queue": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        runtime = await embedded_runtime(
            f"sqlite+aiosqlite:///{folder / 'dueflow.db'}", folder, SystemClock()
        )
        try:
            async with runtime.running():
                for block in range(blocks):
                    mode = "queue" if block % 2 == 0 else "no queue"
                    lookup = BESIDE if mode == "queue" else no_queue
                    sqlite_writer_queue.WriterQueue.beside = lookup  # type: ignore[method-assign]
                    await runtime.engine.dispose()  # new connections look the queue up again
                    started = time.process_time()
                    for n in range(adds):
                        begun = time.perf_counter()
                        with runtime.foreground.serving():
                            await runtime.service.add("bench", NewTask(title=f"b{block} t{n}"))
                        samples[mode].append((time.perf_counter() - begun) * 1000)
                    cpu[mode] += time.process_time() - started
        finally:
            sqlite_writer_queue.WriterQueue.beside = BESIDE  # type: ignore[method-assign]
            await runtime.close()
    return {mode: (values, cpu[mode]) for mode, values in samples.items()}


def row(mode: str, values: list[float], cpu: float) -> str:
    ordered = sorted(values)
    at = lambda p: ordered[min(len(ordered) - 1, int(len(ordered) * p))]  # noqa: E731
    return (
        f"| {mode} | {len(values)} | {statistics.median(values):.2f} | {at(0.9):.2f} |"
        f" {at(0.99):.2f} | {ordered[-1]:.1f} | {cpu / len(values) * 1000:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--adds", type=int, default=150)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    lines = [
        "# One process on SQLite, with and without the writer queue",
        "",
        f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}; {os.cpu_count()} CPUs (load"
        f" {os.getloadavg()[0]:.2f} when it started). Each run: {args.blocks} blocks of"
        f" {args.adds} adds, alternating; add latency in ms, CPU per add in ms.",
    ]
    for number in range(args.runs):
        found = asyncio.run(run(args.blocks, args.adds))
        lines += [
            "",
            f"Run {number + 1}:",
            "",
            "| writers | adds | p50 | p90 | p99 | max | CPU per add |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *(row(mode, values, cpu) for mode, (values, cpu) in found.items()),
        ]
        print("\n".join(lines[-4:]), flush=True)
    lines += [
        "",
        "Rerun: `PYTHONPATH=. .venv/bin/python tests/bench/bench_queue_one_process.py`",
        "",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sqlite_queue_one_process.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
