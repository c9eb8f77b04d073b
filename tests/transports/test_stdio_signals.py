"""`dueflow serve` on stdio stops on Ctrl+C (SIGINT) or SIGTERM, not only at end of input, and
keeps what it acknowledged."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from tests.support.servers import (
    INITIALIZE,
    STARTUP_SECONDS,
    answer,
    child_env,
    dueflow_command,
    send,
)


def initialize_and_add(server: subprocess.Popen[str]) -> None:
    """Start an MCP session and add one task, acknowledged."""
    send(server, INITIALIZE)
    assert answer(server)["id"] == 1
    send(server, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    call = {"name": "add_task", "arguments": {"title": "Kept"}}
    send(server, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call})
    added = answer(server)
    assert added["id"] == 2 and not added["result"].get("isError")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_stdio_server_with_its_acknowledged_writes_kept(
    tmp_path: Path, signum: signal.Signals
) -> None:
    data = tmp_path / "data"
    with subprocess.Popen(
        dueflow_command("serve"),
        env=child_env(tmp_path, DUEFLOW_DATA_DIR=str(data), DUEFLOW_USER="alice"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            initialize_and_add(server)
            server.send_signal(signum)
            code = server.wait(timeout=STARTUP_SECONDS)
        finally:
            if server.poll() is None:
                server.kill()
        assert server.stderr is not None
        stderr = server.stderr.read()

    assert code == 0, stderr
    assert "stopped by signal" in stderr and "Traceback" not in stderr
    with closing(sqlite3.connect(data / "dueflow.db")) as db:
        assert db.execute("SELECT user_id, title FROM tasks").fetchall() == [("alice", "Kept")]
