"""The HTTP transports refuse requests a browser was steered to (DNS rebinding): a present Origin
that is not allowed answers 403, a Host that is not allowed 421, with or without a valid token;
clients that send no Origin are served."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastmcp import FastMCP

from mcp_server.http_app import Reachable, http_app
from tests.support.servers import (
    ALICE_TOKEN,
    INITIALIZE,
    bearer,
    dueflow_http,
    free_port,
    http_start,
    serving,
)

APP_ORIGIN = "https://tasks-ui.example.org"
PROXY_HOST = "tasks.example.org"


@pytest.fixture
async def guarded_url(token_server: FastMCP) -> AsyncIterator[str]:
    """The streamable HTTP endpoint, with one browser origin and one proxy host configured."""
    reachable = Reachable("127.0.0.1", hosts=[PROXY_HOST], origins=[APP_ORIGIN])
    async with serving(http_app(token_server, "http", "/mcp", reachable)) as base:
        yield f"{base}/mcp"


async def post(url: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(url, json=INITIALIZE, headers={**bearer(ALICE_TOKEN), **headers})


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://127.0.0.1.evil.example", "file://"]
)
async def test_a_foreign_origin_with_a_valid_token_is_answered_403(
    guarded_url: str, origin: str
) -> None:
    response = await post(guarded_url, Origin=origin)
    assert response.status_code == 403


async def test_a_foreign_origin_without_a_token_is_answered_403_before_any_auth(
    guarded_url: str,
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            guarded_url, json=INITIALIZE, headers={"Origin": "http://evil.example"}
        )
    assert response.status_code == 403


async def test_the_configured_origin_and_the_server_s_own_origin_are_served(
    guarded_url: str,
) -> None:
    own = guarded_url.removesuffix("/mcp")
    configured = await post(guarded_url, Origin=APP_ORIGIN)
    same = await post(guarded_url, Origin=own)
    assert (configured.status_code, same.status_code) == (200, 200)


async def test_a_request_without_an_origin_is_served(guarded_url: str) -> None:
    response = await post(guarded_url)
    assert response.status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "tasks.example.org.evil"])
async def test_a_foreign_host_with_a_valid_token_is_answered_421(
    guarded_url: str, host: str
) -> None:
    response = await post(guarded_url, Host=host)
    assert response.status_code == 421


@pytest.mark.parametrize("host", [PROXY_HOST, f"{PROXY_HOST}:443", "localhost:1234", "[::1]"])
async def test_the_configured_host_and_loopback_names_are_served(
    guarded_url: str, host: str
) -> None:
    response = await post(guarded_url, Host=host)
    assert response.status_code == 200


async def test_without_configuration_only_loopback_hosts_and_origins_are_served(
    http_url: str,
) -> None:
    loopback = await post(http_url, Origin="http://localhost:5173")
    configured_elsewhere = await post(http_url, Origin=APP_ORIGIN)
    proxy = await post(http_url, Host=PROXY_HOST)
    assert loopback.status_code == 200
    assert configured_elsewhere.status_code == 403
    assert proxy.status_code == 421


async def test_the_sse_stream_refuses_a_foreign_origin_and_host(sse_base: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        origin = await http.get(
            f"{sse_base}/sse", headers={**bearer(ALICE_TOKEN), "Origin": "null"}
        )
        host = await http.get(
            f"{sse_base}/sse", headers={**bearer(ALICE_TOKEN), "Host": "evil.example"}
        )
        message = await http.post(
            f"{sse_base}/messages/?session_id=abc",
            json=INITIALIZE,
            headers={**bearer(ALICE_TOKEN), "Origin": "http://evil.example"},
        )
    assert (origin.status_code, host.status_code, message.status_code) == (403, 421, 403)


async def test_dueflow_serve_over_http_guards_origin_and_host_as_configured(
    tmp_path: Path,
) -> None:
    port = free_port()
    async with dueflow_http(
        tmp_path,
        port,
        DUEFLOW_DATA_DIR=str(tmp_path / "data"),
        DUEFLOW_TOKENS=f"{ALICE_TOKEN}=alice",
        DUEFLOW_ALLOWED_ORIGINS=f"{APP_ORIGIN}/",
        DUEFLOW_ALLOWED_HOSTS=PROXY_HOST,
    ) as url:
        evil = await post(url, Origin="http://evil.example")
        null = await post(url, Origin="null")
        allowed = await post(url, Origin=APP_ORIGIN)
        rebound = await post(url, Host=f"evil.example:{port}")
        proxied = await post(url, Host=PROXY_HOST)
        plain = await post(url)

    assert (evil.status_code, null.status_code, rebound.status_code) == (403, 403, 421)
    assert (allowed.status_code, proxied.status_code, plain.status_code) == (200, 200, 200)


@pytest.mark.parametrize(
    "origin", ["null", "*", "tasks-ui.example.org", "https://tasks-ui.example.org/app"]
)
def test_an_allowed_origin_that_is_not_an_origin_is_refused_at_start(
    tmp_path: Path, origin: str
) -> None:
    done = http_start(
        tmp_path,
        DUEFLOW_DATA_DIR=str(tmp_path / "data"),
        DUEFLOW_TOKENS=f"{ALICE_TOKEN}=alice",
        DUEFLOW_ALLOWED_ORIGINS=origin,
    )
    assert done.returncode == 2
    assert "DUEFLOW_ALLOWED_ORIGINS" in done.stderr
    assert "Traceback" not in done.stderr


async def test_each_refused_request_is_logged_with_its_host_and_origin_and_no_token(
    guarded_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mcp_server.http_app")
    await post(guarded_url, Origin="http://evil.example")
    await post(guarded_url, Host="evil.example")
    async with httpx.AsyncClient(timeout=10) as http:
        await http.post(guarded_url, json=INITIALIZE, headers=bearer("not-a-known-token-at-all"))
    refusals = [r.getMessage() for r in caplog.records if r.name == "mcp_server.http_app"]
    assert any("with 403" in line and "'http://evil.example'" in line for line in refusals)
    assert any("with 421" in line and "'evil.example'" in line for line in refusals)
    assert any("with 401" in line for line in refusals)
    assert not any(ALICE_TOKEN in line or "not-a-known-token" in line for line in refusals)
