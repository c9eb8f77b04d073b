"""The MCP authorization flow from the client's side (#15): a real MCP client with no token
(fastmcp's OAuth client) signs in against `dueflow serve` in OAuth mode, as its own process, and
a stand-in authorization server — the 401 and its resource_metadata, the protected-resource
metadata (RFC 9728), the authorization server's metadata (RFC 8414), dynamic client registration
(RFC 7591), the authorization code with PKCE and the resource indicator (RFC 8707) — and then
works as the user who signed in. The browser is played by an HTTP client whose user is signed in
at the authorization server."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.auth import OAuth

from tests.support.issuer import TestAuthorizationServer
from tests.support.servers import ALICE_TOKEN, dueflow_http, free_port, serving


class SignedInBrowser(OAuth):
    """fastmcp's OAuth client, with the browser step done by an HTTP client: it opens the
    authorization URL and follows the redirect to the client's callback once that listens."""

    visits: list[asyncio.Task[None]]

    async def redirect_handler(self, authorization_url: str) -> None:
        async with httpx.AsyncClient(timeout=10) as browser:
            answer = await browser.get(authorization_url)
        assert answer.status_code == 302, answer.text
        callback = answer.headers["location"]

        async def visit() -> None:
            async with httpx.AsyncClient(timeout=10) as browser:
                for _ in range(200):
                    with contextlib.suppress(httpx.ConnectError):
                        await browser.get(callback)
                        return
                    await asyncio.sleep(0.05)

        self.visits = [asyncio.create_task(visit())]


# the client keeps its token in memory for the test's one session
@pytest.mark.filterwarnings("ignore:Using in-memory token storage:UserWarning")
async def test_a_client_without_a_token_signs_in_and_acts_as_the_user_who_signed_in(
    tmp_path: Path,
) -> None:
    server = TestAuthorizationServer(user="erin")
    async with serving(server.app) as issuer:
        server.serving_at(issuer)
        port = free_port()
        audience = f"http://127.0.0.1:{port}/mcp"
        async with dueflow_http(
            tmp_path,
            port,
            DUEFLOW_DATA_DIR=str(tmp_path / "data"),
            DUEFLOW_OAUTH_ISSUER=issuer,
            DUEFLOW_OAUTH_AUDIENCE=audience,
            DUEFLOW_OAUTH_JWKS_URL=f"{issuer}/jwks",
            DUEFLOW_TOKENS=f"{ALICE_TOKEN}=alice",
        ) as url:
            async with Client(url, auth=SignedInBrowser(client_name="dueflow test")) as client:
                added = await client.call_tool("add_task", {"title": "signed in"})
                mine = await client.call_tool("list_tasks", {})
            async with Client(url, auth=ALICE_TOKEN) as alice:
                hers = await alice.call_tool("list_tasks", {})

    assert not added.is_error
    assert [t["title"] for t in mine.structured_content["tasks"]] == ["signed in"]
    assert hers.structured_content["tasks"] == []  # the task is erin's, not anyone else's
    (asked,) = server.authorized
    assert asked["resource"] == audience  # RFC 8707: the token is for this server only
    assert asked["code_challenge_method"] == "S256"
    assert set(asked["scope"].split()) == {"tasks:read", "tasks:write"}
    assert len(server.clients) == 1  # registered itself (RFC 7591)
