"""Streamable HTTP and SSE with bearer tokens: real sockets, one user never sees another's tasks."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import fastmcp
import httpx
import pytest
from fastmcp import Client
from mcp.shared.exceptions import MCPError

from dueflow.bootstrap import Runtime
from tests.support.database import rows
from tests.support.servers import ALICE_TOKEN, BOB_TOKEN, INITIALIZE, MCP_HEADERS


async def test_a_post_without_a_token_is_answered_401_missing_bearer_token(http_url: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(http_url, json=INITIALIZE, headers=MCP_HEADERS)
    assert response.status_code == 401
    # RFC 6750 section 3.1: no credentials, so the challenge carries no error code
    assert response.headers["www-authenticate"] == 'Bearer realm="dueflow"'
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == "invalid_request"
    assert body["error_description"].startswith("missing bearer token")
    assert "DUEFLOW_TOKENS" in body["error_description"]


@pytest.mark.parametrize("authorization", [f"Bearer {'x' * 32}", f"bearer {ALICE_TOKEN}x"])
async def test_a_post_with_an_unknown_token_is_answered_401_invalid_token_without_oauth_words(
    http_url: str, authorization: str
) -> None:
    headers = {**MCP_HEADERS, "Authorization": authorization}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(http_url, json=INITIALIZE, headers=headers)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="dueflow", error="invalid_token"')
    body = response.json()
    assert body["error"] == "invalid_token"
    assert body["error_description"].startswith("unknown bearer token")
    assert "re-register" not in response.text and "oauth" not in response.text.lower()


@pytest.mark.parametrize(
    "path", ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"]
)
async def test_no_protected_resource_metadata_is_published_or_advertised(
    http_url: str, path: str
) -> None:
    base = http_url.removesuffix("/mcp")
    async with httpx.AsyncClient(timeout=10) as http:
        metadata = await http.get(f"{base}{path}")
        refused = await http.post(http_url, json=INITIALIZE, headers=MCP_HEADERS)
    assert metadata.status_code == 404
    assert "resource_metadata" not in refused.headers["www-authenticate"]


async def test_a_non_bearer_authorization_is_answered_as_a_missing_bearer_token(
    http_url: str,
) -> None:
    headers = {**MCP_HEADERS, "Authorization": f"Basic {ALICE_TOKEN}"}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(http_url, json=INITIALIZE, headers=headers)
    assert response.status_code == 401
    assert response.json()["error_description"].startswith("missing bearer token")


async def test_a_client_with_an_unknown_token_cannot_connect(http_url: str) -> None:
    with pytest.raises(MCPError):
        async with Client(http_url, auth="not-a-known-token-at-all"):
            pass


async def test_server_info_over_http_carries_dueflow_s_version(http_url: str) -> None:
    async with Client(http_url, auth=ALICE_TOKEN) as alice:
        info = alice.server_info
    assert info is not None
    assert info.version == importlib.metadata.version("dueflow") != fastmcp.__version__


async def test_alice_s_token_lets_her_add_and_list_her_tasks(
    http_url: str, runtime: Runtime
) -> None:
    async with Client(http_url, auth=ALICE_TOKEN) as alice:
        added = await alice.call_tool("add_task", {"title": "Pay rent", "tags": ["Home"]})
        listed = await alice.call_tool("list_tasks", {})
    task = added.structured_content["task"]
    assert added.structured_content["created"] is True
    assert task["title"] == "Pay rent"
    assert task["tags"] == ["home"]
    assert [t["id"] for t in listed.structured_content["tasks"]] == [task["id"]]
    stored = await rows(runtime, "SELECT user_id FROM tasks WHERE id = :id", id=task["id"])
    assert [r.user_id for r in stored] == ["alice"]


@pytest.mark.parametrize(
    ("tool", "extra"),
    [
        ("get_task", {}),
        ("update_task", {"title": "Bob was here", "priority": "urgent"}),
        ("complete_task", {}),
        ("reopen_task", {}),
        ("delete_task", {}),
        ("restore_task", {}),
    ],
)
async def test_bob_cannot_reach_alice_s_task_through_any_tool(
    http_url: str, runtime: Runtime, tool: str, extra: dict[str, Any]
) -> None:
    async with Client(http_url, auth=ALICE_TOKEN) as alice:
        added = await alice.call_tool(
            "add_task", {"title": "Alice's secret", "due": "2026-12-01", "priority": "low"}
        )
    task_id = added.structured_content["task"]["id"]
    before = await rows(runtime, "SELECT * FROM tasks WHERE id = :id", id=task_id)

    async with Client(http_url, auth=BOB_TOKEN) as bob:
        refused = await bob.call_tool(tool, {"task_id": task_id, **extra}, raise_on_error=False)
        bobs = await bob.call_tool("list_tasks", {"status": "all"})

    assert refused.is_error
    assert f"no task {task_id!r} for this user" in refused.content[0].text
    assert "Alice's secret" not in refused.content[0].text
    assert bobs.structured_content["tasks"] == []
    after = await rows(runtime, "SELECT * FROM tasks WHERE id = :id", id=task_id)
    assert after == before
    assert after[0].user_id == "alice"
    assert after[0].status == "open"
    assert after[0].version == 1
    events = await rows(runtime, "SELECT event_type FROM outbox WHERE task_id = :id", id=task_id)
    assert [e.event_type for e in events] == ["TASK_CREATED"]


async def test_alice_still_sees_her_task_after_bob_tried_to_delete_it(http_url: str) -> None:
    async with Client(http_url, auth=ALICE_TOKEN) as alice:
        added = await alice.call_tool("add_task", {"title": "Keep me"})
        task_id = added.structured_content["task"]["id"]
        async with Client(http_url, auth=BOB_TOKEN) as bob:
            await bob.call_tool("delete_task", {"task_id": task_id}, raise_on_error=False)
        got = await alice.call_tool("get_task", {"task_id": task_id})
    assert got.structured_content["task"]["status"] == "open"


async def test_the_sse_stream_without_a_token_is_refused_with_401(sse_base: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        stream = await http.get(f"{sse_base}/sse")
        wrong = await http.get(f"{sse_base}/sse", headers={"Authorization": f"Bearer {'y' * 32}"})
        post = await http.post(f"{sse_base}/messages/?session_id=abc", json=INITIALIZE)
    assert stream.status_code == 401
    assert stream.json()["error_description"].startswith("missing bearer token")
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_token"
    assert post.status_code == 401
    assert post.headers["www-authenticate"] == 'Bearer realm="dueflow"'


async def test_a_client_with_a_token_adds_and_lists_tasks_over_sse(
    sse_base: str, runtime: Runtime
) -> None:
    async with Client(f"{sse_base}/sse", auth=ALICE_TOKEN) as alice:
        added = await alice.call_tool("add_task", {"title": "Over SSE"})
        listed = await alice.call_tool("list_tasks", {})
    task_id = added.structured_content["task"]["id"]
    assert [t["title"] for t in listed.structured_content["tasks"]] == ["Over SSE"]
    stored = await rows(runtime, "SELECT user_id FROM tasks WHERE id = :id", id=task_id)
    assert [r.user_id for r in stored] == ["alice"]


async def test_bob_does_not_see_alice_s_task_over_sse(sse_base: str) -> None:
    async with Client(f"{sse_base}/sse", auth=ALICE_TOKEN) as alice:
        added = await alice.call_tool("add_task", {"title": "Mine"})
    async with Client(f"{sse_base}/sse", auth=BOB_TOKEN) as bob:
        got = await bob.call_tool(
            "get_task", {"task_id": added.structured_content["task"]["id"]}, raise_on_error=False
        )
        listed = await bob.call_tool("list_tasks", {"status": "all"})
    assert got.is_error
    assert listed.structured_content["tasks"] == []
