"""Real servers for transport tests: free loopback ports, an ASGI app under uvicorn, and the
`dueflow` command run as a child process."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from tests.support.waiting import eventually

ALICE_TOKEN = "alice-token-0123456789abcdef"
BOB_TOKEN = "bob-token-0123456789abcdef"
STARTUP_SECONDS = 15.0


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free loopback port; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await eventually(
            lambda: server.started or task.done(),
            timeout=STARTUP_SECONDS,
            what="uvicorn to start serving",
        )
        if not server.started:
            task.result()
            raise RuntimeError("uvicorn stopped before it started serving")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, STARTUP_SECONDS)
        sock.close()


def dueflow_command(*args: str) -> list[str]:
    """The installed `dueflow` console script (or the module, if the script is missing)."""
    script = Path(sys.executable).with_name("dueflow")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "dueflow.cli", *args]


def child_env(home: Path, **dueflow: str) -> dict[str, str]:
    """A minimal environment: PATH, an isolated HOME, and the DUEFLOW_* variables given."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), **dueflow}


def run_dueflow(home: Path, *args: str, **dueflow_env: str) -> subprocess.CompletedProcess[str]:
    """Run `dueflow ARGS` in `home` to completion (bounded) with only the DUEFLOW_* variables
    given."""
    return subprocess.run(
        dueflow_command(*args),
        env=child_env(home, **dueflow_env),
        cwd=home,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS * 2,
        check=False,
    )


# the first request of an MCP session, as a client writes it on stdio
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


def send(server: subprocess.Popen[str], message: dict[str, Any]) -> None:
    """Write one JSON-RPC message to a stdio server, as a client does: one line."""
    assert server.stdin is not None
    server.stdin.write(json.dumps(message) + "\n")
    server.stdin.flush()


def answer(server: subprocess.Popen[str]) -> dict[str, Any]:
    """The next line a stdio server writes, decoded."""
    assert server.stdout is not None
    line = server.stdout.readline()
    assert line, "the server closed stdout without answering"
    decoded: dict[str, Any] = json.loads(line)
    return decoded


async def wait_until_listening(proc: subprocess.Popen[bytes], port: int) -> None:
    """Wait until the server accepts connections; fail if it exits first."""

    async def listening() -> bool:
        assert proc.poll() is None, "dueflow serve exited before it listened"
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        writer.close()
        await writer.wait_closed()
        return True

    await eventually(
        listening, timeout=STARTUP_SECONDS * 2, what=f"dueflow serve to listen on {port}"
    )


# what a streamable-HTTP client accepts in answer to a POST
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def bearer(token: str) -> dict[str, str]:
    """The headers of an MCP POST carrying `token` as a bearer token."""
    return {**MCP_HEADERS, "Authorization": f"Bearer {token}"}


@asynccontextmanager
async def dueflow_http(
    home: Path, port: int, log: Path | None = None, **dueflow_env: str
) -> AsyncIterator[str]:
    """`dueflow serve --transport http` on `port` as its own process, configured only by the
    DUEFLOW_* variables given (its stderr to `log`, if given); yields its MCP URL once it
    listens, and stops it on leaving."""
    stderr = log.open("ab") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        dueflow_command("serve", "--transport", "http", "--port", str(port)),
        env=child_env(home, **dueflow_env),
        cwd=home,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    if log is not None:
        stderr.close()  # type: ignore[union-attr]
    try:
        await wait_until_listening(proc, port)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=STARTUP_SECONDS)


def http_start(home: Path, **dueflow_env: str) -> subprocess.CompletedProcess[str]:
    """`dueflow serve --transport http` run to its end (a start the settings refuse)."""
    return run_dueflow(
        home, "serve", "--transport", "http", "--port", str(free_port()), **dueflow_env
    )


@contextmanager
def stdio_session(home: Path, **dueflow_env: str) -> Iterator[subprocess.Popen[bytes]]:
    """`dueflow serve` on stdio as its own process, configured only by the DUEFLOW_* variables
    given, past the MCP handshake (its stdin and stdout in bytes); killed on leaving."""
    with subprocess.Popen(
        dueflow_command("serve"),
        env=child_env(home, **dueflow_env),
        cwd=home,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as proc:
        try:
            assert proc.stdin is not None and proc.stdout is not None
            initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            proc.stdin.write(json.dumps(INITIALIZE).encode() + b"\n")
            proc.stdin.flush()
            assert json.loads(proc.stdout.readline())["id"] == 1
            proc.stdin.write(json.dumps(initialized).encode() + b"\n")
            proc.stdin.flush()
            yield proc
        finally:
            proc.kill()
            proc.wait(STARTUP_SECONDS)
