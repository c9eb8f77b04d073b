"""Personal access tokens (#15): created, listed and revoked with `dueflow tokens`, kept only as
a salted hash, refused on the next request once revoked or expired (also by another server
process on the same database), held to their scopes, and every creation, revocation and refusal
in the access log without the secret. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from domain.access import PersonalTokens
from domain.clock import FixedClock
from dueflow.bootstrap import Runtime
from mcp_server.http_app import Reachable, http_app
from mcp_server.server import TokenUsers, build_server
from tests.support.database import rows, scalar
from tests.support.refusals import REFUSAL
from tests.support.servers import (
    ALICE_TOKEN,
    INITIALIZE,
    MCP_HEADERS,
    STARTUP_SECONDS,
    bearer,
    child_env,
    dueflow_command,
    free_port,
    run_dueflow,
    serving,
    wait_until_listening,
)


def client(url: str, token: str) -> Client:
    return Client(StreamableHttpTransport(url, headers=bearer(token)))


@pytest.fixture
async def url(runtime: Runtime) -> AsyncIterator[str]:
    """The HTTP transport of `runtime`, taking its personal tokens (and no DUEFLOW_TOKENS)."""
    server = build_server(
        runtime.service, None, TokenUsers({}, runtime.tokens), reminders=runtime.reminders
    )
    async with serving(http_app(server, "http", "/mcp", Reachable("127.0.0.1"))) as base:
        yield f"{base}/mcp"


async def status_of(url: str, token: str) -> int:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(url, json=INITIALIZE, headers={**bearer(token), **MCP_HEADERS})
    return response.status_code


async def test_a_created_token_acts_as_its_user(runtime: Runtime, url: str) -> None:
    _, text = await runtime.tokens.create("alice", name="laptop")
    async with client(url, text) as alice:
        added = await alice.call_tool("add_task", {"title": "Buy milk"})
        listed = await alice.call_tool("list_tasks", {})
    assert not added.is_error
    assert [t["title"] for t in listed.structured_content["tasks"]] == ["Buy milk"]  # type: ignore[index]
    assert await scalar(runtime, "SELECT count(*) FROM tasks WHERE user_id = 'alice'") == 1


async def test_only_a_salted_hash_of_the_token_is_stored(runtime: Runtime) -> None:
    _, first = await runtime.tokens.create("alice")
    _, second = await runtime.tokens.create("alice")
    stored = await rows(runtime, "SELECT * FROM access_tokens")
    logged = await rows(runtime, "SELECT * FROM access_log")
    everything = " ".join(str(value) for row in [*stored, *logged] for value in row)
    for text in (first, second):
        secret = text.rsplit("_", 1)[1]
        assert text.startswith("dfp_")
        assert secret not in everything
    salts = {row.salt for row in stored}
    assert len(salts) == 2


async def test_a_revoked_token_is_refused_on_the_next_request(runtime: Runtime, url: str) -> None:
    token, text = await runtime.tokens.create("alice")
    before = await status_of(url, text)
    await runtime.tokens.revoke(token.id)
    after = await status_of(url, text)
    assert (before, after) == (200, 401)


async def test_an_expired_token_is_refused(runtime: Runtime, url: str, clock: FixedClock) -> None:
    _, text = await runtime.tokens.create("alice", expires="12h")
    clock.advance(dt.timedelta(hours=11, minutes=59))
    still = await status_of(url, text)
    clock.advance(dt.timedelta(minutes=2))
    expired = await status_of(url, text)
    assert (still, expired) == (200, 401)


@pytest.mark.parametrize(
    "forged",
    [
        "dfp_0123456789abcdef_" + "0" * 48,  # the shape, no such token
        "dfp_zz",
        "not-a-dueflow-token-at-all",
    ],
)
async def test_a_forged_token_is_refused(runtime: Runtime, url: str, forged: str) -> None:
    await runtime.tokens.create("alice")
    assert await status_of(url, forged) == 401


async def test_a_token_with_the_wrong_secret_is_refused_and_logged(
    runtime: Runtime, url: str
) -> None:
    token, text = await runtime.tokens.create("alice")
    wrong = text[:-4] + ("0000" if not text.endswith("0000") else "1111")
    assert await status_of(url, wrong) == 401
    log = await runtime.tokens.access_log("alice")
    assert next((e.action, e.token_id, e.detail) for e in log) == (
        "refused",
        token.id,
        "wrong secret",
    )


async def test_a_read_only_token_reads_but_every_write_is_refused_in_the_documented_style(
    runtime: Runtime, url: str
) -> None:
    _, writer = await runtime.tokens.create("alice")
    _, reader = await runtime.tokens.create("alice", scopes=["tasks:read"])
    async with client(url, writer) as alice:
        task = (await alice.call_tool("add_task", {"title": "kept"})).structured_content["task"]  # type: ignore[index]
    async with client(url, reader) as alice:
        listed = await alice.call_tool("list_tasks", {})
        got = await alice.call_tool("get_task", {"task_id": task["id"]})
        refusals = [
            await alice.call_tool(tool, arguments, raise_on_error=False)
            for tool, arguments in [
                ("add_task", {"title": "not written"}),
                ("update_task", {"task_id": task["id"], "title": "changed"}),
                ("complete_task", {"task_id": task["id"]}),
                ("delete_task", {"task_id": task["id"]}),
            ]
        ]
    assert not listed.is_error and not got.is_error
    for refused in refusals:
        assert refused.is_error
        text = refused.content[0].text  # type: ignore[union-attr]
        assert REFUSAL.match(text) and text.startswith("scope: this token may not call"), text
        assert "tasks:write" in text
    assert await scalar(runtime, "SELECT count(*) FROM tasks") == 1
    assert await scalar(runtime, "SELECT version FROM tasks") == 1


async def test_the_last_use_is_written_at_most_once_a_minute(
    runtime: Runtime, url: str, clock: FixedClock
) -> None:
    _, text = await runtime.tokens.create("alice")
    for _ in range(3):
        assert await status_of(url, text) == 200
    first = (await runtime.tokens.tokens("alice"))[0].last_used_at
    clock.advance(dt.timedelta(seconds=30))
    assert await status_of(url, text) == 200
    unchanged = (await runtime.tokens.tokens("alice"))[0].last_used_at
    clock.advance(dt.timedelta(seconds=31))
    assert await status_of(url, text) == 200
    moved = (await runtime.tokens.tokens("alice"))[0].last_used_at
    assert first is not None and first == unchanged
    assert moved is not None and moved > first


async def test_the_access_log_holds_creation_revocation_and_refusal_once_a_minute(
    runtime: Runtime, url: str
) -> None:
    token, text = await runtime.tokens.create("alice", scopes=["tasks:read"], name="ci")
    await runtime.tokens.revoke(token.id)
    for _ in range(5):
        assert await status_of(url, text) == 401
    log = await runtime.tokens.access_log("alice")
    assert [e.action for e in log] == ["refused", "revoked", "created"]
    assert log[0].detail == "revoked" and log[2].detail == "tasks:read"


async def test_tokens_refuse_bad_input_with_the_field_named(runtime: Runtime) -> None:
    tokens: PersonalTokens = runtime.tokens
    for arguments, field in [
        ({"user_id": ""}, "user"),
        ({"user_id": "alice", "scopes": ["tasks:admin"]}, "scope"),
        ({"user_id": "alice", "expires": "forever"}, "expires"),
        ({"user_id": "alice", "expires": "0d"}, "expires"),
        ({"user_id": "alice", "name": "n" * 101}, "name"),
    ]:
        with pytest.raises(Exception) as refused:
            await tokens.create(**arguments)  # type: ignore[arg-type]
        assert REFUSAL.match(str(refused.value)) and str(refused.value).startswith(field)
    assert await scalar(runtime, "SELECT count(*) FROM access_tokens") == 0


def test_the_cli_creates_lists_and_revokes_and_a_second_server_refuses_at_once(
    tmp_path: Path, database_url: str
) -> None:
    """Two `dueflow serve --transport http` processes on one database: a token revoked with
    `dueflow tokens revoke` is refused by both on their next request."""
    env = {"DUEFLOW_DATABASE_URL": database_url}
    assert run_dueflow(tmp_path, "db", "upgrade", **env).returncode == 0
    created = run_dueflow(
        tmp_path, "tokens", "create", "--user", "alice", "--name", "laptop", **env
    )
    assert created.returncode == 0, created.stderr
    text = created.stdout.strip()
    assert text.startswith("dfp_") and "\n" not in text
    assert text not in created.stderr and text.rsplit("_", 1)[1] not in created.stderr

    listed = run_dueflow(tmp_path, "tokens", "list", **env)
    token_id = text.split("_")[1]
    assert token_id in listed.stdout and "laptop" in listed.stdout and "active" in listed.stdout
    assert text.rsplit("_", 1)[1] not in listed.stdout

    ports = [free_port(), free_port()]
    servers = [
        subprocess.Popen(
            dueflow_command("serve", "--transport", "http", "--port", str(port)),
            env=child_env(tmp_path, **env),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for port in ports
    ]
    try:

        async def statuses() -> list[int]:
            for server, port in zip(servers, ports, strict=True):
                await wait_until_listening(server, port)  # type: ignore[arg-type]
            return [await status_of(f"http://127.0.0.1:{port}/mcp", text) for port in ports]

        before = asyncio.run(statuses())
        revoked = run_dueflow(tmp_path, "tokens", "revoke", token_id, **env)
        after = asyncio.run(statuses())
        env_token = asyncio.run(status_of(f"http://127.0.0.1:{ports[0]}/mcp", ALICE_TOKEN))
    finally:
        for server in servers:
            server.terminate()
        logs = [server.communicate(timeout=STARTUP_SECONDS)[1] for server in servers]
    assert revoked.returncode == 0 and token_id in revoked.stdout
    assert before == [200, 200]
    assert after == [401, 401]
    assert env_token == 401  # no DUEFLOW_TOKENS: only the database's tokens
    assert all("no tokens yet" not in log for log in logs)
    assert all(text.rsplit("_", 1)[1] not in log for log in logs)
    log = run_dueflow(tmp_path, "tokens", "log", "--user", "alice", **env)
    actions = [line.split("\t")[1] for line in log.stdout.splitlines()]
    # each server process logs a token's refusals at most once a minute
    assert actions == ["refused", "refused", "revoked", "created"]


def test_serving_http_without_any_token_starts_warns_and_refuses_every_request(
    tmp_path: Path,
) -> None:
    port = free_port()
    server = subprocess.Popen(
        dueflow_command("serve", "--transport", "http", "--port", str(port)),
        env=child_env(tmp_path, DUEFLOW_DATA_DIR=str(tmp_path / "data")),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        asyncio.run(wait_until_listening(server, port))  # type: ignore[arg-type]
        status = asyncio.run(status_of(f"http://127.0.0.1:{port}/mcp", ALICE_TOKEN))
    finally:
        server.terminate()
        out, err = server.communicate(timeout=STARTUP_SECONDS)
    assert status == 401
    assert "no tokens yet" in err and "dueflow tokens create" in err
    assert out == ""
