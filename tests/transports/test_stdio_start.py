"""`dueflow serve` over stdio loads only what it uses. On a database at the schema's head it
imports no migrations, no Dapr or gRPC code, no HTTP client and no PostgreSQL dialect (Starlette
and uvicorn come with fastmcp itself, so the MCP layer loads them either way)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.transports.conftest import STARTUP_SECONDS, child_env, dueflow_command

UNUSED = ("alembic", "asyncpg", "dapr", "google.protobuf", "grpc", "httpx", "mako")
UNUSED_SQL = "sqlalchemy.dialects.postgresql"
# `dueflow serve` in a process that lists its modules on the way out
SERVE_AND_LIST_MODULES = """
import atexit, sys
atexit.register(lambda: print("modules:", *sorted(sys.modules), file=sys.stderr))
from dueflow.cli import main
raise SystemExit(main(["serve"]))
"""
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}


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
    upgraded = run(dueflow_command("db", "upgrade"), tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr

    served = run(
        [sys.executable, "-c", SERVE_AND_LIST_MODULES], tmp_path, json.dumps(INITIALIZE) + "\n"
    )

    assert served.returncode == 0, served.stderr
    assert json.loads(served.stdout.splitlines()[0])["result"]["serverInfo"]["name"] == "dueflow"
    listed = next(line for line in served.stderr.splitlines() if line.startswith("modules:"))
    loaded = listed.split()[1:]
    assert [name for name in loaded if name.split(".")[0] in UNUSED] == []
    assert [name for name in loaded if name.startswith(UNUSED_SQL)] == []
