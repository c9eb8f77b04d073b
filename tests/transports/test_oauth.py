"""OAuth 2.1 resource-server mode (#15): JWT access tokens of a test issuer (keys made in the
test, JWKS served on 127.0.0.1) are accepted and mapped to their user; a wrong issuer, a wrong
audience, an expired or not-yet-valid token, `alg: none`, an HMAC token signed with the public
key, an unknown key id and a tampered signature are each refused with 401 and the challenge the
MCP authorization spec asks for; a key rotation needs no restart; the protected-resource
metadata (RFC 9728) is served; a real MCP client connects with a token. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from mcp import MCPError

from dueflow.bootstrap import Runtime
from mcp_server.http_app import Reachable, http_app
from mcp_server.oauth import JwtTokens, OAuthConfig
from mcp_server.server import TokenUsers, build_server
from tests.support.database import scalar
from tests.support.issuer import AUDIENCE, TestIssuer, unsigned
from tests.support.refusals import REFUSAL
from tests.support.servers import (
    INITIALIZE,
    MCP_HEADERS,
    bearer,
    dueflow_http,
    free_port,
    http_start,
    serving,
)

METADATA = "https://tasks.example.org/.well-known/oauth-protected-resource/mcp"


@pytest.fixture
async def issuer() -> AsyncIterator[TestIssuer]:
    test_issuer = TestIssuer()
    async with serving(test_issuer.app) as base:
        test_issuer.jwks_url = f"{base}/jwks"  # type: ignore[attr-defined]
        yield test_issuer


@pytest.fixture
async def url(runtime: Runtime, issuer: TestIssuer) -> AsyncIterator[str]:
    config = OAuthConfig(
        issuer=issuer.issuer,
        audience=AUDIENCE,
        jwks_url=issuer.jwks_url,  # type: ignore[attr-defined]
        jwks_refresh_seconds=0,
    )
    verifier = TokenUsers({}, runtime.tokens, JwtTokens(config))
    server = build_server(runtime.service, None, verifier, reminders=runtime.reminders)
    app = http_app(server, "http", "/mcp", Reachable("127.0.0.1"), oauth=config)
    async with serving(app) as base:
        yield f"{base}/mcp"


async def post(url: str, token: str | None) -> httpx.Response:
    headers = {**MCP_HEADERS, **(bearer(token) if token else {})}
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(url, json=INITIALIZE, headers=headers)


def assert_challenged(response: httpx.Response, error: str | None) -> None:
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="dueflow"')
    assert f'resource_metadata="{METADATA}"' in challenge
    if error is None:
        assert "error=" not in challenge
    else:
        assert f'error="{error}"' in challenge


async def test_a_valid_token_is_accepted_and_acts_as_its_subject(
    runtime: Runtime, issuer: TestIssuer, url: str
) -> None:
    token = issuer.token("carol")
    async with Client(StreamableHttpTransport(url, auth=token)) as client:
        added = await client.call_tool("add_task", {"title": "from OAuth"})
        tools = await client.list_tools()
    assert not added.is_error
    assert "add_task" in {tool.name for tool in tools}
    assert await scalar(runtime, "SELECT count(*) FROM tasks WHERE user_id = 'carol'") == 1


async def test_without_a_token_the_challenge_points_at_the_metadata(url: str) -> None:
    response = await post(url, None)
    assert_challenged(response, None)


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"iss": "https://evil.example.org"}, id="wrong issuer"),
        pytest.param({"aud": "https://other.example.org/mcp"}, id="wrong audience"),
        pytest.param({"aud": None}, id="no audience"),
        pytest.param({"exp": -120}, id="expired beyond the leeway"),
        pytest.param({"exp": None}, id="no expiry"),
        pytest.param({"nbf": 300}, id="not yet valid"),
        pytest.param({"sub": None}, id="no subject"),
    ],
)
async def test_a_token_with_wrong_claims_is_refused(
    issuer: TestIssuer, url: str, claims: dict[str, Any]
) -> None:
    # exp and nbf are given as seconds from now, read when the test runs
    timed = {k: int(time.time()) + v for k, v in claims.items() if k in ("exp", "nbf") and v}
    assert_challenged(await post(url, issuer.token(**{**claims, **timed})), "invalid_token")


async def test_an_expiry_within_the_leeway_is_accepted(issuer: TestIssuer, url: str) -> None:
    response = await post(url, issuer.token(exp=int(time.time()) - 20))
    assert response.status_code == 200


async def test_alg_none_is_refused(issuer: TestIssuer, url: str) -> None:
    assert_challenged(await post(url, unsigned(issuer.claims())), "invalid_token")


async def test_an_hmac_token_keyed_with_the_public_key_is_refused(
    issuer: TestIssuer, url: str
) -> None:
    public_pem = issuer.keys[0].as_pem(private=False)
    header = _b64(json.dumps({"alg": "HS256", "kid": "key-1"}).encode())
    payload = _b64(json.dumps(issuer.claims()).encode())
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    forged = f"{header}.{payload}.{_b64(mac)}"
    assert_challenged(await post(url, forged), "invalid_token")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


async def test_a_tampered_signature_is_refused(issuer: TestIssuer, url: str) -> None:
    header, payload, signature = issuer.token().split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert_challenged(await post(url, f"{header}.{payload}.{flipped}"), "invalid_token")
    other = issuer.token("mallory").split(".")[1]
    assert_challenged(await post(url, f"{header}.{other}.{signature}"), "invalid_token")


async def test_a_key_the_issuer_never_published_is_refused(issuer: TestIssuer, url: str) -> None:
    from joserfc.jwk import RSAKey

    stranger = RSAKey.generate_key(2048, parameters={"kid": "key-stranger"})
    assert_challenged(await post(url, issuer.token(key=stranger)), "invalid_token")


async def test_a_rotated_key_is_fetched_without_a_restart(issuer: TestIssuer, url: str) -> None:
    assert (await post(url, issuer.token())).status_code == 200
    fetched = issuer.fetches
    new_key = issuer.rotate("key-2")
    assert (await post(url, issuer.token(key=new_key))).status_code == 200
    assert issuer.fetches == fetched + 1
    assert (await post(url, issuer.token())).status_code == 200  # the old key still works
    assert issuer.fetches == fetched + 1  # and is not fetched again


async def test_the_protected_resource_metadata_is_served_without_a_token(
    issuer: TestIssuer, url: str
) -> None:
    base = url.removesuffix("/mcp")
    async with httpx.AsyncClient(timeout=10) as http:
        documents = [
            await http.get(f"{base}/.well-known/oauth-protected-resource{suffix}")
            for suffix in ("/mcp", "")
        ]
    for response in documents:
        assert response.status_code == 200
        document = response.json()
        assert document["resource"] == AUDIENCE
        assert document["authorization_servers"] == [issuer.issuer]
        assert document["scopes_supported"] == ["tasks:read", "tasks:write"]
        assert document["bearer_methods_supported"] == ["header"]


async def test_a_token_without_the_write_scope_only_reads(
    runtime: Runtime, issuer: TestIssuer, url: str
) -> None:
    token = issuer.token(scope="tasks:read")
    async with Client(StreamableHttpTransport(url, auth=token)) as client:
        listed = await client.call_tool("list_tasks", {})
        refused = await client.call_tool("add_task", {"title": "no"}, raise_on_error=False)
    assert not listed.is_error
    assert refused.is_error
    assert REFUSAL.match(refused.content[0].text)  # type: ignore[union-attr]
    assert await scalar(runtime, "SELECT count(*) FROM tasks") == 0


async def test_personal_tokens_still_work_beside_oauth(runtime: Runtime, url: str) -> None:
    _, text = await runtime.tokens.create("alice")
    assert (await post(url, text)).status_code == 200


def test_dueflow_serve_takes_its_oauth_settings(tmp_path: Path) -> None:
    """The real process, configured only by DUEFLOW_OAUTH_*, its issuer on another port."""
    issuer = TestIssuer(issuer="http://127.0.0.1:9/realms/test")

    async def scenario() -> tuple[int, int, dict[str, Any]]:
        async with serving(issuer.app) as issuer_base:
            port = free_port()
            audience = f"http://127.0.0.1:{port}/mcp"
            async with dueflow_http(
                tmp_path,
                port,
                DUEFLOW_DATA_DIR=str(tmp_path / "data"),
                DUEFLOW_OAUTH_ISSUER=issuer.issuer,
                DUEFLOW_OAUTH_AUDIENCE=audience,
                DUEFLOW_OAUTH_JWKS_URL=f"{issuer_base}/jwks",
                DUEFLOW_OAUTH_USER_CLAIM="email",
            ):
                token = issuer.token(email="dana@example.org", aud=audience)
                accepted = await post(audience, token)
                wrong_claim = await post(audience, issuer.token(email=None, aud=audience))
                async with httpx.AsyncClient(timeout=10) as http:
                    document = (
                        await http.get(
                            f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp"
                        )
                    ).json()
            return accepted.status_code, wrong_claim.status_code, document

    accepted, wrong_claim, document = asyncio.run(scenario())
    assert (accepted, wrong_claim) == (200, 401)
    assert document["resource"].endswith("/mcp")


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"DUEFLOW_OAUTH_ISSUER": "https://login.example.org"}, "DUEFLOW_OAUTH_AUDIENCE"),
        (
            {
                "DUEFLOW_OAUTH_ISSUER": "http://login.example.org",
                "DUEFLOW_OAUTH_AUDIENCE": "https://tasks.example.org/mcp",
                "DUEFLOW_OAUTH_JWKS_URL": "https://login.example.org/jwks",
            },
            "DUEFLOW_OAUTH_ISSUER",
        ),
        (
            {
                "DUEFLOW_OAUTH_ISSUER": "https://login.example.org",
                "DUEFLOW_OAUTH_AUDIENCE": "https://tasks.example.org/mcp",
                "DUEFLOW_OAUTH_JWKS_URL": "https://login.example.org/jwks",
                "DUEFLOW_OAUTH_ALGORITHMS": "RS256,HS256",
            },
            "DUEFLOW_OAUTH_ALGORITHMS",
        ),
    ],
)
def test_incomplete_or_unsafe_oauth_settings_stop_the_start(
    tmp_path: Path, settings: dict[str, str], named: str
) -> None:
    done = http_start(tmp_path, DUEFLOW_DATA_DIR=str(tmp_path / "data"), **settings)
    assert done.returncode == 2
    assert named in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("bob_kind", ["personal", "oauth"])
async def test_one_user_never_reaches_another_s_task_under_either_mode(
    runtime: Runtime, issuer: TestIssuer, url: str, bob_kind: str
) -> None:
    alice_token = issuer.token("alice")
    bob_token = (
        (await runtime.tokens.create("bob"))[1] if bob_kind == "personal" else issuer.token("bob")
    )
    async with Client(StreamableHttpTransport(url, auth=alice_token)) as alice:
        task = (await alice.call_tool("add_task", {"title": "alice's"})).structured_content["task"]  # type: ignore[index]
    async with Client(StreamableHttpTransport(url, auth=bob_token)) as bob:
        got = await bob.call_tool("get_task", {"task_id": task["id"]}, raise_on_error=False)
        changed = await bob.call_tool(
            "update_task", {"task_id": task["id"], "title": "bob's"}, raise_on_error=False
        )
        listed = await bob.call_tool("list_tasks", {"status": "all"})
        history = await bob.call_tool("task_history", {}, raise_on_error=False)
    assert got.is_error and changed.is_error
    assert got.content[0].text.startswith("task_id: no task")  # type: ignore[union-attr]
    assert listed.structured_content["tasks"] == []  # type: ignore[index]
    assert history.is_error or history.structured_content["entries"] == []  # type: ignore[index]
    assert await scalar(runtime, "SELECT version FROM tasks") == 1


async def test_reading_a_resource_needs_the_read_scope(issuer: TestIssuer, url: str) -> None:
    async with Client(StreamableHttpTransport(url, auth=issuer.token(scope="tasks:write"))) as c:
        with pytest.raises(MCPError) as refused:
            await c.read_resource("dueflow://agenda")
    message = str(refused.value)
    assert REFUSAL.match(message) and "needs tasks:read" in message, message
    async with Client(StreamableHttpTransport(url, auth=issuer.token(scope="tasks:read"))) as c:
        agenda = await c.read_resource("dueflow://agenda")
    assert agenda
