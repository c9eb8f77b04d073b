"""Cold start of `dueflow serve` over stdio against a no-op FastMCP server.

Each run spawns a fresh process with a clean environment, writes a JSON-RPC `initialize` request
to its stdin and times the wall clock from spawn to the `initialize` answer on its stdout (then,
as a check that the server is usable and not just answering early, to the `tools/list` answer
that follows). The servers are interleaved, in a rotating order, so machine noise hits them alike.

    .venv/bin/python tests/bench/bench_coldstart.py                       # 15 runs of each
    .venv/bin/python tests/bench/bench_coldstart.py --runs 25 --repo ../base --label before

Servers, each run:
- noop: `FastMCP("noop")` with one no-op tool, `run(transport="stdio", show_banner=False)`,
  on this checkout's venv (the same fastmcp as Dueflow's);
- dueflow (migrated): `dueflow serve` on a copy of an embedded SQLite database already at the
  schema's head, the usual start and the figure the target judges;
- dueflow (fresh): `dueflow serve` on an empty data dir, so this start also creates the schema;
- with `--repo PATH`, the same two for the checkout at PATH, served by PATH/.venv/bin/dueflow.

Target: median dueflow (migrated) / median noop <= 1.3. Figures go to
tests/bench/results/coldstart.md (`--out` to change).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TARGET = 1.3

NOOP_SERVER = """
from fastmcp import FastMCP

mcp = FastMCP("noop")


@mcp.tool
def noop() -> str:
    \"\"\"Do nothing.\"\"\"
    return "ok"


mcp.run(transport="stdio", show_banner=False)
"""

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "bench_coldstart", "version": "1"},
    },
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
LIST_TOOLS = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


@dataclass
class Server:
    """One kind of process to start: its command, and how to prepare its data dir per run."""

    name: str
    command: list[str]
    template: Path | None = None  # a data dir copied for each run; None: an empty one
    embedded: bool = True  # whether it takes DUEFLOW_DATA_DIR
    initialize: list[float] = field(default_factory=list)  # seconds, spawn -> answer
    tools: list[float] = field(default_factory=list)  # seconds, spawn -> tools/list answer
    cpu: list[float] = field(default_factory=list)  # user + system seconds, spawn -> answer


def clean_env(home: Path, data_dir: Path | None) -> dict[str, str]:
    """Only what a process needs: no DUEFLOW_*, PYTHON* or user configuration leaks in."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    if data_dir is not None:
        env["DUEFLOW_DATA_DIR"] = str(data_dir)
    return env


def _line(message: Mapping[str, object]) -> bytes:
    return (json.dumps(message) + "\n").encode()


def _answer(stdout: IO[bytes], request_id: int) -> None:
    """Read stdout lines until the answer to `request_id`; fail on EOF or an error answer."""
    while True:
        line = stdout.readline()
        if not line:
            raise RuntimeError("the server closed stdout before answering (or timed out)")
        try:
            message = json.loads(line)
        except ValueError:
            raise RuntimeError(f"not JSON-RPC on stdout: {line[:200]!r}") from None
        if message.get("id") == request_id:
            if "result" not in message:
                raise RuntimeError(f"request {request_id} failed: {message}")
            return


def start_once(server: Server, work: Path, timeout: float) -> tuple[float, float, float]:
    """Spawn `server` once: seconds from spawn to the initialize answer and to tools/list's, and
    the CPU seconds the process had used by the initialize answer."""
    run_dir = Path(tempfile.mkdtemp(dir=work))
    home, data = run_dir / "home", run_dir / "data"
    home.mkdir()
    if server.template is not None:
        shutil.copytree(server.template, data)
    stderr = (run_dir / "stderr").open("wb")
    started = time.perf_counter()
    process = subprocess.Popen(
        server.command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=clean_env(home, data if server.embedded else None),
        cwd=run_dir,
    )
    assert process.stdin is not None and process.stdout is not None
    watchdog = threading.Timer(timeout, process.kill)  # a hung server ends in EOF, not a hang
    watchdog.start()
    try:
        process.stdin.write(_line(INITIALIZE))
        process.stdin.flush()
        _answer(process.stdout, 1)
        initialized = time.perf_counter() - started
        cpu = cpu_seconds(process.pid)
        process.stdin.write(_line(INITIALIZED) + _line(LIST_TOOLS))
        process.stdin.flush()
        _answer(process.stdout, 2)
        listed = time.perf_counter() - started
    except Exception as exc:
        watchdog.cancel()
        process.kill()
        process.wait()
        stderr.close()
        tail = (run_dir / "stderr").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{server.name}: {exc}\n--- its stderr ---\n{tail}") from None
    process.stdin.close()  # EOF: the server shuts down
    process.wait()
    watchdog.cancel()
    stderr.close()
    shutil.rmtree(run_dir, ignore_errors=True)
    return initialized, listed, cpu


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` (all its threads) so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def migrated_template(dueflow: Path, work: Path, name: str) -> Path:
    """A data dir whose embedded database is at the schema's head (`dueflow db upgrade`)."""
    template = work / f"template-{name}"
    (template / "data").mkdir(parents=True)
    subprocess.run(
        [str(dueflow), "db", "upgrade"],
        env=clean_env(template, template / "data"),
        check=True,
        capture_output=True,
    )
    return template / "data"


def servers_of(repo: Path, label: str, work: Path) -> list[Server]:
    dueflow = repo / ".venv" / "bin" / "dueflow"
    if not dueflow.exists():
        sys.exit(f"{dueflow} is missing: set up that checkout's venv first (see README)")
    serve = [str(dueflow), "serve"]
    return [
        Server(f"{label} migrated", serve, migrated_template(dueflow, work, label)),
        Server(f"{label} fresh", serve),
    ]


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))]


def commit_of(repo: Path) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), "log", "-1", "--format=%h %s"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip()[:72] or "?"


def report(servers: list[Server], repos: dict[str, Path], runs: int, loads: list[str]) -> str:
    noop = statistics.median(servers[0].initialize)
    noop_cpu = statistics.median(servers[0].cpu)
    lines = [
        "# Cold start: spawn to the `initialize` answer over stdio",
        "",
        f"- {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}, nproc={os.cpu_count()},"
        f" Python {platform.python_version()}, load average at start / end: {loads[0]} /"
        f" {loads[1]}",
        f"- {runs} runs of each server, interleaved in a rotating order; clean environment,"
        " embedded SQLite in a temp dir; `tests/bench/bench_coldstart.py`",
        *(f"- {label}: {path} at {commit_of(path)}" for label, path in repos.items()),
        f"- target: median of `dueflow serve` on an already-migrated database <= {TARGET}x the"
        " no-op FastMCP server's (fresh: the first start, which also creates the schema)",
        "- initialize / tools/list: wall time from spawn to that answer; CPU: the process's user +"
        " system time by the initialize answer (10 ms ticks), less sensitive to the load",
        "",
        "| server | initialize p50 ms | p90 ms | min ms | / noop p50 | tools/list p50 ms"
        " | CPU p50 ms | CPU / noop |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for server in servers:
        median = statistics.median(server.initialize)
        cpu = statistics.median(server.cpu)
        p90 = percentile(server.initialize, 0.9)
        lines.append(
            f"| {server.name} | {median * 1000:.0f} | {p90 * 1000:.0f}"
            f" | {min(server.initialize) * 1000:.0f} | {median / noop:.2f}"
            f" | {statistics.median(server.tools) * 1000:.0f}"
            f" | {cpu * 1000:.0f} | {cpu / noop_cpu:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="starts of each server (default 15)")
    parser.add_argument("--repo", type=Path, help="also measure the checkout at PATH (its .venv)")
    parser.add_argument("--label", default="other", help="what to call --repo (default other)")
    parser.add_argument("--this-label", default="dueflow", help="what to call this checkout")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per start")
    parser.add_argument(
        "--out", type=Path, default=HERE / "results" / "coldstart.md", help="the markdown report"
    )
    args = parser.parse_args()

    repos = {args.this_label: REPO} | ({args.label: args.repo.resolve()} if args.repo else {})
    with tempfile.TemporaryDirectory(prefix="dueflow-coldstart-") as tmp:
        work = Path(tmp)
        python = REPO / ".venv" / "bin" / "python"
        servers = [Server("noop FastMCP", [str(python), "-c", NOOP_SERVER], embedded=False)]
        if args.repo:
            servers += servers_of(repos[args.label], args.label, work)
        servers += servers_of(REPO, args.this_label, work)
        loads = [" ".join(f"{x:.1f}" for x in os.getloadavg())]
        for server in servers:  # one unmeasured start each: page cache and .pyc files warm
            start_once(server, work, args.timeout)
        for run in range(args.runs):
            shift = run % len(servers)
            for server in servers[shift:] + servers[:shift]:
                initialized, listed, cpu = start_once(server, work, args.timeout)
                server.initialize.append(initialized)
                server.tools.append(listed)
                server.cpu.append(cpu)
            print(
                f"run {run + 1}/{args.runs}: "
                + ", ".join(f"{s.name} {s.initialize[-1] * 1000:.0f}" for s in servers)
                + " ms",
                file=sys.stderr,
            )
        loads.append(" ".join(f"{x:.1f}" for x in os.getloadavg()))
    text = report(servers, repos, args.runs, loads)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    this = next(s for s in servers if s.name == f"{args.this_label} migrated")
    ratio = statistics.median(this.initialize) / statistics.median(servers[0].initialize)
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
