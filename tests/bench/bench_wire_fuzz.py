"""The wire fuzzer's long run: thousands of mutated MCP messages to `dueflow serve` on stdio and
over streamable HTTP, each its own process.

    .venv/bin/python -m tests.bench.bench_wire_fuzz [--messages 5000] [--seed 14]

Plans --messages mutated lines and bodies (tests/support/wire_fuzzing.py), sends them to a fresh
stdio server (each line followed by a ping that must be answered) and to a fresh HTTP server (in
one session, with alice's token), and writes tests/bench/results/wire_fuzz.md. Exits 1 if any
message got an internal error, a 5xx, something other than JSON-RPC on stdout, or no answer.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import subprocess
import tempfile
from pathlib import Path

from tests.support.wire_fuzzing import WireTally, fuzz_http, fuzz_stdio, plan

RESULTS = Path(__file__).with_name("results")
SHOWN_FAILURES = 40


async def amain(args: argparse.Namespace) -> int:
    figures: dict[str, WireTally] = {}
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch)
        figures["stdio"] = fuzz_stdio(home, plan(args.seed, args.messages))
        figures["http"] = await fuzz_http(home, plan(args.seed + 1, args.messages))
    for transport, tally in figures.items():
        print(
            f"{transport}: {tally.sent} sent in {tally.seconds:.0f} s,"
            f" {len(tally.failures)} failures"
        )
        for failure in tally.failures[:SHOWN_FAILURES]:
            print("  ", failure[:300])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "wire_fuzz.md").write_text(report(args, figures))
    return 1 if any(tally.failures for tally in figures.values()) else 0


def report(args: argparse.Namespace, figures: dict[str, WireTally]) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    lines = [
        "# Mutated MCP messages on the wire (tests/bench/bench_wire_fuzz.py)",
        "",
        f"- {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, commit {commit}, nproc={os.cpu_count()},"
        f" Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}",
        f"- `--messages {args.messages} --seed {args.seed}`",
        "",
        "| transport | sent | answers | failures | wall time | HTTP statuses |"
        " JSON-RPC error codes |",
        "|---|---|---|---|---|---|---|",
    ]
    for transport, tally in figures.items():
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(tally.statuses.items())) or "-"
        codes = ", ".join(f"{c}: {n}" for c, n in sorted(tally.error_codes.items())) or "-"
        lines.append(
            f"| {transport} | {tally.sent} | {tally.answers} | {len(tally.failures)} |"
            f" {tally.seconds:.0f} s | {statuses} | {codes} |"
        )
    for transport, tally in figures.items():
        if tally.failures:
            lines += ["", f"## {transport}: failures (the first {SHOWN_FAILURES})", ""]
            lines += [f"- `{failure[:300]}`" for failure in tally.failures[:SHOWN_FAILURES]]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=5_000, help="messages per transport")
    parser.add_argument("--seed", type=int, default=14)
    return asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
