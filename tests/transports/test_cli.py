"""The `dueflow` command as a user runs it: settings refused early, schema managed, HTTP served."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from fastmcp import Client

from domain.adapters.schema import head_revision
from tests.support.servers import (
    ALICE_TOKEN,
    STARTUP_SECONDS,
    child_env,
    dueflow_command,
    free_port,
    run_dueflow,
    wait_until_listening,
)

# the newest migration the code ships (0001 when these tests were written)
AT_HEAD = f"current: {head_revision()}  head: {head_revision()}"


def tables(database: Path) -> set[str]:
    with closing(sqlite3.connect(database)) as db:
        return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_a_token_shorter_than_16_characters_is_refused_naming_dueflow_tokens(
    tmp_path: Path,
) -> None:
    done = run_dueflow(
        tmp_path,
        "serve",
        "--transport",
        "http",
        "--port",
        str(free_port()),
        DUEFLOW_DATA_DIR=str(tmp_path / "data"),
        DUEFLOW_TOKENS=f"short=alice,{ALICE_TOKEN}=bob",
    )
    assert done.returncode != 0
    assert "DUEFLOW_TOKENS" in done.stderr
    assert "16" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_time_zone_is_refused_naming_dueflow_timezone(tmp_path: Path) -> None:
    done = run_dueflow(
        tmp_path,
        "db",
        "current",
        DUEFLOW_DATA_DIR=str(tmp_path / "data"),
        DUEFLOW_TIMEZONE="Mars/Olympus_Mons",
    )
    assert done.returncode != 0
    assert "DUEFLOW_TIMEZONE" in done.stderr
    assert "Traceback" not in done.stderr


def test_db_upgrade_creates_the_schema_and_db_current_reports_head(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    upgraded = run_dueflow(tmp_path, "db", "upgrade", DUEFLOW_DATA_DIR=str(data))
    current = run_dueflow(tmp_path, "db", "current", DUEFLOW_DATA_DIR=str(data))

    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout == ""
    assert {"tasks", "task_tags", "outbox", "idempotency_keys"} <= tables(data / "dueflow.db")
    assert current.returncode == 0, current.stderr
    assert current.stdout.strip() == AT_HEAD


def test_db_upgrade_twice_leaves_the_schema_at_head(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = run_dueflow(tmp_path, "db", "upgrade", DUEFLOW_DATA_DIR=str(data))
    second = run_dueflow(tmp_path, "db", "upgrade", DUEFLOW_DATA_DIR=str(data))
    current = run_dueflow(tmp_path, "db", "current", DUEFLOW_DATA_DIR=str(data))
    assert (first.returncode, second.returncode) == (0, 0), second.stderr
    assert current.stdout.strip() == AT_HEAD


def test_db_current_without_a_database_says_so_without_a_traceback(tmp_path: Path) -> None:
    done = run_dueflow(tmp_path, "db", "current", DUEFLOW_DATA_DIR=str(tmp_path / "nowhere"))
    assert "Traceback" not in done.stderr
    assert "current: none" in done.stdout.lower() or "dueflow db upgrade" in done.stderr


def test_serving_an_unmigrated_database_is_refused_until_db_upgrade(tmp_path: Path) -> None:
    database = tmp_path / "unmigrated.db"
    with closing(sqlite3.connect(database)) as db:
        db.execute("CREATE TABLE unrelated (x INTEGER)")
    url = f"sqlite+aiosqlite:///{database}"

    refused = run_dueflow(tmp_path, "serve", DUEFLOW_DATABASE_URL=url)
    left_alone = tables(database)
    upgraded = run_dueflow(tmp_path, "db", "upgrade", DUEFLOW_DATABASE_URL=url)
    current = run_dueflow(tmp_path, "db", "current", DUEFLOW_DATABASE_URL=url)

    assert refused.returncode != 0
    assert "dueflow db upgrade" in refused.stderr
    assert "DUEFLOW_DATABASE_URL" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert refused.stdout == ""
    assert "tasks" not in left_alone
    assert upgraded.returncode == 0, upgraded.stderr
    assert current.stdout.strip() == AT_HEAD


@pytest.mark.parametrize(("transport", "path"), [("http", "/mcp"), ("sse", "/sse")])
async def test_dueflow_serve_over_http_refuses_anonymous_requests_and_serves_token_holders(
    tmp_path: Path, transport: str, path: str
) -> None:
    port = free_port()
    env = child_env(
        tmp_path,
        DUEFLOW_DATA_DIR=str(tmp_path / "data"),
        DUEFLOW_TOKENS=f"{ALICE_TOKEN}=alice",
    )
    command = dueflow_command("serve", "--transport", transport, "--port", str(port))
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            command,
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            await wait_until_listening(proc, port)
            url = f"http://127.0.0.1:{port}{path}"
            async with httpx.AsyncClient(timeout=10) as http:
                if transport == "http":
                    anonymous = await http.post(url, json={"jsonrpc": "2.0", "id": 1})
                else:
                    anonymous = await http.get(url)
            async with Client(url, auth=ALICE_TOKEN, timeout=STARTUP_SECONDS) as alice:
                added = await alice.call_tool("add_task", {"title": "Served for real"})
            proc.send_signal(signal.SIGTERM)
            returncode = proc.wait(timeout=STARTUP_SECONDS)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=STARTUP_SECONDS)

    assert anonymous.status_code == 401
    assert added.structured_content["task"]["title"] == "Served for real"
    with closing(sqlite3.connect(tmp_path / "data" / "dueflow.db")) as db:
        assert db.execute("SELECT user_id, title FROM tasks").fetchall() == [
            ("alice", "Served for real")
        ]
        # the relay inside serve delivered the change to the embedded audit consumer
        assert db.execute("SELECT event_type FROM audit_log").fetchall() == [("TASK_CREATED",)]
    logged = stderr_path.read_text()
    # uvicorn shuts down gracefully on SIGTERM; the process then closes the runtime and exits 0
    assert returncode == 0, logged
    assert "Application shutdown complete" in logged
    assert "Traceback" not in logged
    assert ALICE_TOKEN not in logged
