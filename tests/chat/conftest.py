"""One `dueflow serve --transport http` for the chat tests of a module that reach it by URL."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.support.chat import ZONE
from tests.support.servers import (
    ALICE_TOKEN,
    BOB_TOKEN,
    STARTUP_SECONDS,
    child_env,
    dueflow_command,
    free_port,
)


@pytest.fixture(scope="module")
def dueflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The MCP URL of a real HTTP server (its own process) where alice and bob have tokens."""
    home = tmp_path_factory.mktemp("server")
    port = free_port()
    proc = subprocess.Popen(
        dueflow_command("serve", "--transport", "http", "--port", str(port)),
        env=child_env(
            home,
            DUEFLOW_DATA_DIR=str(home / "data"),
            DUEFLOW_TOKENS=f"{ALICE_TOKEN}=alice,{BOB_TOKEN}=bob",
            DUEFLOW_TIMEZONE=ZONE,
            DUEFLOW_LOG_LEVEL="WARNING",
        ),
        cwd=home,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS * 2
        while True:
            assert proc.poll() is None, "dueflow serve exited before it listened"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"dueflow serve never listened on {port}"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=STARTUP_SECONDS)
