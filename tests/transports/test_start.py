"""What a `dueflow` process loads as it starts, and that it collects garbage once it runs.

`dueflow serve` over stdio on a database at the schema's head imports no migrations, no Dapr or
gRPC code, no HTTP client and no PostgreSQL dialect (Starlette and uvicorn come with fastmcp
itself, so the MCP layer loads them either way). The console script defers garbage collection
while a command loads; every command must resume it (dueflow.heap)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.servers import INITIALIZE, STARTUP_SECONDS, child_env, run_dueflow

UNUSED = ("alembic", "asyncpg", "dapr", "google.protobuf", "grpc", "httpx", "mako")
UNUSED_SQL = "sqlalchemy.dialects.postgresql"
# the console script's `dueflow ARGS` in a process that tells, on the way out, whether it collects
# garbage and which modules it loaded
REPORTING = """
import atexit, gc, sys
atexit.register(lambda: print("collecting:", gc.isenabled(), file=sys.stderr))
atexit.register(lambda: print("modules:", *sorted(sys.modules), file=sys.stderr))
sys.argv[1:] = {args!r}
from dueflow.__main__ import main
raise SystemExit(main())
"""


def reporting(*args: str) -> list[str]:
    """The command line of `dueflow ARGS` in a process that reports as REPORTING does."""
    return [sys.executable, "-c", REPORTING.format(args=list(args))]


def run(command: list[str], home: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run `command` to completion (bounded) on the embedded database under `home`."""
    return subprocess.run(
        command,
        input=stdin,
        env=child_env(home, DUEFLOW_DATA_DIR=str(home / "data")),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
        check=False,
    )


def test_a_stdio_start_on_a_migrated_database_imports_nothing_it_does_not_use(
    tmp_path: Path,
) -> None:
    upgraded = run_dueflow(tmp_path, "db", "upgrade", DUEFLOW_DATA_DIR=str(tmp_path / "data"))
    assert upgraded.returncode == 0, upgraded.stderr

    served = run(reporting("serve"), tmp_path, json.dumps(INITIALIZE) + "\n")

    assert served.returncode == 0, served.stderr
    assert json.loads(served.stdout.splitlines()[0])["result"]["serverInfo"]["name"] == "dueflow"
    listed = next(line for line in served.stderr.splitlines() if line.startswith("modules:"))
    loaded = listed.split()[1:]
    assert [name for name in loaded if name.split(".")[0] in UNUSED] == []
    assert [name for name in loaded if name.startswith(UNUSED_SQL)] == []
    assert "collecting: True" in served.stderr.splitlines()


def test_a_short_command_collects_garbage_as_usual(tmp_path: Path) -> None:
    done = run(reporting("db", "current"), tmp_path)

    assert done.returncode == 0, done.stderr
    assert "collecting: True" in done.stderr.splitlines()
